package emit

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file builds, once per Go type, the plan that lets a stored
// protobuf value be printed straight from its wire form (wiretree.go):
// which wire field becomes which JSON field, under which name, when
// encoding/json would leave it out, in which order the printers sort the
// fields. The plans are read from the types' own struct tags (the
// `protobuf` tag go-to-protobuf writes and the `json` tag), so they follow
// the scheme without a list kept by hand. A type the plans cannot describe
// exactly (a float, a JSON marshaller without protobuf form, an embedded
// pointer) gets a plan with err set, and its objects keep the typed path.

// wireKind is how one value is stored on the wire and printed.
type wireKind uint8

const (
	wkString wireKind = iota
	wkBytes           // []byte: base64 in JSON
	wkBool
	wkInt32
	wkInt64
	wkUint32
	wkUint64
	wkMessage // a struct: a JSON object
	wkTime    // metav1.Time: seconds only, RFC 3339, null when zero
	// wkSpecial is a type with its own JSON form (Quantity, IntOrString,
	// RawExtension, FieldsV1, MicroTime, ...): its bytes are decoded by
	// the type itself and its MarshalJSON prints it.
	wkSpecial
	wkMap
	// wkWrapped is a named slice type stored as a message whose field 1
	// holds the items (metav1.Verbs, ExtraValue).
	wkWrapped
)

// valuePlan is how to print one value of a Go type.
type valuePlan struct {
	kind    wireKind
	msg     *objPlan     // wkMessage
	special reflect.Type // wkSpecial (not a pointer)
	// specialID keys the cache of printed special values.
	specialID byte
	elem      *valuePlan // wkMap: the value; wkWrapped: an item
}

// wireType is the wire type a value of p arrives in.
func (p *valuePlan) wireType() protowire.Type {
	switch p.kind {
	case wkBool, wkInt32, wkInt64, wkUint32, wkUint64:
		return protowire.VarintType
	}
	return protowire.BytesType
}

// jsonField is one field of a JSON object.
type jsonField struct {
	name string
	// nameFrom, nameTo span the name in planNames; plainKey is
	// isPlainKey(name).
	nameFrom, nameTo int32
	plainKey         bool
	// jsonKey is the name as the JSON printer writes it as a key: quoted,
	// escaped and followed by ": ", so that a key is one copy.
	jsonKey string
	// jsonKeyWord is jsonKey padded, jsonKeyLen its length, 0 when
	// longer: the JSON printer copies a key as one fixed-size move.
	jsonKeyWord [jsonKeyCopy]byte
	jsonKeyLen  uint8
	val         valuePlan
	repeated    bool // a slice of val, one wire record per item
	pointer     bool // absent on the wire means nil
	omitEmpty   bool
	omitZero    bool
	// typeMeta is 1 for apiVersion and 2 for kind of an embedded
	// TypeMeta: never on the wire, set from the envelope at the top.
	typeMeta uint8
	// zeroJSON is MarshalJSON of a special type's zero value, printed when
	// a non-pointer field of it is absent.
	zeroJSON []byte
}

// scanEntry says what a wire field number of a message is.
type scanEntry struct {
	field  int16 // index in objPlan.fields, -1: not a field
	inline *scanTable
}

// scanTable maps the wire field numbers of a message to fields.
type scanTable struct {
	byNum []scanEntry
}

func (s *scanTable) lookup(num protowire.Number) *scanEntry {
	if int(num) < len(s.byNum) {
		if e := &s.byNum[num]; e.field >= 0 || e.inline != nil {
			return e
		}
	}
	return nil
}

func (s *scanTable) set(num int, e scanEntry) error {
	for len(s.byNum) <= num {
		s.byNum = append(s.byNum, scanEntry{field: -1})
	}
	if s.byNum[num].field >= 0 || s.byNum[num].inline != nil {
		return fmt.Errorf("wire field %d used twice", num)
	}
	s.byNum[num] = e
	return nil
}

// orderSlot is one field in a printer's key order.
type orderSlot struct {
	field int16
	// quiet: the field prints nothing when it is not on the wire, so the
	// printers pass over it at once when it is not. Most fields of a
	// stored object are absent (most of a PodSpec's 40): walking each
	// through the checks that print an absent field was 14% of a YAML
	// listing's rendering (docs/benchmarks.md).
	quiet bool
}

