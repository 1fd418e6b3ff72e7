package emit

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file turns a stored protobuf object into the jsonTree the fast
// printers print, straight from the wire with the type's plan
// (wireplan.go): no typed object, no encoding/json, no JSON text parsed
// back. The tree holds what printing the typed object through
// encoding/json and decoding that into a map would hold, so the printers
// write the same bytes. Anything the walk does not expect (a wire type
// that does not match, a field twice, a value a special type refuses)
// gives errWireFallback, and the value takes the typed path, which prints
// it, or reports why it cannot, as before.

var errWireFallback = errors.New("left to the typed decoder")

// Wire builds Trees from stored protobuf objects with their Plan; one
// goroutine's, reused from object to object.
type Wire struct{ b wireBuilder }

// Build fills t with the object stored as raw (the message inside the
// runtime.Unknown envelope, of the kind p was made for, whose apiVersion
// and kind the envelope gave): what encoding/json prints of the decoded
// object, as a map would hold it, so AppendYAMLTree and
// AppendIndentedJSON print what the general path prints. modRevision, when
// not zero, becomes metadata.resourceVersion, as the decoder sets it.
// forYAML orders keys for YAML and refuses what the YAML reader refuses.
// Any value the walk does not expect is an error: the caller takes the
// typed path, which prints it or says why it cannot.
//
// Listings no longer build trees (AppendYAML and AppendJSON write the
// same text as they walk); Build stays as what those two are tested
// against: the printer tests require the same bytes and the same values
// left to the typed path, on every kind of the scheme and in the fuzzer.
func (w *Wire) Build(t *Tree, p *Plan, raw []byte, apiVersion, kind string, modRevision int64, forYAML bool) error {
	return w.b.build(t, p, raw, apiVersion, kind, modRevision, forYAML)
}

// ObjectName returns metadata.name of the object stored as raw (see
// Build), for -o name: it walks the message with the same checks as Build
// but makes no tree.
func (w *Wire) ObjectName(p *Plan, raw []byte) ([]byte, error) {
	return w.b.objectName(p.p, raw)
}

// wireRec is one field record of a message on the wire.
type wireRec struct {
	field    int16
	typ      protowire.Type
	from, to int32 // the value's bytes (length-delimited types)
	v        uint64
	next     int32 // the next record of the same field, -1: none
}

// wireBuilder builds jsonTrees from protobuf values. It is one goroutine's
// and is reused from value to value.
type wireBuilder struct {
	t    *Tree
	data []byte
	// yaml orders keys as the YAML printer does and refuses what the YAML
	// reader would.
	yaml bool
	recs []wireRec
	// heads and tails are the first and last record of each field of the
	// messages being walked, a run per message.
	heads, tails []int32
	// none is a run of -1s that openMessage copies.
	none       []int32
	apiVersion string
	kind       string
	// rv is the revision printed as the top object's
	// metadata.resourceVersion, nil to keep what is stored.
	rv    []byte
	rvIdx int
	// rvNext: the next object built is the top object's metadata.
	rvNext bool
	rvBuf  []byte
	// special caches the JSON of small special values (quantities,
	// int-or-strings) by their bytes.
	specialCache map[string][]byte
	keys         map[string]struct{}
	// name and nameSeen are what objectName found.
	name     []byte
	nameSeen int
	checked  map[string]struct{}
	scratch  []byte
	// out and prefix are the text AppendJSON writes and the prefix of its
	// lines; entries holds the map entries it sorts (wirejson.go).
	out     []byte
	prefix  string
	entries []jMapEntry
	// lineStarts is ",\n", prefix and jsonLineCopy spaces, from which
	// AppendJSON moves the start of a line (jLineStart) with the comma of
	// the item before it or without.
	lineStarts []byte
	// yw writes what AppendYAML prints (wireyaml.go).
	yw yamlWriter
	// memo keeps the text of messages that recur (wirememo.go).
	memo wireMemo
}

// build fills t with the object stored as raw (the protobuf message of a
// kind whose plan is p; apiVersion and kind from its envelope).
// modRevision, when not zero, becomes metadata.resourceVersion, as
// Decoder.Decode does.
func (b *wireBuilder) build(t *Tree, p *Plan, raw []byte, apiVersion, kind string, modRevision int64, forYAML bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errWireFallback
		}
	}()
	t.src = t.src[:0]
	t.nodes = t.nodes[:0]
	t.kids = t.kids[:0]
	t.text = t.text[:0]
	t.stack = t.stack[:0]
	b.start(t, p, raw, apiVersion, kind, modRevision, forYAML)
	return b.object(p.p, 0, int32(len(raw)), true)
}

