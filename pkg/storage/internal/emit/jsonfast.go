package emit

import (
	"bytes"
	"encoding/json"
)

// AppendIndentedJSON appends the document t holds (Parse) as
// json.MarshalIndent(m, prefix, "    ") writes the map m that encoding/json
// decodes it to.
func AppendIndentedJSON(dst []byte, t *Tree, prefix string) []byte {
	return appendIndentedJSON(dst, t, 0, prefix, 0)
}

// appendIndentedJSON appends node n of t as json.MarshalIndent(m, prefix,
// "    ") writes the map m that encoding/json decodes it to (with
// UseNumber): object keys sorted, numbers as they were. depth is the
// nesting level n starts at.
func appendIndentedJSON(dst []byte, t *Tree, n int32, prefix string, depth int) []byte {
	nd := t.nodes[n]
	if nd.memo {
		return appendMemoJSON(dst, t, n, nd, prefix, depth)
	}
	return appendJSONValue(dst, t, n, nd, prefix, depth)
}

// appendJSONValue is appendIndentedJSON without the cache.
func appendJSONValue(dst []byte, t *Tree, n int32, nd jsonNode, prefix string, depth int) []byte {
	switch nd.kind {
	case jsonObject, jsonArray:
		open, closing := byte('['), byte(']')
		if nd.kind == jsonObject {
			open, closing = '{', '}'
		}
		dst = append(dst, open)
		kids := t.kids[nd.from:nd.to]
		if len(kids) == 0 {
			return append(dst, closing)
		}
		step := 1
		if nd.kind == jsonObject {
			step = 2
		}
		if nd.kind == jsonObject && !nd.sorted {
			sortPairs(kids, func(a, b int32) bool { return bytes.Compare(t.strBytes(t.nodes[a]), t.strBytes(t.nodes[b])) < 0 })
		}
		for k := 0; k < len(kids); k += step {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = jsonNewline(dst, prefix, depth+1)
			if step == 2 {
				dst = appendJSONString(dst, t, kids[k])
				dst = append(dst, ':', ' ')
			}
			dst = appendIndentedJSON(dst, t, kids[k+step-1], prefix, depth+1)
		}
		dst = jsonNewline(dst, prefix, depth)
		return append(dst, closing)
	case jsonString:
		return appendJSONString(dst, t, n)
	case jsonNumber:
		return append(dst, t.rawBytes(nd)...)
	case jsonTrue:
		return append(dst, "true"...)
	case jsonFalse:
		return append(dst, "false"...)
	}
	return append(dst, "null"...)
}

func jsonNewline(dst []byte, prefix string, depth int) []byte {
	dst = append(dst, '\n')
	dst = append(dst, prefix...)
	for n := 4 * depth; n > 0; {
		k := min(n, len(spaces))
		dst = append(dst, spaces[:k]...)
		n -= k
	}
	return dst
}

// appendJSONString writes a string as encoding/json writes its decoded
// value: the text as it is, since encoding/json wrote it, except where it
// stood for invalid UTF-8 (\ufffd), which decodes to U+FFFD and is written
// back as that character.
func appendJSONString(dst []byte, t *Tree, n int32) []byte {
	nd := t.nodes[n]
	if nd.static && t.staticSafe {
		dst = append(dst, '"')
		dst = append(dst, t.static[nd.from:nd.to]...)
		return append(dst, '"')
	}
	if t.escape {
		return appendJSONEscaped(dst, t.strBytes(nd))
	}
	raw := t.rawBytes(nd)
	if nd.decoded && (bytes.Contains(raw, []byte(`\ufffd`)) || bytes.Contains(raw, []byte(`\uFFFD`))) {
		b, err := json.Marshal(string(t.strBytes(nd)))
		if err == nil {
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, raw...)
	return append(dst, '"')
}