// quietWhenAbsent reports whether f prints nothing when it is not on the
// wire: what jAbsent, yAbsent and field write then, decided once.
func (f *jsonField) quietWhenAbsent() bool {
	omit := f.omitEmpty || f.omitZero
	switch {
	case f.typeMeta != 0:
		return false
	case f.repeated || f.val.kind == wkMap || f.val.kind == wkWrapped || f.pointer:
		return omit
	}
	switch f.val.kind {
	case wkString, wkBool, wkInt32, wkInt64, wkUint32, wkUint64, wkBytes:
		return omit
	case wkTime:
		return f.omitZero
	}
	return false
}

// objPlan is the plan of a struct type printed as a JSON object.
type objPlan struct {
	typ    reflect.Type
	fields []jsonField
	scan   scanTable
	// jsonOrder and yamlOrder list the fields in the key order of the
	// JSON and the YAML printer.
	jsonOrder, yamlOrder []orderSlot
	// metadata and resourceVersion are the indexes of the metadata field
	// and, in its plan, of resourceVersion, where the decoder sets the
	// key's revision (-1: the type has none).
	metadata, resourceVersion int
	rvChecked                 bool
	// nameField is the index of name in the plan of metadata (-1: none).
	nameField int
	// id numbers the plans in the order they were made, from 0: a
	// builder keeps what it knows of each plan in a slice (wirememo.go).
	id  int
	err error
}

var (
	planMu  sync.Mutex
	planFor = map[reflect.Type]*objPlan{}
	// planNames holds the field names of every plan, so trees point at
	// them instead of copying them. It is only appended to: a slice of it
	// taken after a plan was made covers that plan's names for good.
	planNames []byte
)

var (
	typeMetaType   = reflect.TypeOf(metav1.TypeMeta{})
	timeType       = reflect.TypeOf(metav1.Time{})
	jsonMarshaler  = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	protoUnmarshal = reflect.TypeOf((*protoUnmarshaler)(nil)).Elem()
	specialIDs     = map[reflect.Type]byte{}
)

// Plan is how objects of one Go type (a kind of the scheme) are printed
// from their protobuf wire form.
type Plan struct {
	p *objPlan
	// names is planNames as it stood once p was made.
	names []byte
	// namesSafe: encoding/json writes every byte of names as it is, so
	// the JSON printer copies field names without escaping them.
	namesSafe bool
}

// protoUnmarshaler is what the generated protobuf types implement.
type protoUnmarshaler interface {
	Unmarshal([]byte) error
}

// PlanFor returns the plan of struct type t (a kind's Go type, not a
// pointer), or why its objects are left to the typed path. Kinds hold an
// ObjectMeta (or ListMeta) as metadata when they implement its setter,
// which is where Build puts the revision.
func PlanFor(t reflect.Type) (*Plan, error) {
	if t.Kind() != reflect.Struct || !reflect.PointerTo(t).Implements(protoUnmarshal) {
		return nil, fmt.Errorf("%s is not a protobuf message", t)
	}
	planMu.Lock()
	defer planMu.Unlock()
	p := structPlan(t)
	if p.err == nil && !p.rvChecked {
		p.findResourceVersion()
		p.rvChecked = true
	}
	if p.err != nil {
		return nil, p.err
	}
	safe := true
	for _, c := range planNames {
		safe = safe && c < utf8.RuneSelf && jsonSafe[c]
	}
	return &Plan{p: p, names: planNames, namesSafe: safe}, nil
}

// HasName reports whether the kind's objects have metadata.name, which
// ObjectName reads.
func (p *Plan) HasName() bool {
	return p.p.metadata >= 0 && p.p.fields[p.p.metadata].val.msg.nameField >= 0
}

