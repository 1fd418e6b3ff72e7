// Package emit writes JSON documents as YAML and as indented JSON, byte
// for byte as sigs.k8s.io/yaml.Marshal and encoding/json.MarshalIndent
// (through a map) write them, without their reflection: the fast path of
// `get -o yaml|json`. Its contract is its differential tests and fuzzers
// against those two libraries; input it does not handle exactly the same
// way it refuses with ErrUnusual, and the caller takes the general path.
//
// It also builds its trees straight from stored protobuf objects
// (PlanFor, Wire.Build): per-type plans read from the types' struct tags
// say which wire field becomes which JSON field and when encoding/json
// would leave it out, so a listing prints without decoding typed objects
// or running encoding/json at all. Listings write their YAML and JSON
// straight from the wire with the same plans (AppendYAML, AppendJSON),
// which print what the trees would, without building them: the printer
// tests compare the two on every kind of the scheme. Its contract is a
// differential test against the typed path on every kind of the scheme,
// and a fuzzer. Large
// values that recur from object to object (managed fields) are printed
// once per place and copied after (memo.go).
package emit

import (
	"errors"
	"unicode/utf8"
)

// Tree is a parsed JSON document kept as spans of its text: the fast
// printers re-emit it with sorted keys as YAML or indented JSON without
// building maps of interfaces. It is reused from object to object.
type Tree struct {
	src   []byte
	nodes []jsonNode
	// kids holds the children of arrays and, as key, value pairs, of
	// objects; a container's children are one contiguous run.
	kids []int32
	// text holds the decoded form of strings that have escapes.
	text  []byte
	stack []int32
	// escape says strings are to be escaped as encoding/json does when
	// printed as JSON: the tree was built from values, not parsed from
	// encoding/json's text (wiretree.go).
	escape bool
	// static holds the field names of the wire plans, which key nodes
	// marked static span instead of src.
	static []byte
	// staticSafe: the names in static need no JSON escaping.
	staticSafe bool
	// memo keeps the printed text of large values that recur from object
	// to object (memo.go); it outlives Parse and Wire.Build.
	memo memoCache
}

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonFalse
	jsonTrue
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

// jsonNode is one value. Strings and numbers span src[from:to] (for a
// string: between the quotes, escapes included); a string with escapes
// also has its decoded form in text[textFrom:textTo]. Arrays and objects
// span kids[from:to].
type jsonNode struct {
	kind    jsonKind
	decoded bool
	// sorted says an object's keys are already in the order of the
	// printer the tree was built for.
	sorted bool
	// timestamp marks a string that is an RFC 3339 time in UTC to the
	// second: it reads as a timestamp, so YAML double-quotes it.
	timestamp bool
	// static: the string spans static, not src.
	static bool
	// plainKey marks a key YAML writes plain as it is (a field name
	// checked when its plan was made).
	plainKey bool
	// memo marks an object or array parsed from the JSON text
	// src[textFrom:textTo]: the printers may reuse what they printed for
	// the same text in the same place before (memo.go).
	memo bool
	// lazy marks a memo node not parsed yet (memoCache.known): it has no
	// children until parseMemo.
	lazy     bool
	from     int32
	to       int32
	textFrom int32
	textTo   int32
}

// ErrUnusual marks input the fast printers leave to the general path:
// characters the YAML reader refuses, deep nesting, a top level that is
// not an object. The general path then prints it, or fails, as it
// always did.
var ErrUnusual = errors.New("left to the general printer")

const maxJSONDepth = 1000

// maxYAMLKeyChars is the longest key, in characters of its JSON text with
// the quotes, that the YAML reader takes: it gives up on longer implicit
// keys.
const maxYAMLKeyChars = 1024

