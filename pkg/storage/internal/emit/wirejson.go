package emit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file writes the indented JSON of a stored protobuf object straight
// from its wire form: what AppendIndentedJSON prints of the tree Build
// makes (forYAML false), without the tree. The walk is Build's (the same
// plans, scan, omission rules and fallbacks; wiretree.go), but each value
// is written where Build would append a node, in the order the printer
// would then sort the fields in (the plan's jsonOrder). Only values of
// types with their own JSON form (managed fields, quantities) still pass
// through a tree, since their JSON text must be parsed to sort its keys;
// they print through the same printer and cache as before. A tree costs
// half the CPU of a JSON listing (BenchmarkRenderListingJSON,
// docs/benchmarks.md) and no library writes JSON from protobuf wire bytes
// with encoding/json's field names, omissions and key order.

// AppendJSON appends the object stored as raw (see Build) as
// AppendIndentedJSON(dst, t, prefix) prints it after Build(t, p, raw,
// apiVersion, kind, modRevision, false). t is scratch for the values of
// types with their own JSON form, and keeps its cache of recurring ones.
// Any error leaves the object to the typed path, as Build's do; dst is
// then to be dropped.
func (w *Wire) AppendJSON(dst []byte, t *Tree, p *Plan, raw []byte, apiVersion, kind string, modRevision int64, prefix string) (out []byte, err error) {
	b := &w.b
	defer func() {
		if r := recover(); r != nil {
			out, err = dst, errWireFallback
		}
	}()
	b.start(t, p, raw, apiVersion, kind, modRevision, false)
	b.out, b.prefix = dst, prefix
	if len(b.lineStarts) != 2+len(prefix)+jsonLineCopy || string(b.lineStarts[2:2+len(prefix)]) != prefix {
		b.lineStarts = append(append(append(b.lineStarts[:0], ',', '\n'), prefix...), spaces[:jsonLineCopy]...)
	}
	err = b.jObject(p.p, 0, int32(len(raw)), true, 0)
	out = b.out
	b.out = nil
	return out, err
}

// jsonLineCopy and jsonKeyCopy are the fixed sizes in which a line's
// start and a key are moved into the text: a move of a known size is a
// few vector moves, where append calls memmove. The bytes moved past the
// ones wanted are written over next.
const (
	jsonLineCopy = 64
	jsonKeyCopy  = 32
)

// jNewline starts a line at depth.
func (b *wireBuilder) jNewline(depth int) {
	if line := 1 + len(b.prefix) + 4*depth; line <= jsonLineCopy {
		b.jLineStart(1, line)
		return
	}
	b.out = jsonNewline(b.out, b.prefix, depth)
}

// jLineStart writes the line bytes lineStarts[from:from+n], n at most
// jsonLineCopy, and leaves room for jsonKeyCopy more bytes after them.
func (b *wireBuilder) jLineStart(from, n int) {
	out := b.out
	at := len(out)
	if cap(out)-at < jsonLineCopy+jsonKeyCopy {
		out = slices.Grow(out, jsonLineCopy+jsonKeyCopy)
	}
	out = out[:at+jsonLineCopy]
	// Four moves of 16 bytes: for one of 64 the compiler calls memmove.
	starts := b.lineStarts[from : from+jsonLineCopy]
	*(*[16]byte)(out[at:]) = *(*[16]byte)(starts)
	*(*[16]byte)(out[at+16:]) = *(*[16]byte)(starts[16:])
	*(*[16]byte)(out[at+32:]) = *(*[16]byte)(starts[32:])
	*(*[16]byte)(out[at+48:]) = *(*[16]byte)(starts[48:])
	b.out = out[:at+n]
}