// findResourceVersion finds where Decoder.Decode sets the revision.
func (p *objPlan) findResourceVersion() {
	p.metadata, p.resourceVersion = -1, -1
	type rv interface{ SetResourceVersion(string) }
	pt := reflect.PointerTo(p.typ)
	if !pt.Implements(reflect.TypeOf((*metav1.Object)(nil)).Elem()) && !pt.Implements(reflect.TypeOf((*rv)(nil)).Elem()) {
		return
	}
	for i, f := range p.fields {
		if f.name != "metadata" || f.val.kind != wkMessage || f.repeated || f.pointer {
			continue
		}
		for j, g := range f.val.msg.fields {
			if g.name == "resourceVersion" && g.val.kind == wkString && !g.repeated && !g.pointer {
				p.metadata, p.resourceVersion = i, j
			}
		}
		if p.metadata == i {
			for j, g := range f.val.msg.fields {
				if g.name == "name" && g.val.kind == wkString && !g.repeated && !g.pointer {
					f.val.msg.nameField = j
				}
			}
			return
		}
	}
	p.err = errors.New("metadata.resourceVersion not found")
}

// structPlan builds (or returns) the plan of struct type t. planMu is held.
func structPlan(t reflect.Type) *objPlan {
	if p, ok := planFor[t]; ok {
		return p
	}
	p := &objPlan{typ: t, metadata: -1, resourceVersion: -1, nameField: -1, id: len(planFor)}
	planFor[t] = p // before the fields: types may refer to themselves
	if err := p.addFields(t, &p.scan); err != nil {
		p.err = fmt.Errorf("%s: %w", t, err)
		return p
	}
	seen := map[string]bool{}
	for i := range p.fields {
		f := &p.fields[i]
		f.nameFrom = int32(len(planNames))
		planNames = append(planNames, f.name...)
		f.nameTo = int32(len(planNames))
		f.plainKey = isPlainKey([]byte(f.name))
		f.jsonKey = string(append(appendJSONEscaped(nil, []byte(f.name)), ':', ' '))
		if len(f.jsonKey) <= jsonKeyCopy {
			copy(f.jsonKeyWord[:], f.jsonKey)
			f.jsonKeyLen = uint8(len(f.jsonKey))
		}
		if seen[f.name] {
			// encoding/json's rules for clashing embedded names: leave it.
			p.err = fmt.Errorf("%s: field name %q twice", t, f.name)
			return p
		}
		seen[f.name] = true
		if f.val.kind == wkMessage && f.val.msg.err != nil {
			p.err = f.val.msg.err
		}
		if f.val.elem != nil && f.val.elem.kind == wkMessage && f.val.elem.msg.err != nil {
			p.err = f.val.elem.msg.err
		}
		slot := orderSlot{field: int16(i), quiet: f.quietWhenAbsent()}
		p.jsonOrder = append(p.jsonOrder, slot)
		p.yamlOrder = append(p.yamlOrder, slot)
	}
	sort.SliceStable(p.jsonOrder, func(i, j int) bool {
		return p.fields[p.jsonOrder[i].field].name < p.fields[p.jsonOrder[j].field].name
	})
	sort.SliceStable(p.yamlOrder, func(i, j int) bool {
		return yamlKeyLess([]byte(p.fields[p.yamlOrder[i].field].name), []byte(p.fields[p.yamlOrder[j].field].name))
	})
	return p
}

// addFields adds the JSON fields of struct t to p, its wire fields to
// scan: t is p's type or a struct embedded in it, whose fields encoding/json
// lifts into the same object while the wire keeps them in a message of
// their own.
func (p *objPlan) addFields(t reflect.Type, scan *scanTable) error {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			switch {
			case f.Type == typeMetaType:
				p.fields = append(p.fields,
					jsonField{name: "apiVersion", omitEmpty: true, typeMeta: 1},
					jsonField{name: "kind", omitEmpty: true, typeMeta: 2})
				continue
			case f.Type.Kind() != reflect.Struct:
				return fmt.Errorf("embedded %s", f.Type)
			}
			num, _, err := protobufTag(f)
			if err != nil {
				return err
			}
			inner := &scanTable{}
			if err := scan.set(num, scanEntry{field: -1, inline: inner}); err != nil {
				return err
			}
			if err := p.addFields(f.Type, inner); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		jf := jsonField{name: name}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty":
				jf.omitEmpty = true
			case "omitzero":
				jf.omitZero = true
			case "", "inline":
			default:
				return fmt.Errorf("field %s: json option %q", f.Name, o)
			}
		}
		num, label, err := protobufTag(f)
		if err != nil {
			return err
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			jf.pointer = true
			ft = ft.Elem()
		}
		// A slice is a repeated field (whatever its label says), but for
		// named slice types of their own message (metav1.Verbs).
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8 && (ft.Name() == "" || label == "rep") {
			if jf.pointer {
				return fmt.Errorf("field %s: pointer to a slice", f.Name)
			}
			jf.repeated = true
			ft = ft.Elem()
		}
		v, err := typePlan(ft)
		if err != nil {
			return fmt.Errorf("field %s: %w", f.Name, err)
		}
		jf.val = *v
		if jf.repeated && (v.kind == wkMap || v.kind == wkWrapped) {
			return fmt.Errorf("field %s: repeated %s", f.Name, ft)
		}
		if jf.omitZero && (v.kind == wkMessage || v.kind == wkSpecial) {
			return fmt.Errorf("field %s: omitzero on %s", f.Name, ft)
		}
		if v.kind == wkSpecial && !jf.pointer && !jf.repeated {
			z, err := reflect.New(ft).Interface().(json.Marshaler).MarshalJSON()
			if err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
			jf.zeroJSON = z
		}
		if err := scan.set(num, scanEntry{field: int16(len(p.fields))}); err != nil {
			return err
		}
		p.fields = append(p.fields, jf)
	}
	return nil
}