// Parse reads the JSON object src into t, reusing t's memory; src must
// outlive t's use. Input the printers leave to the general path is
// ErrUnusual.
func (t *Tree) Parse(src []byte) error {
	t.src = src
	t.escape = false
	t.static, t.staticSafe = nil, false
	t.nodes = t.nodes[:0]
	t.kids = t.kids[:0]
	t.text = t.text[:0]
	t.stack = t.stack[:0]
	i := skipSpace(src, 0)
	if i >= len(src) || src[i] != '{' {
		return ErrUnusual
	}
	i, err := t.value(i, 0)
	if err != nil {
		return err
	}
	if skipSpace(src, i) != len(src) {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

var errBadJSON = errors.New("invalid JSON")

// value parses the value at src[i] and returns the index after it; the
// node is appended to nodes.
func (t *Tree) value(i, depth int) (int, error) {
	src := t.src
	if i >= len(src) {
		return i, errBadJSON
	}
	if depth > maxJSONDepth {
		return i, ErrUnusual
	}
	switch c := src[i]; {
	case c == '{' || c == '[':
		self := len(t.nodes)
		kind := jsonArray
		closing := byte(']')
		if c == '{' {
			kind, closing = jsonObject, '}'
		}
		t.nodes = append(t.nodes, jsonNode{kind: kind})
		mark := len(t.stack)
		i = skipSpace(src, i+1)
		if i < len(src) && src[i] == closing {
			i++
		} else {
			for {
				if kind == jsonObject {
					if i >= len(src) || src[i] != '"' {
						return i, errBadJSON
					}
					t.stack = append(t.stack, int32(len(t.nodes)))
					keyStart := i
					var err error
					if i, err = t.str(i); err != nil {
						return i, err
					}
					if i-keyStart > maxYAMLKeyChars && utf8.RuneCount(src[keyStart:i]) > maxYAMLKeyChars {
						return i, ErrUnusual
					}
					i = skipSpace(src, i)
					if i >= len(src) || src[i] != ':' {
						return i, errBadJSON
					}
					i = skipSpace(src, i+1)
				}
				t.stack = append(t.stack, int32(len(t.nodes)))
				var err error
				if i, err = t.value(i, depth+1); err != nil {
					return i, err
				}
				i = skipSpace(src, i)
				if i >= len(src) {
					return i, errBadJSON
				}
				if src[i] == ',' {
					i = skipSpace(src, i+1)
					continue
				}
				if src[i] != closing {
					return i, errBadJSON
				}
				i++
				break
			}
		}
		from := len(t.kids)
		t.kids = append(t.kids, t.stack[mark:]...)
		t.stack = t.stack[:mark]
		t.nodes[self].from, t.nodes[self].to = int32(from), int32(len(t.kids))
		return i, nil
	case c == '"':
		return t.str(i)
	case c == 't' && hasAt(src, i, "true"):
		t.nodes = append(t.nodes, jsonNode{kind: jsonTrue})
		return i + 4, nil
	case c == 'f' && hasAt(src, i, "false"):
		t.nodes = append(t.nodes, jsonNode{kind: jsonFalse})
		return i + 5, nil
	case c == 'n' && hasAt(src, i, "null"):
		t.nodes = append(t.nodes, jsonNode{kind: jsonNull})
		return i + 4, nil
	case c == '-' || c >= '0' && c <= '9':
		j := i + 1
		for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' || src[j] == 'e' || src[j] == 'E' || src[j] == '+' || src[j] == '-') {
			j++
		}
		t.nodes = append(t.nodes, jsonNode{kind: jsonNumber, from: int32(i), to: int32(j)})
		return j, nil
	}
	return i, errBadJSON
}

func hasAt(b []byte, i int, word string) bool {
	return len(b)-i >= len(word) && string(b[i:i+len(word)]) == word
}

// str parses the string at src[i] (the opening quote).
func (t *Tree) str(i int) (int, error) {
	src := t.src
	start := i + 1
	escaped := false
	for j := start; j < len(src); j++ {
		switch c := src[j]; {
		case c == '"':
			if !escaped {
				t.nodes = append(t.nodes, jsonNode{kind: jsonString, from: int32(start), to: int32(j)})
				return j + 1, nil
			}
			return t.decodeStr(start, j)
		case c == '\\':
			escaped = true
			j++
		case c < 0x20:
			return j, errBadJSON
		case c == 0x7F:
			return j, ErrUnusual
		case c >= 0x80:
			// The YAML reader refuses DEL, C1 controls and U+FFFE,
			// U+FFFF in its input, and takes NEL for a line break.
			if c == 0xC2 && j+1 < len(src) && src[j+1] >= 0x80 && src[j+1] <= 0x9F ||
				c == 0xEF && j+2 < len(src) && src[j+1] == 0xBF && src[j+2] >= 0xBE {
				return j, ErrUnusual
			}
		}
	}
	return len(src), errBadJSON
}

// decodeStr decodes the string src[start:end], which has escapes, into
// text.
func (t *Tree) decodeStr(start, end int) (int, error) {
	src := t.src[:end]
	from := len(t.text)
	for j := start; j < len(src); j++ {
		c := src[j]
		if c != '\\' {
			t.text = append(t.text, c)
			continue
		}
		j++
		if j >= len(src) {
			break
		}
		switch src[j] {
		case '"', '\\', '/':
			t.text = append(t.text, src[j])
		case 'b':
			t.text = append(t.text, '\b')
		case 'f':
			t.text = append(t.text, '\f')
		case 'n':
			t.text = append(t.text, '\n')
		case 'r':
			t.text = append(t.text, '\r')
		case 't':
			t.text = append(t.text, '\t')
		case 'u':
			if j+4 >= len(src) {
				return j, errBadJSON
			}
			var r rune
			for _, h := range src[j+1 : j+5] {
				r <<= 4
				switch {
				case h >= '0' && h <= '9':
					r |= rune(h - '0')
				case h >= 'a' && h <= 'f':
					r |= rune(h - 'a' + 10)
				case h >= 'A' && h <= 'F':
					r |= rune(h - 'A' + 10)
				default:
					return j, errBadJSON
				}
			}
			if r >= 0xD800 && r <= 0xDFFF {
				// A surrogate pair: YAML escapes name code points, so
				// the general path decides.
				return j, ErrUnusual
			}
			t.text = utf8.AppendRune(t.text, r)
			j += 4
		default:
			return j, errBadJSON
		}
	}
	t.nodes = append(t.nodes, jsonNode{kind: jsonString, decoded: true, from: int32(start), to: int32(end), textFrom: int32(from), textTo: int32(len(t.text))})
	return end + 1, nil
}

// strBytes returns the (decoded) text of a string node.
func (t *Tree) strBytes(n jsonNode) []byte {
	if n.decoded {
		return t.text[n.textFrom:n.textTo]
	}
	if n.static {
		return t.static[n.from:n.to]
	}
	return t.src[n.from:n.to]
}

// rawBytes returns a number's text, or a string's text as it appears in
// the source with its escapes (without the quotes).
func (t *Tree) rawBytes(n jsonNode) []byte {
	if n.static {
		return t.static[n.from:n.to]
	}
	return t.src[n.from:n.to]
}