// jKey writes the name of field f as the next key of an object at depth
// (its fields at depth+1); n counts the fields written so far. The comma,
// line break and indentation are one fixed-size move, the key another: a
// key and its line are most of the lines of a JSON listing, and writing
// them with seven appends was a sixth of its CPU
// (BenchmarkRenderListingJSON, docs/benchmarks.md).
func (b *wireBuilder) jKey(f *jsonField, depth int, n *int) {
	from := 1
	if *n > 0 {
		from = 0
	}
	*n++
	if line := 2 + len(b.prefix) + 4*(depth+1) - from; line <= jsonLineCopy && f.jsonKeyLen > 0 {
		b.jLineStart(from, line)
		at := len(b.out)
		out := b.out[:at+jsonKeyCopy]
		*(*[jsonKeyCopy]byte)(out[at:]) = f.jsonKeyWord
		b.out = out[:at+int(f.jsonKeyLen)]
		return
	}
	if from == 0 {
		b.out = append(b.out, ',')
	}
	b.jNewline(depth + 1)
	b.out = append(b.out, f.jsonKey...)
}

// jString writes a string as the tree would hold it (invalid UTF-8 as
// U+FFFD) and the printer escape it.
func (b *wireBuilder) jString(s []byte) {
	b.out = appendJSONText(b.out, s, true)
}

// jObject is object(p, from, to, top) written at depth.
func (b *wireBuilder) jObject(p *objPlan, from, to int32, top bool, depth int) error {
	if p.err != nil {
		return errWireFallback
	}
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
	b.out = append(b.out, '{')
	n := 0
	for _, slot := range p.jsonOrder {
		fi := slot.field
		head := b.heads[base+int32(fi)]
		if head < 0 && slot.quiet && int(fi) != rvIdx {
			continue
		}
		f := &p.fields[fi]
		if int(fi) == rvIdx {
			if !rvStored(b, head) {
				return errWireFallback
			}
			b.jKey(f, depth, &n)
			b.jString(b.rv)
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
				b.jKey(f, depth, &n)
				b.jString([]byte(v))
			}
			continue
		}
		if err := b.jField(f, head, depth, &n); err != nil {
			return err
		}
	}
	b.heads, b.tails = b.heads[:base], b.tails[:base]
	b.recs = b.recs[:recBase]
	if n > 0 {
		b.jNewline(depth)
	}
	b.out = append(b.out, '}')
	return nil
}

// jField is field: f of an object at depth, or nothing.
func (b *wireBuilder) jField(f *jsonField, head int32, depth int, n *int) error {
	if f.repeated || f.val.kind == wkMap || f.val.kind == wkWrapped {
		if head < 0 {
			if !f.omitEmpty && !f.omitZero {
				b.jKey(f, depth, n)
				b.out = append(b.out, "null"...)
			}
			return nil
		}
		switch {
		case f.repeated:
			b.jKey(f, depth, n)
			return b.jArray(&f.val, head, depth+1)
		case f.val.kind == wkMap:
			b.jKey(f, depth, n)
			return b.jMap(f.val.elem, head, depth+1)
		}
		return errWireFallback // wkWrapped: rare, left to the typed path
	}
	if head >= 0 && b.recs[head].next >= 0 {
		return errWireFallback // a field twice: gogo merges, leave it
	}
	if head < 0 {
		return b.jAbsent(f, depth, n)
	}
	r := &b.recs[head]
	if r.typ != f.val.wireType() {
		return errWireFallback
	}
	if omit, err := b.omitsStored(f, r); err != nil || omit {
		return err
	}
	b.jKey(f, depth, n)
	return b.jValue(&f.val, r, depth+1)
}