// protobufTag reads the field number and label ("opt", "rep") of a
// field's protobuf tag.
func protobufTag(f reflect.StructField) (int, string, error) {
	parts := strings.Split(f.Tag.Get("protobuf"), ",")
	if len(parts) < 2 {
		return 0, "", fmt.Errorf("field %s has no protobuf tag", f.Name)
	}
	num, err := strconv.Atoi(parts[1])
	if err != nil || num <= 0 || num > 1<<12 {
		return 0, "", fmt.Errorf("field %s: protobuf tag %q", f.Name, f.Tag.Get("protobuf"))
	}
	label := ""
	if len(parts) > 2 {
		label = parts[2]
	}
	return num, label, nil
}

// typePlan is the plan of one value of type t (not a pointer).
func typePlan(t reflect.Type) (*valuePlan, error) {
	if t == timeType {
		return &valuePlan{kind: wkTime}, nil
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(jsonMarshaler) {
		if !pt.Implements(protoUnmarshal) {
			return nil, fmt.Errorf("%s has a JSON form but no protobuf one", t)
		}
		id, ok := specialIDs[t]
		if !ok {
			id = byte(len(specialIDs) + 1)
			specialIDs[t] = id
		}
		return &valuePlan{kind: wkSpecial, special: t, specialID: id}, nil
	}
	switch t.Kind() {
	case reflect.String:
		return &valuePlan{kind: wkString}, nil
	case reflect.Bool:
		return &valuePlan{kind: wkBool}, nil
	case reflect.Int32:
		return &valuePlan{kind: wkInt32}, nil
	case reflect.Int64:
		return &valuePlan{kind: wkInt64}, nil
	case reflect.Uint32:
		return &valuePlan{kind: wkUint32}, nil
	case reflect.Uint64:
		return &valuePlan{kind: wkUint64}, nil
	case reflect.Struct:
		return &valuePlan{kind: wkMessage, msg: structPlan(t)}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if t.Elem() != reflect.TypeOf(byte(0)) || t.Name() != "" {
				return nil, fmt.Errorf("byte slice type %s", t)
			}
			return &valuePlan{kind: wkBytes}, nil
		}
		if t.Name() == "" || t.Elem().Kind() == reflect.Pointer || t.Elem().Kind() == reflect.Slice {
			return nil, fmt.Errorf("slice %s outside a repeated field", t)
		}
		elem, err := typePlan(t.Elem())
		if err != nil {
			return nil, err
		}
		if elem.kind == wkMap || elem.kind == wkWrapped {
			return nil, fmt.Errorf("slice %s", t)
		}
		return &valuePlan{kind: wkWrapped, elem: elem}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String || t.Elem().Kind() == reflect.Pointer {
			return nil, fmt.Errorf("map %s", t)
		}
		elem, err := typePlan(t.Elem())
		if err != nil {
			return nil, err
		}
		if elem.kind == wkMap {
			return nil, fmt.Errorf("map %s", t)
		}
		return &valuePlan{kind: wkMap, elem: elem}, nil
	}
	return nil, fmt.Errorf("type %s", t)
}