// start readies b to walk the object stored as raw with plan p, for the
// tree (build) or the JSON or YAML printer: t's static names are the
// plan's.
func (b *wireBuilder) start(t *Tree, p *Plan, raw []byte, apiVersion, kind string, modRevision int64, forYAML bool) {
	t.static, t.staticSafe = p.names, p.namesSafe
	t.escape = true
	b.t, b.data, b.yaml = t, raw, forYAML
	b.recs, b.heads, b.tails = b.recs[:0], b.heads[:0], b.tails[:0]
	b.apiVersion, b.kind = apiVersion, kind
	b.rv, b.rvNext = nil, false
	if modRevision != 0 && p.p.metadata >= 0 {
		b.rvBuf = strconv.AppendInt(b.rvBuf[:0], modRevision, 10)
		b.rv, b.rvIdx = b.rvBuf, p.p.resourceVersion
	}
}

// object appends the object stored in data[from:to].
func (b *wireBuilder) object(p *objPlan, from, to int32, top bool) error {
	if p.err != nil {
		return errWireFallback
	}
	t := b.t
	self := len(t.nodes)
	t.nodes = append(t.nodes, jsonNode{kind: jsonObject})
	base := b.openMessage(len(p.fields))
	recBase := len(b.recs)
	if err := b.scan(&p.scan, base, from, to); err != nil {
		return err
	}
	rvIdx := -1
	if b.rvNext {
		b.rvNext = false
		rvIdx = b.rvIdx
	}
	order := p.jsonOrder
	if b.yaml {
		order = p.yamlOrder
	}
	mark := len(t.stack)
	for _, slot := range order {
		fi := slot.field
		f := &p.fields[fi]
		head := b.heads[base+int32(fi)]
		if int(fi) == rvIdx {
			if !rvStored(b, head) {
				return errWireFallback
			}
			b.key(f)
			b.stringNode(b.rv)
			continue
		}
		if top && int(fi) == p.metadata && b.rv != nil {
			b.rvNext = true
		}
		if f.typeMeta != 0 {
			v := ""
			if top {
				v = b.apiVersion
				if f.typeMeta == 2 {
					v = b.kind
				}
			}
			if v != "" {
				b.key(f)
				b.stringNode([]byte(v))
			}
			continue
		}
		if err := b.field(f, head); err != nil {
			return err
		}
	}
	b.heads, b.tails = b.heads[:base], b.tails[:base]
	b.recs = b.recs[:recBase]
	kids := len(t.kids)
	t.kids = append(t.kids, t.stack[mark:]...)
	t.stack = t.stack[:mark]
	t.nodes[self].from, t.nodes[self].to = int32(kids), int32(len(t.kids))
	t.nodes[self].sorted = true
	return nil
}

// openMessage starts the run of heads and tails of a message of n
// fields, none seen yet, and returns where it starts. It copies them from
// a run of -1s rather than appending one at a time: a listing opens a
// message for each container, port and volume of each pod.
func (b *wireBuilder) openMessage(n int) int32 {
	for len(b.none) < n {
		b.none = append(b.none, -1)
	}
	base := int32(len(b.heads))
	b.heads = append(b.heads, b.none[:n]...)
	b.tails = append(b.tails, b.none[:n]...)
	return base
}

// omitsStored reports whether f, on the wire as r, prints nothing: an
// omitempty or omitzero field that holds its zero value. The tree, JSON
// and YAML walks all ask it.
func (b *wireBuilder) omitsStored(f *jsonField, r *wireRec) (bool, error) {
	if f.pointer || !(f.omitEmpty || f.omitZero) {
		return false, nil
	}
	switch f.val.kind {
	case wkString, wkBytes:
		return r.from == r.to, nil
	case wkBool, wkInt64, wkUint64:
		return r.v == 0, nil
	case wkInt32, wkUint32:
		return uint32(r.v) == 0, nil
	case wkTime:
		if f.omitZero {
			return b.timeIsZero(r)
		}
	}
	return false, nil
}