// jAbsent is absent: a field not on the wire, its zero value or nothing.
func (b *wireBuilder) jAbsent(f *jsonField, depth int, n *int) error {
	omit := f.omitEmpty || f.omitZero
	if f.pointer {
		if !omit {
			b.jKey(f, depth, n)
			b.out = append(b.out, "null"...)
		}
		return nil
	}
	switch f.val.kind {
	case wkString:
		if !omit {
			b.jKey(f, depth, n)
			b.out = append(b.out, '"', '"')
		}
	case wkBool:
		if !omit {
			b.jKey(f, depth, n)
			b.out = append(b.out, "false"...)
		}
	case wkInt32, wkInt64, wkUint32, wkUint64:
		if !omit {
			b.jKey(f, depth, n)
			b.out = append(b.out, '0')
		}
	case wkBytes:
		if !omit {
			b.jKey(f, depth, n)
			b.out = append(b.out, "null"...)
		}
	case wkTime:
		if !f.omitZero {
			b.jKey(f, depth, n)
			b.out = append(b.out, "null"...)
		}
	case wkMessage:
		b.jKey(f, depth, n)
		return b.jObject(f.val.msg, 0, 0, false, depth+1)
	case wkSpecial:
		b.jKey(f, depth, n)
		return b.jRawJSON(f.zeroJSON, depth+1)
	default:
		return errWireFallback
	}
	return nil
}

// jValue is value: the value of record r at depth.
func (b *wireBuilder) jValue(v *valuePlan, r *wireRec, depth int) error {
	switch v.kind {
	case wkString:
		b.jString(b.data[r.from:r.to])
	case wkBytes:
		b.out = append(b.out, '"')
		b.out = base64.StdEncoding.AppendEncode(b.out, b.data[r.from:r.to])
		b.out = append(b.out, '"')
	case wkBool:
		if r.v != 0 {
			b.out = append(b.out, "true"...)
		} else {
			b.out = append(b.out, "false"...)
		}
	case wkInt32:
		b.out = strconv.AppendInt(b.out, int64(int32(r.v)), 10)
	case wkInt64:
		b.out = strconv.AppendInt(b.out, int64(r.v), 10)
	case wkUint32:
		b.out = strconv.AppendUint(b.out, uint64(uint32(r.v)), 10)
	case wkUint64:
		b.out = strconv.AppendUint(b.out, r.v, 10)
	case wkMessage:
		return b.jMessage(v.msg, r.from, r.to, depth)
	case wkTime:
		sec, zero, err := b.timeSeconds(r)
		if err != nil {
			return err
		}
		if zero {
			b.out = append(b.out, "null"...)
			return nil
		}
		// RFC 3339 in UTC: digits and "-:TZ", nothing to escape.
		b.out = append(b.out, '"')
		b.out = time.Unix(sec, 0).UTC().AppendFormat(b.out, time.RFC3339)
		b.out = append(b.out, '"')
	case wkSpecial:
		return b.jSpecial(v, b.data[r.from:r.to], depth)
	default:
		return errWireFallback
	}
	return nil
}

// jSpecial is special: a value of a type with its own JSON form, parsed
// into the tree (or taken from its cache, memo.go) and printed from there.
func (b *wireBuilder) jSpecial(v *valuePlan, data []byte, depth int) error {
	b.jTreeStart()
	if err := b.special(v, data); err != nil {
		return err
	}
	b.out = appendIndentedJSON(b.out, b.t, 0, b.prefix, depth)
	return nil
}

// jRawJSON writes JSON text as the tree would hold and print it.
func (b *wireBuilder) jRawJSON(doc []byte, depth int) error {
	b.jTreeStart()
	if err := b.rawJSON(doc, false); err != nil {
		return err
	}
	b.out = appendIndentedJSON(b.out, b.t, 0, b.prefix, depth)
	return nil
}

// jTreeStart empties the tree for one value.
func (b *wireBuilder) jTreeStart() {
	t := b.t
	t.src = t.src[:0]
	t.nodes = t.nodes[:0]
	t.kids = t.kids[:0]
	t.text = t.text[:0]
	t.stack = t.stack[:0]
}

