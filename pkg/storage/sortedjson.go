package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"sync"
)

// errNotSortable is returned for JSON that SortedJSON does not re-encode
// as the map's marshalling would: the caller takes the slow way.
var errNotSortable = errors.New("JSON not sortable in place")

// SortedJSON returns the JSON text json.Marshal writes for the map
// ToMap(obj) returns, given data = json.Marshal(obj) for an obj that is
// not Unstructured, without building the map: every object's members
// sorted by key, the rest as it is (numbers stay exact, as ToMap's
// json.Number keeps them; strings are re-escaped only where they hold an
// escape, which decoding and marshalling again could change). It is
// appended to dst. An error means the text is not what json.Marshal
// writes (whitespace, a repeated key): marshal the map instead.
func SortedJSON(dst, data []byte) ([]byte, error) {
	s := jsonSorters.Get().(*jsonSorter)
	defer jsonSorters.Put(s)
	s.in, s.pos = data, 0
	dst = slices.Grow(dst, len(data))
	out, err := s.value(dst, 0)
	if err == nil && s.pos != len(data) {
		err = errNotSortable
	}
	s.in = nil
	return out, err
}

// jsonSorters keep their scratch from one object to the next: a watch
// sorts one per event.
var jsonSorters = sync.Pool{New: func() any { return &jsonSorter{} }}

// jsonSorter re-encodes compact JSON with sorted object members. scratch
// holds, for each depth, the re-encoded members of the object being read
// there.
type jsonSorter struct {
	in      []byte
	pos     int
	scratch [][]byte
	members [][]jsonMember
}

// jsonMember is one member of an object, re-encoded in the scratch of its
// depth: key as it sorts, text the member (key, colon, value).
type jsonMember struct {
	key        []byte
	start, end int
}

func (s *jsonSorter) value(dst []byte, depth int) ([]byte, error) {
	if s.pos >= len(s.in) {
		return dst, errNotSortable
	}
	switch c := s.in[s.pos]; {
	case c == '{':
		return s.object(dst, depth)
	case c == '[':
		s.pos++
		dst = append(dst, '[')
		if s.pos < len(s.in) && s.in[s.pos] == ']' {
			s.pos++
			return append(dst, ']'), nil
		}
		for {
			var err error
			if dst, err = s.value(dst, depth+1); err != nil {
				return dst, err
			}
			if s.pos >= len(s.in) {
				return dst, errNotSortable
			}
			c := s.in[s.pos]
			s.pos++
			dst = append(dst, c)
			switch c {
			case ',':
			case ']':
				return dst, nil
			default:
				return dst, errNotSortable
			}
		}
	case c == '"':
		str, _, err := s.str(false)
		if err != nil {
			return dst, err
		}
		return append(dst, str...), nil
	case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
		start := s.pos
		for s.pos < len(s.in) {
			c := s.in[s.pos]
			if c == ',' || c == ']' || c == '}' {
				break
			}
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '{' || c == '[' || c == ':' {
				return dst, errNotSortable
			}
			s.pos++
		}
		return append(dst, s.in[start:s.pos]...), nil
	}
	return dst, errNotSortable
}

// str reads a string and returns its text as the map's marshalling writes
// it, and, for a key that holds an escape, its value (else nil: the value
// is the text between the quotes). json.Marshal escapes a string the same
// way each time but for invalid UTF-8, which it writes as \ufffd: decoded,
// that is a valid U+FFFD, written as it is the second time.
func (s *jsonSorter) str(key bool) (text, decoded []byte, err error) {
	start := s.pos
	escaped := false
	for i := start + 1; i < len(s.in); i++ {
		switch s.in[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			s.pos = i + 1
			text = s.in[start:s.pos]
			if !escaped || !key && !bytes.Contains(text, replacementEscape) {
				return text, nil, nil
			}
			var v string
			if err := json.Unmarshal(text, &v); err != nil {
				return nil, nil, errNotSortable
			}
			if bytes.Contains(text, replacementEscape) {
				if text, err = json.Marshal(v); err != nil {
					return nil, nil, errNotSortable
				}
			}
			return text, []byte(v), nil
		}
	}
	return nil, nil, errNotSortable
}

var replacementEscape = []byte(`\ufffd`)

func (s *jsonSorter) object(dst []byte, depth int) ([]byte, error) {
	s.pos++
	if s.pos < len(s.in) && s.in[s.pos] == '}' {
		s.pos++
		return append(dst, '{', '}'), nil
	}
	for len(s.scratch) <= depth {
		s.scratch = append(s.scratch, nil)
		s.members = append(s.members, nil)
	}
	buf, members := s.scratch[depth][:0], s.members[depth][:0]
	for {
		if s.pos >= len(s.in) || s.in[s.pos] != '"' {
			return dst, errNotSortable
		}
		text, key, err := s.str(true)
		if err != nil {
			return dst, err
		}
		if key == nil {
			key = text[1 : len(text)-1]
		}
		if s.pos >= len(s.in) || s.in[s.pos] != ':' {
			return dst, errNotSortable
		}
		s.pos++
		m := jsonMember{key: key, start: len(buf)}
		buf = append(append(buf, text...), ':')
		// Deeper objects use the scratch of their own depth.
		if buf, err = s.value(buf, depth+1); err != nil {
			return dst, err
		}
		m.end = len(buf)
		members = append(members, m)
		if s.pos >= len(s.in) {
			return dst, errNotSortable
		}
		c := s.in[s.pos]
		s.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			return dst, errNotSortable
		}
	}
	s.scratch[depth], s.members[depth] = buf, members
	slices.SortFunc(members, func(a, b jsonMember) int { return bytes.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			if bytes.Equal(members[i-1].key, m.key) {
				return dst, errNotSortable
			}
			dst = append(dst, ',')
		}
		dst = append(dst, buf[m.start:m.end]...)
	}
	return append(dst, '}'), nil
}