// rvStored reports whether the stored resourceVersion, which the key's
// revision replaces, is one the typed decoder takes: absent, or one
// string (FuzzWirePrinter found a varint there, which it refuses).
func rvStored(b *wireBuilder, head int32) bool {
	return head < 0 || b.recs[head].typ == protowire.BytesType && b.recs[head].next < 0
}

// scan records the fields of the message in data[from:to]; base is where
// its run of heads starts.
func (b *wireBuilder) scan(s *scanTable, base, from, to int32) error {
	data := b.data[:to]
	i := int(from)
	for i < len(data) {
		// One-byte tags, lengths and varints, most of a message, are read
		// here: protowire's functions are not inlined, and were a tenth
		// of a listing's CPU (BenchmarkRenderListing, docs/benchmarks.md).
		var num protowire.Number
		var typ protowire.Type
		if c := data[i]; c < 0x80 && c >= 8 {
			num, typ = protowire.Number(c>>3), protowire.Type(c&7)
			i++
		} else {
			var n int
			num, typ, n = protowire.ConsumeTag(data[i:])
			if n < 0 {
				return errWireFallback
			}
			i += n
		}
		e := s.lookup(num)
		if e == nil {
			n := protowire.ConsumeFieldValue(num, typ, data[i:])
			if n < 0 {
				return errWireFallback
			}
			i += n
			continue
		}
		var from, to int32
		var v uint64
		switch typ {
		case protowire.VarintType:
			if i < len(data) && data[i] < 0x80 {
				v = uint64(data[i])
				i++
				break
			}
			x, n := protowire.ConsumeVarint(data[i:])
			if n < 0 {
				return errWireFallback
			}
			v = x
			i += n
		case protowire.BytesType:
			if i < len(data) && data[i] < 0x80 {
				l := int(data[i])
				i++
				if l > len(data)-i {
					return errWireFallback
				}
				from, to = int32(i), int32(i+l)
				i += l
				break
			}
			x, n := protowire.ConsumeBytes(data[i:])
			if n < 0 {
				return errWireFallback
			}
			from = int32(i + n - len(x))
			to = int32(i + n)
			i += n
		default:
			return errWireFallback
		}
		if e.inline != nil {
			if typ != protowire.BytesType {
				return errWireFallback
			}
			if err := b.scan(e.inline, base, from, to); err != nil {
				return err
			}
			continue
		}
		r := int32(len(b.recs))
		if len(b.recs) == cap(b.recs) {
			b.recs = slices.Grow(b.recs, 1)
		}
		b.recs = b.recs[:r+1]
		// Written field by field where it stays, from registers: appended
		// whole, the record was built on the stack by narrow stores and
		// copied in by 16-byte loads of them, which cannot take their data
		// from those stores and wait for them. This made a JSON listing
		// 1.05-1.11x and a YAML one 1.05x cheaper in CPU
		// (BenchmarkRenderListing, docs/benchmarks.md).
		rec := &b.recs[r]
		rec.field, rec.typ, rec.from, rec.to, rec.v, rec.next = e.field, typ, from, to, v, -1
		slot := base + int32(e.field)
		if b.tails[slot] < 0 {
			b.heads[slot] = r
		} else {
			b.recs[b.tails[slot]].next = r
		}
		b.tails[slot] = r
	}
	return nil
}

// key appends a key node and pushes it as the next key of the object
// being built.
func (b *wireBuilder) key(f *jsonField) {
	t := b.t
	t.stack = append(t.stack, int32(len(t.nodes)))
	t.nodes = append(t.nodes, jsonNode{kind: jsonString, static: true, plainKey: f.plainKey, from: f.nameFrom, to: f.nameTo})
	t.stack = append(t.stack, int32(len(t.nodes)))
}

