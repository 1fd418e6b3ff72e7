package printer

import (
	"bytes"
	"reflect"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/internal/emit"
)

// wireKindEntry is what a renderer knows of one envelope type.
type wireKindEntry struct {
	plan             *emit.Plan
	apiVersion, kind string
	gvk              schema.GroupVersionKind
}

// kindPlans caches the wire plan of each kind met, nil for kinds left to
// the typed path.
var kindPlans sync.Map // schema.GroupVersionKind → *emit.Plan

// kindPlan returns the wire plan of a kind of storage.Scheme, nil when its
// objects take the typed path.
func kindPlan(gvk schema.GroupVersionKind) *emit.Plan {
	if p, ok := kindPlans.Load(gvk); ok {
		return p.(*emit.Plan)
	}
	var plan *emit.Plan
	if obj, err := storage.Scheme.New(gvk); err == nil {
		if p, err := emit.PlanFor(reflect.TypeOf(obj).Elem()); err == nil {
			plan = p
		}
	}
	kindPlans.Store(gvk, plan)
	return plan
}

// renderWire renders a stored value in the yaml, json or name format
// straight from its protobuf wire form, as render would print the
// decoded object: emit writes the text as it walks the wire, no tree in
// between. ok is false where the typed path must do it: a value
// that is not protobuf, a kind without a plan, anything unexpected, and
// every error (the typed path reports it as it always did).
func (p *Printer) renderWire(r *renderer, d *storage.Decoder, kv storage.KV) (obj *storage.Object, out []byte, ok bool) {
	if p.Format != OutputYAML && p.Format != OutputJSON && p.Format != OutputName {
		return nil, nil, false
	}
	value := kv.Value
	how := ""
	if encryption.IsEncrypted(value) {
		if d == nil || d.Encryption == nil {
			return nil, nil, false
		}
		plain, h, err := d.Encryption.Decrypt(kv.Key, value)
		if err != nil {
			return nil, nil, false
		}
		value, how = plain, h
	}
	if !bytes.HasPrefix(value, storage.ProtobufPrefix) {
		return nil, nil, false
	}
	typeMeta, raw, ok := parseEnvelope(value[len(storage.ProtobufPrefix):])
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
		if !k.plan.HasName() {
			return nil, nil, false
		}
		name, err := r.wire.ObjectName(k.plan, raw)
		if err != nil {
			return nil, nil, false
		}
		out = p.appendName(getRenderBuffer(), kv, k.gvk, name)
		return &storage.Object{Key: kv.Key, ModRevision: kv.ModRevision, Format: storage.FormatProtobuf, Encryption: how, Value: value, Kind: k.gvk}, out, true
	}
	switch p.Format {
	case OutputYAML:
		var err error
		out, err = r.wire.AppendYAML(getRenderBuffer(), &r.tree, k.plan, raw, k.apiVersion, k.kind, kv.ModRevision, p.List)
		if err != nil {
			putRenderBuffer(out)
			return nil, nil, false
		}
	case OutputJSON:
		prefix, suffix := "", "\n"
		if p.List {
			prefix, suffix = "        ", ""
		}
		var err error
		out, err = r.wire.AppendJSON(getRenderBuffer(), &r.tree, k.plan, raw, k.apiVersion, k.kind, kv.ModRevision, prefix)
		if err != nil {
			putRenderBuffer(out)
			return nil, nil, false
		}
		out = append(out, suffix...)
	}
	return &storage.Object{Key: kv.Key, ModRevision: kv.ModRevision, Format: storage.FormatProtobuf, Encryption: how, Value: value, Kind: k.gvk}, out, true
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
	return wireKindEntry{plan: kindPlan(gvk), apiVersion: gvk.GroupVersion().String(), kind: gvk.Kind, gvk: gvk}
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