// jArray is array: the items of a repeated field, records from head on,
// at depth.
func (b *wireBuilder) jArray(v *valuePlan, head int32, depth int) error {
	b.out = append(b.out, '[')
	n := 0
	item := func(r *wireRec) error {
		if n > 0 {
			b.out = append(b.out, ',')
		}
		n++
		b.jNewline(depth + 1)
		return b.jValue(v, r, depth+1)
	}
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
				x, k := protowire.ConsumeVarint(data)
				if k < 0 {
					return errWireFallback
				}
				data = data[k:]
				if err := item(&wireRec{typ: protowire.VarintType, v: x}); err != nil {
					return err
				}
			}
			continue
		}
		if err := item(&rec); err != nil {
			return err
		}
	}
	if n > 0 {
		b.jNewline(depth)
	}
	b.out = append(b.out, ']')
	return nil
}

// jMapEntry is one entry of a map field on the wire.
type jMapEntry struct {
	key    []byte
	val    wireRec
	hasVal bool
}

// jMap is mapNode: a map field, one entry message per record from head
// on, written with its keys sorted as the printer sorts them (by their
// bytes).
func (b *wireBuilder) jMap(v *valuePlan, head int32, depth int) error {
	mark := len(b.entries)
	defer func() { b.entries = b.entries[:mark] }()
	if err := b.mapEntries(v, head); err != nil {
		return err
	}
	entries := b.entries[mark:]
	slices.SortStableFunc(entries, func(x, y jMapEntry) int { return bytes.Compare(x.key, y.key) })
	for i := 1; i < len(entries); i++ {
		if bytes.Equal(entries[i].key, entries[i-1].key) {
			return errWireFallback // a key twice: the map keeps the last
		}
	}
	b.out = append(b.out, '{')
	for i := range entries {
		// The tail of b.entries may move while a value is written (a
		// map in a map's message values): index it afresh.
		e := b.entries[mark+i]
		if i > 0 {
			b.out = append(b.out, ',')
		}
		b.jNewline(depth + 1)
		b.out = appendJSONEscaped(b.out, e.key)
		b.out = append(b.out, ':', ' ')
		if !e.hasVal {
			switch v.kind {
			case wkMessage:
				e.val.from, e.val.to = 0, 0
			case wkSpecial:
				z, err := reflect.New(v.special).Interface().(json.Marshaler).MarshalJSON()
				if err != nil {
					return errWireFallback
				}
				if err := b.jRawJSON(z, depth+1); err != nil {
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
		if err := b.jValue(v, &e.val, depth+1); err != nil {
			return err
		}
	}
	if len(entries) > 0 {
		b.jNewline(depth)
	}
	b.out = append(b.out, '}')
	return nil
}

// mapEntries appends the entries of a map field (one entry message per
// record from head on) to b.entries, in wire order.
func (b *wireBuilder) mapEntries(v *valuePlan, head int32) error {
	for r := head; r >= 0; r = b.recs[r].next {
		rec := b.recs[r]
		if rec.typ != protowire.BytesType {
			return errWireFallback
		}
		e := jMapEntry{val: wireRec{typ: v.wireType(), next: -1}}
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
				e.key = k
				i += n
			case num == 2 && typ == protowire.BytesType && e.val.typ == protowire.BytesType:
				x, n := protowire.ConsumeBytes(data[i:])
				if n < 0 {
					return errWireFallback
				}
				e.val.from, e.val.to = int32(i+n-len(x)), int32(i+n)
				e.hasVal = true
				i += n
			case num == 2 && typ == protowire.VarintType && e.val.typ == protowire.VarintType:
				x, n := protowire.ConsumeVarint(data[i:])
				if n < 0 {
					return errWireFallback
				}
				e.val.v = x
				e.hasVal = true
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
		// A key that is not UTF-8 (two could print the same): left to
		// the typed path, as mapNode does.
		if !utf8.Valid(e.key) {
			return errWireFallback
		}
		if e.key == nil {
			e.key = []byte{}
		}
		b.entries = append(b.entries, e)
	}
	return nil
}