// field appends a field of an object: its key and value, or nothing where
// encoding/json leaves it out. head is its first record.
func (b *wireBuilder) field(f *jsonField, head int32) error {
	t := b.t
	if f.repeated {
		if head < 0 {
			if !f.omitEmpty && !f.omitZero {
				b.key(f)
				b.leaf(jsonNull)
			}
			return nil
		}
		b.key(f)
		t.stack = t.stack[:len(t.stack)-1]
		return b.array(&f.val, head, true)
	}
	switch f.val.kind {
	case wkMap:
		if head < 0 {
			if !f.omitEmpty && !f.omitZero {
				b.key(f)
				b.leaf(jsonNull)
			}
			return nil
		}
		b.key(f)
		t.stack = t.stack[:len(t.stack)-1]
		return b.mapNode(f.val.elem, head)
	case wkWrapped:
		if head < 0 {
			if !f.omitEmpty && !f.omitZero {
				b.key(f)
				b.leaf(jsonNull)
			}
			return nil
		}
		return errWireFallback // rare: left to the typed path
	}
	if head >= 0 && b.recs[head].next >= 0 {
		return errWireFallback // a field twice: gogo merges, leave it
	}
	if head < 0 {
		return b.absent(f)
	}
	r := &b.recs[head]
	if r.typ != f.val.wireType() {
		return errWireFallback
	}
	if omit, err := b.omitsStored(f, r); err != nil || omit {
		return err
	}
	b.key(f)
	t.stack = t.stack[:len(t.stack)-1]
	return b.value(&f.val, r, true)
}

// absent appends a field that is not on the wire: its zero value, or
// nothing.
func (b *wireBuilder) absent(f *jsonField) error {
	omit := f.omitEmpty || f.omitZero
	if f.pointer {
		if !omit {
			b.key(f)
			b.leaf(jsonNull)
		}
		return nil
	}
	switch f.val.kind {
	case wkString:
		if !omit {
			b.key(f)
			b.stringNode(nil)
		}
	case wkBool:
		if !omit {
			b.key(f)
			b.leaf(jsonFalse)
		}
	case wkInt32, wkInt64, wkUint32, wkUint64:
		if !omit {
			b.key(f)
			b.number([]byte("0"))
		}
	case wkBytes:
		if !omit {
			b.key(f)
			b.leaf(jsonNull)
		}
	case wkTime:
		if !f.omitZero {
			b.key(f)
			b.leaf(jsonNull)
		}
	case wkMessage:
		b.key(f)
		b.t.stack = b.t.stack[:len(b.t.stack)-1]
		b.t.stack = append(b.t.stack, int32(len(b.t.nodes)))
		return b.object(f.val.msg, 0, 0, false)
	case wkSpecial:
		b.key(f)
		b.t.stack = b.t.stack[:len(b.t.stack)-1]
		return b.rawJSON(f.zeroJSON, true)
	default:
		return errWireFallback
	}
	return nil
}

// leaf appends a node without content and pushes it.
func (b *wireBuilder) leaf(kind jsonKind) {
	b.t.nodes = append(b.t.nodes, jsonNode{kind: kind})
}

// number appends a number node with the text s.
func (b *wireBuilder) number(s []byte) {
	t := b.t
	from := len(t.src)
	t.src = append(t.src, s...)
	t.nodes = append(t.nodes, jsonNode{kind: jsonNumber, from: int32(from), to: int32(len(t.src))})
}

// stringNode appends a string node with the value s as encoding/json and
// a map would give it back: invalid UTF-8 becomes U+FFFD.
func (b *wireBuilder) stringNode(s []byte) error {
	t := b.t
	from := len(t.src)
	if utf8.Valid(s) {
		t.src = append(t.src, s...)
	} else {
		for len(s) > 0 {
			r, n := utf8.DecodeRune(s)
			if r == utf8.RuneError && n == 1 {
				t.src = append(t.src, "\uFFFD"...)
			} else {
				t.src = append(t.src, s[:n]...)
			}
			s = s[n:]
		}
	}
	t.nodes = append(t.nodes, jsonNode{kind: jsonString, from: int32(from), to: int32(len(t.src))})
	if b.yaml && yamlRefuses(t.src[from:]) {
		return ErrUnusual
	}
	return nil
}

// yamlRefuses reports characters the YAML reader does not take in its
// input (DEL, C1 controls, U+FFFE, U+FFFF), which encoding/json writes as
// they are: sigs.k8s.io/yaml fails on them, so the general path decides.
func yamlRefuses(s []byte) bool {
	for j, c := range s {
		switch {
		case c == 0x7F:
			return true
		case c == 0xC2:
			if j+1 < len(s) && s[j+1] >= 0x80 && s[j+1] <= 0x9F {
				return true
			}
		case c == 0xEF:
			if j+2 < len(s) && s[j+1] == 0xBF && s[j+2] >= 0xBE {
				return true
			}
		}
	}
	return false
}

