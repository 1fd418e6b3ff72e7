package storage

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// wireKindEntry is what a renderer knows of one envelope type.
type wireKindEntry struct {
	plan             *objPlan
	names            []byte
	apiVersion, kind string
	gvk              schema.GroupVersionKind
}

// renderWire renders a stored value in the yaml, json or name format
// straight from its protobuf wire form, as render would print the
// decoded object. ok is false where the typed path must do it: a value
// that is not protobuf, a kind without a plan, anything unexpected, and
// every error (the typed path reports it as it always did).
func (p *Printer) renderWire(r *renderer, d *Decoder, kv KV) (obj *Object, out []byte, ok bool) {
	if p.Format != OutputYAML && p.Format != OutputJSON && p.Format != OutputName {
		return nil, nil, false
	}
	value := kv.Value
	how := ""
	if IsEncrypted(value) {
		if d == nil || d.Encryption == nil {
			return nil, nil, false
		}
		plain, h, err := d.Encryption.Decrypt(kv.Key, value)
		if err != nil {
			return nil, nil, false
		}
		value, how = plain, h
	}
	if !bytes.HasPrefix(value, ProtobufPrefix) {
		return nil, nil, false
	}
	typeMeta, raw, ok := parseEnvelope(value[len(ProtobufPrefix):])
	if !ok {
		return nil, nil, false
	}
	k, ok := r.kinds[string(typeMeta)]
	if !ok {
		k = newWireKindEntry(typeMeta)
		if r.kinds == nil {
			r.kinds = map[string]wireKindEntry{}
		}
		r.kinds[string(typeMeta)] = k
	}
	if k.plan == nil {
		return nil, nil, false
	}
	if p.Format == OutputName {
		meta := k.plan.fields[max(k.plan.metadata, 0)].val.msg
		if k.plan.metadata < 0 || meta.nameField < 0 {
			return nil, nil, false
		}
		name, err := r.wire.objectName(k.plan, raw)
		if err != nil {
			return nil, nil, false
		}
		out = p.appendName(getRenderBuffer(), kv, k.gvk, name)
		return &Object{Key: kv.Key, ModRevision: kv.ModRevision, Format: FormatProtobuf, Encryption: how, Value: value, gvk: k.gvk}, out, true
	}
	r.tree.static = k.names
	if err := r.wire.build(&r.tree, k.plan, raw, k.apiVersion, k.kind, kv.ModRevision, p.Format == OutputYAML); err != nil {
		return nil, nil, false
	}
	switch p.Format {
	case OutputYAML:
		out = appendYAMLTree(getRenderBuffer(), &r.tree, p.List)
	case OutputJSON:
		prefix, suffix := "", "\n"
		if p.List {
			prefix, suffix = "        ", ""
		}
		out = append(appendIndentedJSON(getRenderBuffer(), &r.tree, 0, prefix, 0), suffix...)
	}
	return &Object{Key: kv.Key, ModRevision: kv.ModRevision, Format: FormatProtobuf, Encryption: how, Value: value, gvk: k.gvk}, out, true
}

func newWireKindEntry(typeMeta []byte) wireKindEntry {
	var apiVersion, kind string
	for len(typeMeta) > 0 {
		num, typ, n := protowire.ConsumeTag(typeMeta)
		if n < 0 {
			return wireKindEntry{}
		}
		typeMeta = typeMeta[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(typeMeta)
			if n < 0 {
				return wireKindEntry{}
			}
			if num == 1 {
				apiVersion = string(v)
			} else {
				kind = string(v)
			}
			typeMeta = typeMeta[n:]
			continue
		}
		if num == 1 || num == 2 {
			return wireKindEntry{}
		}
		n = protowire.ConsumeFieldValue(num, typ, typeMeta)
		if n < 0 {
			return wireKindEntry{}
		}
		typeMeta = typeMeta[n:]
	}
	gvk := schema.FromAPIVersionAndKind(apiVersion, kind)
	if gvk.Kind == "" || gvk.Version == "" {
		return wireKindEntry{}
	}
	plan, names := kindPlan(gvk)
	return wireKindEntry{plan: plan, names: names, apiVersion: gvk.GroupVersion().String(), kind: gvk.Kind, gvk: gvk}
}

// parseEnvelope reads runtime.Unknown: its TypeMeta message (field 1) and
// raw object (field 2). ok is false for anything else than a clean
// envelope.
func parseEnvelope(b []byte) (typeMeta, raw []byte, ok bool) {
	seen := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, false
		}
		b = b[n:]
		if num >= 1 && num <= 4 {
			if typ != protowire.BytesType {
				return nil, nil, false
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, nil, false
			}
			switch num {
			case 1:
				typeMeta = v
				seen |= 1
			case 2:
				raw = v
				seen |= 2
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, nil, false
		}
		b = b[n:]
	}
	return typeMeta, raw, seen == 3
}
