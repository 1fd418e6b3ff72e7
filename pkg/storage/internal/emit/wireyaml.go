package emit

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file is wirejson.go for YAML: it writes the YAML of a stored
// protobuf object straight from its wire form, as AppendYAMLTree prints
// the tree Build makes (forYAML true), driving the same yamlWriter with
// the same calls the tree printer makes for each node, in the plan's
// yamlOrder. An object or a list that turns out empty has written nothing
// when that is known (only its indentation was pushed and popped), so
// its flow form (`{}`, `[]`) is written then. Values of types with their
// own JSON form pass through the tree and its cache as before.

// AppendYAML appends the object stored as raw (see Build) as
// AppendYAMLTree(dst, t, listItem) prints it after Build(t, p, raw,
// apiVersion, kind, modRevision, true). t is scratch for the values of
// types with their own JSON form, and keeps its cache of recurring ones.
// Any error (ErrUnusual where the YAML reader would refuse a character,
// as Build) leaves the object to the typed path; dst is then to be
// dropped.
func (w *Wire) AppendYAML(dst []byte, t *Tree, p *Plan, raw []byte, apiVersion, kind string, modRevision int64, listItem bool) (out []byte, err error) {
	b := &w.b
	y := &b.yw
	defer func() {
		if r := recover(); r != nil {
			out, err = y.out, errWireFallback
		}
		y.out = nil
	}()
	b.start(t, p, raw, apiVersion, kind, modRevision, true)
	*y = yamlWriter{out: dst, tree: t, indent: -1, whitespace: true, indention: true, indents: y.indents[:0], keys: y.keys[:0]}
	if listItem {
		y.out = append(y.out, '-', ' ')
		y.prefix = "  "
	}
	if err := b.yObject(p.p, 0, int32(len(raw)), true); err != nil {
		return y.out, err
	}
	y.writeIndent() // the document end
	return y.out[:len(y.out)-len(y.prefix)], nil
}

// yString is stringNode and the printer's string: s as a value (UTF-8
// fixed as the tree holds it), or ErrUnusual where the YAML reader would
// refuse it.
func (b *wireBuilder) yString(s []byte, simpleKey bool) error {
	if len(s) > 0 && isPlainWord(s) {
		// Printable ASCII: valid, nothing the reader refuses.
		b.yw.plainWordStr(s, simpleKey)
		return nil
	}
	if !utf8.Valid(s) {
		fixed := b.scratch[:0]
		for len(s) > 0 {
			r, n := utf8.DecodeRune(s)
			if r == utf8.RuneError && n == 1 {
				fixed = append(fixed, "\uFFFD"...)
			} else {
				fixed = append(fixed, s[:n]...)
			}
			s = s[n:]
		}
		b.scratch = fixed
		s = fixed
	}
	if yamlRefuses(s) {
		return ErrUnusual
	}
	b.yw.str(s, simpleKey)
	return nil
}

// yKey writes the name of field f as the next key of a block mapping, as
// the tree printer writes a static key node.
func (b *wireBuilder) yKey(f *jsonField) {
	w := &b.yw
	w.writeIndent()
	key := b.t.static[f.nameFrom:f.nameTo]
	switch {
	case f.plainKey && b.t.staticSafe:
		// plainASCII(key, false) and the ":" indicator right after the
		// indentation (no space to write, no fold): a key of every line.
		w.out = append(append(w.out, key...), ':')
		w.column += len(key) + 1
		w.whitespace, w.indention = false, false
	case f.plainKey:
		w.plain(key, false)
		w.indicator(":", false, false, false)
	case len(key) <= yamlSimpleKeyMax && !hasLineBreak(key):
		w.str(key, true)
		w.indicator(":", false, false, false)
	default:
		w.indicator("?", true, false, true)
		w.str(key, false)
		w.writeIndent()
		w.indicator(":", true, false, true)
	}
}