// value appends the value of record r, pushed as the next item or value
// when push.
func (b *wireBuilder) value(v *valuePlan, r *wireRec, push bool) error {
	t := b.t
	if push {
		t.stack = append(t.stack, int32(len(t.nodes)))
	}
	switch v.kind {
	case wkString:
		return b.stringNode(b.data[r.from:r.to])
	case wkBytes:
		raw := b.data[r.from:r.to]
		from := len(t.src)
		t.src = base64.StdEncoding.AppendEncode(t.src, raw)
		t.nodes = append(t.nodes, jsonNode{kind: jsonString, from: int32(from), to: int32(len(t.src))})
	case wkBool:
		if r.v != 0 {
			b.leaf(jsonTrue)
		} else {
			b.leaf(jsonFalse)
		}
	case wkInt32:
		b.scratch = strconv.AppendInt(b.scratch[:0], int64(int32(r.v)), 10)
		b.number(b.scratch)
	case wkInt64:
		b.scratch = strconv.AppendInt(b.scratch[:0], int64(r.v), 10)
		b.number(b.scratch)
	case wkUint32:
		b.scratch = strconv.AppendUint(b.scratch[:0], uint64(uint32(r.v)), 10)
		b.number(b.scratch)
	case wkUint64:
		b.scratch = strconv.AppendUint(b.scratch[:0], r.v, 10)
		b.number(b.scratch)
	case wkMessage:
		return b.object(v.msg, r.from, r.to, false)
	case wkTime:
		sec, zero, err := b.timeSeconds(r)
		if err != nil {
			return err
		}
		if zero {
			b.leaf(jsonNull)
			return nil
		}
		b.scratch = time.Unix(sec, 0).UTC().AppendFormat(b.scratch[:0], time.RFC3339)
		err = b.stringNode(b.scratch)
		if len(b.scratch) == len("2006-01-02T15:04:05Z") && b.scratch[4] == '-' {
			b.t.nodes[len(b.t.nodes)-1].timestamp = true
		}
		return err
	case wkSpecial:
		return b.special(v, b.data[r.from:r.to])
	default:
		return errWireFallback
	}
	return nil
}

// timeSeconds reads a metav1.Time as its Unmarshal does: seconds only;
// zero is the zero time.
func (b *wireBuilder) timeSeconds(r *wireRec) (int64, bool, error) {
	data := b.data[r.from:r.to]
	if len(data) == 0 {
		return 0, true, nil
	}
	var sec int64
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return 0, false, errWireFallback
		}
		data = data[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return 0, false, errWireFallback
			}
			if num == 1 {
				sec = int64(v)
			}
			data = data[n:]
		case num == 1 || num == 2:
			return 0, false, errWireFallback
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return 0, false, errWireFallback
			}
			data = data[n:]
		}
	}
	return sec, time.Unix(sec, 0).IsZero(), nil
}

func (b *wireBuilder) timeIsZero(r *wireRec) (bool, error) {
	_, zero, err := b.timeSeconds(r)
	return zero, err
}

// special appends a value of a type with its own JSON form: the type
// decodes its bytes and prints itself, and the tree takes that JSON.
func (b *wireBuilder) special(v *valuePlan, data []byte) error {
	var cacheKey string
	if len(data) <= 64 {
		b.scratch = append(append(b.scratch[:0], v.specialID), data...)
		if out, ok := b.specialCache[string(b.scratch)]; ok {
			return b.rawJSON(out, false)
		}
		cacheKey = string(b.scratch)
	}
	var wire []byte
	if len(data) >= memoMinBytes {
		b.scratch = append(append(b.scratch[:0], v.specialID), data...)
		if doc, ok := b.t.memo.known[string(b.scratch)]; ok {
			b.t.lazyNode(doc)
			return nil
		}
		wire = b.scratch
	}
	obj := reflect.New(v.special).Interface()
	if err := obj.(protoUnmarshaler).Unmarshal(data); err != nil {
		return errWireFallback
	}
	out, err := obj.(json.Marshaler).MarshalJSON()
	if err != nil || !utf8.Valid(out) {
		return errWireFallback
	}
	if cacheKey != "" {
		if b.specialCache == nil || len(b.specialCache) > 4096 {
			b.specialCache = map[string][]byte{}
		}
		b.specialCache[cacheKey] = out
	}
	root := len(b.t.nodes)
	if err := b.rawJSON(out, false); err != nil {
		return err
	}
	if wire != nil && b.t.nodes[root].memo && b.t.memo.again(wire) {
		b.t.memo.remember(wire, out)
	}
	return nil
}

