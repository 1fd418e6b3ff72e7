package emit

import (
	"reflect"

	"google.golang.org/protobuf/encoding/protowire"
)

// objectName returns metadata.name of the object stored as raw, for -o
// name, without building its tree: it walks the whole message with the
// plan as the tree builder would, so a value the typed decoder refuses
// is still left to it (errWireFallback), but makes no nodes.
func (b *wireBuilder) objectName(plan *objPlan, raw []byte) (name []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			name, err = nil, errWireFallback
		}
	}()
	if plan.metadata < 0 {
		return nil, errWireFallback
	}
	b.name, b.nameSeen = nil, 0
	if err := b.check(plan, raw, 1); err != nil {
		return nil, err
	}
	if b.nameSeen > 1 {
		return nil, errWireFallback
	}
	return b.name, nil
}

// check walks the message data of plan p; level 1 is the top object, 2
// its metadata.
func (b *wireBuilder) check(p *objPlan, data []byte, level int) error {
	if p.err != nil {
		return errWireFallback
	}
	return b.checkFields(p, &p.scan, data, level)
}

func (b *wireBuilder) checkFields(p *objPlan, s *scanTable, data []byte, level int) error {
	for len(data) > 0 {
		// One-byte tags, lengths and varints are read here, as scan reads
		// them: protowire's functions are not inlined, and were a fifth
		// of -o name's CPU (BenchmarkRenderStoredName).
		var num protowire.Number
		var typ protowire.Type
		var n int
		if c := data[0]; c < 0x80 && c >= 8 {
			num, typ = protowire.Number(c>>3), protowire.Type(c&7)
			data = data[1:]
		} else {
			if num, typ, n = protowire.ConsumeTag(data); n < 0 {
				return errWireFallback
			}
			data = data[n:]
		}
		e := s.lookup(num)
		if e == nil {
			n = protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return errWireFallback
			}
			data = data[n:]
			continue
		}
		var v []byte
		switch {
		case len(data) > 0 && data[0] < 0x80 && typ == protowire.VarintType:
			n = 1
		case len(data) > 0 && data[0] < 0x80 && typ == protowire.BytesType:
			if n = 1 + int(data[0]); n > len(data) {
				return errWireFallback
			}
			v = data[1:n]
		case typ == protowire.VarintType:
			_, n = protowire.ConsumeVarint(data)
		case typ == protowire.BytesType:
			v, n = protowire.ConsumeBytes(data)
		default:
			return errWireFallback
		}
		if n < 0 {
			return errWireFallback
		}
		data = data[n:]
		if e.inline != nil {
			if typ != protowire.BytesType {
				return errWireFallback
			}
			if err := b.checkFields(p, e.inline, v, level); err != nil {
				return err
			}
			continue
		}
		f := &p.fields[e.field]
		want := f.val.wireType()
		if f.repeated && want == protowire.VarintType && typ == protowire.BytesType {
			for len(v) > 0 { // packed
				_, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return errWireFallback
				}
				v = v[n:]
			}
			continue
		}
		if f.val.kind == wkMap {
			want = protowire.BytesType
		}
		if typ != want {
			return errWireFallback
		}
		if level == 2 && int(e.field) == p.nameField {
			b.name = v
			b.nameSeen++
		}
		next := 0
		if level == 1 && int(e.field) == p.metadata {
			next = 2
		}
		if err := b.checkValue(&f.val, v, next); err != nil {
			return err
		}
	}
	return nil
}

// checkValue walks one value of kind v.kind.
func (b *wireBuilder) checkValue(v *valuePlan, data []byte, level int) error {
	switch v.kind {
	case wkMessage:
		return b.check(v.msg, data, level)
	case wkTime:
		r := wireRec{from: 0, to: int32(len(data))}
		saved := b.data
		b.data = data
		_, _, err := b.timeSeconds(&r)
		b.data = saved
		return err
	case wkSpecial:
		// Small values (quantities, int-or-strings) repeat: each is
		// decoded once.
		small := len(data) <= 64
		if small {
			b.scratch = append(append(b.scratch[:0], v.specialID), data...)
			if _, ok := b.checked[string(b.scratch)]; ok {
				return nil
			}
		}
		obj := reflect.New(v.special).Interface()
		if obj.(protoUnmarshaler).Unmarshal(data) != nil {
			return errWireFallback
		}
		if small {
			if b.checked == nil || len(b.checked) > 4096 {
				b.checked = map[string]struct{}{}
			}
			b.checked[string(b.scratch)] = struct{}{}
		}
		return nil
	case wkMap:
		for len(data) > 0 {
			num, typ, n := protowire.ConsumeTag(data)
			if n < 0 {
				return errWireFallback
			}
			data = data[n:]
			var x []byte
			switch {
			case num == 1 && typ == protowire.BytesType:
				_, n = protowire.ConsumeBytes(data)
			case num == 2 && typ == v.elem.wireType():
				if typ == protowire.BytesType {
					x, n = protowire.ConsumeBytes(data)
				} else {
					_, n = protowire.ConsumeVarint(data)
				}
			case num == 1 || num == 2:
				return errWireFallback
			default:
				n = protowire.ConsumeFieldValue(num, typ, data)
			}
			if n < 0 {
				return errWireFallback
			}
			data = data[n:]
			if x != nil {
				if err := b.checkValue(v.elem, x, 0); err != nil {
					return err
				}
			}
		}
		return nil
	case wkWrapped:
		return errWireFallback
	}
	return nil
}