// yObject is object(p, from, to, top) printed as a mapping value or
// item (the tree printer's value of an object node).
func (b *wireBuilder) yObject(p *objPlan, from, to int32, top bool) error {
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
	w := &b.yw
	w.pushIndent(false, false)
	n := 0
	for _, slot := range p.yamlOrder {
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
			b.yKey(f)
			n++
			if err := b.yString(b.rv, false); err != nil {
				return err
			}
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
				b.yKey(f)
				n++
				if err := b.yString([]byte(v), false); err != nil {
					return err
				}
			}
			continue
		}
		wrote, err := b.yField(f, head)
		if err != nil {
			return err
		}
		if wrote {
			n++
		}
	}
	w.popIndent()
	b.heads, b.tails = b.heads[:base], b.tails[:base]
	b.recs = b.recs[:recBase]
	if n == 0 {
		// Nothing written but the indentation pushed and popped: the
		// empty mapping's flow form, as the tree printer writes it.
		w.indicator("{", true, true, false)
		w.pushIndent(true, false)
		w.popIndent()
		w.indicator("}", false, false, false)
	}
	return nil
}

// yField is field: f of a mapping, or nothing; wrote says which.
func (b *wireBuilder) yField(f *jsonField, head int32) (wrote bool, err error) {
	w := &b.yw
	if f.repeated || f.val.kind == wkMap || f.val.kind == wkWrapped {
		if head < 0 {
			if !f.omitEmpty && !f.omitZero {
				b.yKey(f)
				w.plainWord("null")
				return true, nil
			}
			return false, nil
		}
		switch {
		case f.repeated:
			b.yKey(f)
			return true, b.yArray(&f.val, head)
		case f.val.kind == wkMap:
			b.yKey(f)
			return true, b.yMap(f.val.elem, head)
		}
		return false, errWireFallback // wkWrapped: rare, left to the typed path
	}
	if head >= 0 && b.recs[head].next >= 0 {
		return false, errWireFallback // a field twice: gogo merges, leave it
	}
	if head < 0 {
		return b.yAbsent(f)
	}
	r := &b.recs[head]
	if r.typ != f.val.wireType() {
		return false, errWireFallback
	}
	if omit, err := b.omitsStored(f, r); err != nil || omit {
		return false, err
	}
	b.yKey(f)
	return true, b.yValue(&f.val, r, false, true)
}

// yAbsent is absent: a field not on the wire, its zero value or nothing.
func (b *wireBuilder) yAbsent(f *jsonField) (bool, error) {
	w := &b.yw
	omit := f.omitEmpty || f.omitZero
	if f.pointer {
		if omit {
			return false, nil
		}
		b.yKey(f)
		w.plainWord("null")
		return true, nil
	}
	switch f.val.kind {
	case wkString:
		if !omit {
			b.yKey(f)
			w.str(nil, false)
			return true, nil
		}
	case wkBool:
		if !omit {
			b.yKey(f)
			w.plainWord("false")
			return true, nil
		}
	case wkInt32, wkInt64, wkUint32, wkUint64:
		if !omit {
			b.yKey(f)
			w.plainWord("0")
			return true, nil
		}
	case wkBytes:
		if !omit {
			b.yKey(f)
			w.plainWord("null")
			return true, nil
		}
	case wkTime:
		if !f.omitZero {
			b.yKey(f)
			w.plainWord("null")
			return true, nil
		}
	case wkMessage:
		b.yKey(f)
		return true, b.yObject(f.val.msg, 0, 0, false)
	case wkSpecial:
		b.yKey(f)
		return true, b.yRawJSON(f.zeroJSON, false, true)
	default:
		return false, errWireFallback
	}
	return false, nil
}

// yValue is value and the printer's node: the value of record r as an
// item of a sequence or a value of a mapping.
func (b *wireBuilder) yValue(v *valuePlan, r *wireRec, inSequence, inMapping bool) error {
	w := &b.yw
	switch v.kind {
	case wkString:
		return b.yString(b.data[r.from:r.to], false)
	case wkBytes:
		b.scratch = base64.StdEncoding.AppendEncode(b.scratch[:0], b.data[r.from:r.to])
		w.str(b.scratch, false)
	case wkBool:
		if r.v != 0 {
			w.plainWord("true")
		} else {
			w.plainWord("false")
		}
	case wkInt32:
		b.scratch = strconv.AppendInt(b.scratch[:0], int64(int32(r.v)), 10)
		w.number(b.scratch, false)
	case wkInt64:
		b.scratch = strconv.AppendInt(b.scratch[:0], int64(r.v), 10)
		w.number(b.scratch, false)
	case wkUint32:
		b.scratch = strconv.AppendUint(b.scratch[:0], uint64(uint32(r.v)), 10)
		w.number(b.scratch, false)
	case wkUint64:
		b.scratch = strconv.AppendUint(b.scratch[:0], r.v, 10)
		w.number(b.scratch, false)
	case wkMessage:
		return b.yMessage(v.msg, r.from, r.to)
	case wkTime:
		sec, zero, err := b.timeSeconds(r)
		if err != nil {
			return err
		}
		if zero {
			w.plainWord("null")
			return nil
		}
		b.scratch = time.Unix(sec, 0).UTC().AppendFormat(b.scratch[:0], time.RFC3339)
		if len(b.scratch) == len("2006-01-02T15:04:05Z") && b.scratch[4] == '-' {
			// A timestamp node: it reads as one, so it is quoted.
			w.pushIndent(true, false)
			w.doubleQuoted(b.scratch, true)
			w.popIndent()
			return nil
		}
		return b.yString(b.scratch, false)
	case wkSpecial:
		b.jTreeStart()
		if err := b.special(v, b.data[r.from:r.to]); err != nil {
			return err
		}
		w.node(0, inSequence, inMapping, false)
	default:
		return errWireFallback
	}
	return nil
}