// rawJSON parses JSON text into the tree as the next value; push says
// whether it still has to be pushed (value already pushed it).
func (b *wireBuilder) rawJSON(doc []byte, push bool) error {
	t := b.t
	if push {
		t.stack = append(t.stack, int32(len(t.nodes)))
	}
	from := len(t.src)
	t.src = append(t.src, doc...)
	root := len(t.nodes)
	i, err := t.value(skipSpace(t.src, from), 1)
	if err != nil {
		return errWireFallback
	}
	if skipSpace(t.src, i) != len(t.src) {
		return errWireFallback
	}
	t.markMemo(root, from, len(t.src))
	return nil
}

// array appends the items of a repeated field, records from head on.
func (b *wireBuilder) array(v *valuePlan, head int32, push bool) error {
	t := b.t
	if push {
		t.stack = append(t.stack, int32(len(t.nodes)))
	}
	self := len(t.nodes)
	t.nodes = append(t.nodes, jsonNode{kind: jsonArray})
	mark := len(t.stack)
	for r := head; r >= 0; r = b.recs[r].next {
		rec := b.recs[r]
		want := v.wireType()
		if rec.typ != want {
			if want != protowire.VarintType || rec.typ != protowire.BytesType {
				return errWireFallback
			}
			// Packed scalars.
			data := b.data[rec.from:rec.to]
			for len(data) > 0 {
				x, n := protowire.ConsumeVarint(data)
				if n < 0 {
					return errWireFallback
				}
				data = data[n:]
				item := wireRec{typ: protowire.VarintType, v: x}
				if err := b.value(v, &item, true); err != nil {
					return err
				}
			}
			continue
		}
		if err := b.value(v, &rec, true); err != nil {
			return err
		}
	}
	kids := len(t.kids)
	t.kids = append(t.kids, t.stack[mark:]...)
	t.stack = t.stack[:mark]
	t.nodes[self].from, t.nodes[self].to = int32(kids), int32(len(t.kids))
	return nil
}

// mapNode appends a map field: one entry message (key 1, value 2) per
// record, from head on.
func (b *wireBuilder) mapNode(v *valuePlan, head int32) error {
	t := b.t
	t.stack = append(t.stack, int32(len(t.nodes)))
	self := len(t.nodes)
	t.nodes = append(t.nodes, jsonNode{kind: jsonObject})
	mark := len(t.stack)
	for r := head; r >= 0; r = b.recs[r].next {
		rec := b.recs[r]
		if rec.typ != protowire.BytesType {
			return errWireFallback
		}
		var key []byte
		val := wireRec{typ: v.wireType(), next: -1}
		hasVal := false
		data := b.data[:rec.to]
		for i := int(rec.from); i < len(data); {
			num, typ, n := protowire.ConsumeTag(data[i:])
			if n < 0 {
				return errWireFallback
			}
			i += n
			switch {
			case num == 1 && typ == protowire.BytesType:
				k, n := protowire.ConsumeBytes(data[i:])
				if n < 0 {
					return errWireFallback
				}
				key = k
				i += n
			case num == 2 && typ == protowire.BytesType && val.typ == protowire.BytesType:
				x, n := protowire.ConsumeBytes(data[i:])
				if n < 0 {
					return errWireFallback
				}
				val.from, val.to = int32(i+n-len(x)), int32(i+n)
				hasVal = true
				i += n
			case num == 2 && typ == protowire.VarintType && val.typ == protowire.VarintType:
				x, n := protowire.ConsumeVarint(data[i:])
				if n < 0 {
					return errWireFallback
				}
				val.v = x
				hasVal = true
				i += n
			case num == 1 || num == 2:
				return errWireFallback
			default:
				n = protowire.ConsumeFieldValue(num, typ, data[i:])
				if n < 0 {
					return errWireFallback
				}
				i += n
			}
		}
		// A key twice (the map keeps the last) or one that is not UTF-8
		// (two could print the same): left to the typed path.
		if !utf8.Valid(key) {
			return errWireFallback
		}
		if n := (len(t.stack) - mark) / 2; n < 32 {
			for k := mark; k < len(t.stack); k += 2 {
				if string(t.strBytes(t.nodes[t.stack[k]])) == string(key) {
					return errWireFallback
				}
			}
		} else {
			if n == 32 {
				clear(b.keys)
				if b.keys == nil {
					b.keys = map[string]struct{}{}
				}
				for k := mark; k < len(t.stack); k += 2 {
					b.keys[string(t.strBytes(t.nodes[t.stack[k]]))] = struct{}{}
				}
			}
			if _, dup := b.keys[string(key)]; dup {
				return errWireFallback
			}
			b.keys[string(key)] = struct{}{}
		}
		t.stack = append(t.stack, int32(len(t.nodes)))
		if err := b.stringNode(key); err != nil {
			return err
		}
		if b.yaml && len(key) > maxYAMLKeyChars/6 {
			b.scratch = appendJSONEscaped(b.scratch[:0], t.strBytes(t.nodes[len(t.nodes)-1]))
			if utf8.RuneCount(b.scratch)+2 > maxYAMLKeyChars {
				return ErrUnusual
			}
		}
		if !hasVal {
			switch v.kind {
			case wkMessage:
				val.from, val.to = 0, 0
			case wkSpecial:
				t.stack = append(t.stack, int32(len(t.nodes)))
				z, err := reflect.New(v.special).Interface().(json.Marshaler).MarshalJSON()
				if err != nil {
					return errWireFallback
				}
				if err := b.rawJSON(z, false); err != nil {
					return err
				}
				continue
			case wkWrapped:
				return errWireFallback
			}
		}
		if v.kind == wkWrapped {
			return errWireFallback
		}
		if err := b.value(v, &val, true); err != nil {
			return err
		}
	}
	kids := len(t.kids)
	t.kids = append(t.kids, t.stack[mark:]...)
	t.stack = t.stack[:mark]
	t.nodes[self].from, t.nodes[self].to = int32(kids), int32(len(t.kids))
	return nil
}

// jsonSafe marks the ASCII bytes encoding/json writes as they are (with
// HTML escaping on).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// escapesIn8 reports whether any of the 8 bytes of x (a word of a
// string) is one appendJSONText does not copy as it is: a control
// character, '"', '\\', '<', '>', '&' or a byte of a multi-byte UTF-8
// character. Most strings of a listing (names, images, IDs) have nothing
// to escape: testing them a word at a time instead of a byte at a time
// through jsonSafe halved their share of BenchmarkRenderListingJSON's CPU
// (11% to 6%) and made the listing 1.04x cheaper (docs/benchmarks.md).
//
// A byte's high bit says it is not ASCII; for the others, the high bit of
// a byte of v-0x01... is set where v's byte is 0 and of x-0x20... where
// x's byte is under 0x20. A borrow from a byte that matches can mark a
// byte above it too, which changes nothing for the answer.
func escapesIn8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quoteOrAmp := (x ^ '"'*ones) &^ (('"' ^ '&') * ones) // '"' 0x22, '&' 0x26
	angle := (x ^ '<'*ones) &^ (('<' ^ '>') * ones)      // '<' 0x3c, '>' 0x3e
	backslash := x ^ '\\'*ones
	return (x|(x-' '*ones)|(quoteOrAmp-ones)|(angle-ones)|(backslash-ones))&highs != 0
}

// appendJSONEscaped appends s as encoding/json writes a string (with its
// default HTML escaping), between quotes.
func appendJSONEscaped(dst, s []byte) []byte { return appendJSONText(dst, s, false) }

// appendJSONText is appendJSONEscaped, and with fix the string as a tree
// holds it first (stringNode: invalid UTF-8 as U+FFFD, which
// encoding/json writes as it is) in the same pass.
func appendJSONText(dst, s []byte, fix bool) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !escapesIn8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
			continue
		}
		if i+8 > len(s) && len(s) >= 8 && !escapesIn8(binary.LittleEndian.Uint64(s[len(s)-8:])) {
			// The last 8 bytes, some of them seen already: none to escape.
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			if fix {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, `\ufffd`...)
			}
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