// yRawJSON writes JSON text as the tree would hold and print it.
func (b *wireBuilder) yRawJSON(doc []byte, inSequence, inMapping bool) error {
	b.jTreeStart()
	if err := b.rawJSON(doc, false); err != nil {
		return err
	}
	b.yw.node(0, inSequence, inMapping, false)
	return nil
}

// yArray is array: the items of a repeated field, records from head on,
// as a mapping's value.
func (b *wireBuilder) yArray(v *valuePlan, head int32) error {
	w := &b.yw
	w.pushIndent(false, !w.indention)
	n := 0
	item := func(r *wireRec) error {
		n++
		w.writeIndent()
		w.indicator("-", true, false, true)
		return b.yValue(v, r, true, false)
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
	w.popIndent()
	if n == 0 {
		w.indicator("[", true, true, false)
		w.pushIndent(true, false)
		w.popIndent()
		w.indicator("]", false, false, false)
	}
	return nil
}

// yMap is mapNode: a map field as a mapping's value, its keys sorted as
// the tree printer sorts them (the same order in, the same sort).
func (b *wireBuilder) yMap(v *valuePlan, head int32) error {
	mark := len(b.entries)
	defer func() { b.entries = b.entries[:mark] }()
	if err := b.mapEntries(v, head); err != nil {
		return err
	}
	// Duplicates and long keys as mapNode checks them (in wire order).
	entries := b.entries[mark:]
	for i := range entries {
		key := entries[i].key
		if yamlRefuses(key) {
			return ErrUnusual
		}
		for j := range i {
			if string(entries[j].key) == string(key) {
				return errWireFallback // a key twice: the map keeps the last
			}
		}
		if len(key) > maxYAMLKeyChars/6 {
			b.scratch = appendJSONEscaped(b.scratch[:0], key)
			if utf8.RuneCount(b.scratch)+2 > maxYAMLKeyChars {
				return ErrUnusual
			}
		}
	}
	w := &b.yw
	keys := w.keys[:0]
	for i := range entries {
		keys = append(keys, sortKey{key: entries[i].key, keyNode: int32(mark + i)})
	}
	w.keys = keys
	sortKeyList(keys)
	// The entries in that order go after them: w.keys is every
	// mapping's scratch, and a value may hold mappings of its own.
	sorted := len(b.entries)
	for _, k := range keys {
		b.entries = append(b.entries, b.entries[k.keyNode])
	}
	w.pushIndent(false, false)
	for i := range entries {
		e := b.entries[sorted+i] // b.entries may move meanwhile
		w.writeIndent()
		if len(e.key) <= yamlSimpleKeyMax && !hasLineBreak(e.key) {
			w.str(e.key, true)
			w.indicator(":", false, false, false)
		} else {
			w.indicator("?", true, false, true)
			w.str(e.key, false)
			w.writeIndent()
			w.indicator(":", true, false, true)
		}
		if !e.hasVal {
			switch v.kind {
			case wkMessage:
				e.val.from, e.val.to = 0, 0
			case wkSpecial:
				z, err := reflect.New(v.special).Interface().(json.Marshaler).MarshalJSON()
				if err != nil {
					return errWireFallback
				}
				if err := b.yRawJSON(z, false, true); err != nil {
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
		if err := b.yValue(v, &e.val, false, true); err != nil {
			return err
		}
	}
	w.popIndent()
	return nil
}
