package emit

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
)

// Large values of types with their own JSON form recur from object to
// object: the managed fields (FieldsV1) of the pods of one ReplicaSet,
// DaemonSet or Job are the same bytes, and they are about a third of the
// YAML of a pod. Both printers are pure functions of a value and the
// state they print it in (for YAML the cursor's column, indentation and
// whitespace flags, and the List prefix; for JSON the prefix and depth),
// so a tree keeps what it printed for such a value in a given state and
// writes it again where the same text comes in the same state, instead of
// sorting and printing its keys once more. This is a cache of this
// package's own output, which no library offers; BenchmarkRenderStored
// in pkg/storage/printer measures it (docs/benchmarks.md).

const (
	// memoMinBytes: smaller values print about as fast as they are
	// looked up.
	memoMinBytes = 128
	// memoMaxBytes bounds one tree's cache, keys and texts; past it the
	// cache starts over.
	memoMaxBytes = 2 << 20
	// memoMaxSeen bounds the hashes of values met once.
	memoMaxSeen = 1 << 14
)

// memoCache maps a value's JSON text and the printer's state to what the
// printer wrote for it there.
type memoCache struct {
	entries map[string]memoEntry
	// known maps the stored bytes of a special value (its type's
	// specialID first) to its JSON text, which parsed before into a memo
	// node: the next time the tree takes it unparsed (a lazy node) and
	// the printers parse it only if they have not printed it in that
	// place yet.
	known map[string][]byte
	// seen holds the hashes of keys met once: a value is kept only when
	// it comes a second time, so values that never recur (a kubelet's
	// managed fields name the pod's IP) cost a hash and a lookup, not
	// copies (BenchmarkRenderDistinct in pkg/storage/printer).
	seen  map[uint64]struct{}
	seed  maphash.Seed
	bytes int
	// key is scratch for building keys; nil while one is in use.
	key []byte
}

// memoEntry is what a printer wrote for one value, and for YAML the
// cursor after it.
type memoEntry struct {
	out                   []byte
	column                int
	whitespace, indention bool
}

func (m *memoCache) takeKey() []byte {
	k := m.key[:0]
	m.key = nil
	return k
}

func (m *memoCache) giveKey(k []byte) { m.key = k[:0] }

func (m *memoCache) lookup(key []byte) (memoEntry, bool) {
	e, ok := m.entries[string(key)]
	return e, ok
}

func (m *memoCache) store(key []byte, e memoEntry) {
	n := len(key) + len(e.out)
	if n > memoMaxBytes/8 {
		return
	}
	m.room(n)
	e.out = bytes.Clone(e.out)
	m.entries[string(key)] = e
}

// again reports whether key was met before, and notes it.
func (m *memoCache) again(key []byte) bool {
	if m.seen == nil {
		m.seed = maphash.MakeSeed()
		m.seen = map[uint64]struct{}{}
	}
	h := maphash.Bytes(m.seed, key)
	if _, ok := m.seen[h]; ok {
		return true
	}
	if len(m.seen) >= memoMaxSeen {
		clear(m.seen)
	}
	m.seen[h] = struct{}{}
	return false
}

// room makes room for n more bytes, starting over when full.
func (m *memoCache) room(n int) {
	if m.entries == nil || m.bytes+n > memoMaxBytes {
		m.entries = map[string]memoEntry{}
		m.known = map[string][]byte{}
		m.bytes = 0
	}
	m.bytes += n
}

// remember records that the special value stored as wire (specialID
// first) prints as the JSON text doc, which parsed into a memo node.
func (m *memoCache) remember(wire, doc []byte) {
	n := len(wire) + len(doc)
	if n > memoMaxBytes/8 {
		return
	}
	m.room(n)
	m.known[string(wire)] = bytes.Clone(doc)
}

// lazyNode appends a memo node for the JSON text doc, known to parse
// into an object or array, without parsing it: parseMemo does when a
// printer needs its nodes.
func (t *Tree) lazyNode(doc []byte) {
	from := len(t.src)
	t.src = append(t.src, doc...)
	kind := jsonObject
	if doc[skipSpace(doc, 0)] == '[' {
		kind = jsonArray
	}
	t.nodes = append(t.nodes, jsonNode{kind: kind, memo: true, lazy: true, textFrom: int32(from), textTo: int32(len(t.src))})
}

// parseMemo parses the text of a lazy node into the tree and returns the
// node it makes. The text parsed the same way before (memoCache.known),
// and parsing depends on nothing else.
func (t *Tree) parseMemo(nd jsonNode) (int32, jsonNode) {
	root := len(t.nodes)
	if _, err := t.value(skipSpace(t.src, int(nd.textFrom)), 1); err != nil {
		panic("emit: a value that parsed before does not parse again: " + err.Error())
	}
	return int32(root), t.nodes[root]
}

// memoText returns the JSON text a memo node was parsed from.
func (t *Tree) memoText(nd jsonNode) []byte { return t.src[nd.textFrom:nd.textTo] }

// markMemo marks node n, parsed from src[from:to], as one the printers
// may reuse their output for, when it is large enough to be worth it.
func (t *Tree) markMemo(n int, from, to int) {
	if to-from < memoMinBytes {
		return
	}
	if k := t.nodes[n].kind; k != jsonObject && k != jsonArray {
		return
	}
	t.nodes[n].memo = true
	t.nodes[n].textFrom, t.nodes[n].textTo = int32(from), int32(to)
}

// yamlMemoKey is the key of node nd printed by w in its current state.
func (w *yamlWriter) yamlMemoKey(k []byte, nd jsonNode, inSequence, inMapping, simpleKey bool) []byte {
	var flags byte
	for i, f := range []bool{inSequence, inMapping, simpleKey, w.whitespace, w.indention, w.tree.escape} {
		if f {
			flags |= 1 << i
		}
	}
	k = append(k, 'y', flags)
	k = binary.AppendVarint(k, int64(w.column))
	k = binary.AppendVarint(k, int64(w.indent))
	k = binary.AppendVarint(k, int64(w.flowLevel))
	k = binary.AppendUvarint(k, uint64(len(w.prefix)))
	k = append(k, w.prefix...)
	return append(k, w.tree.memoText(nd)...)
}

// memoNode prints node n through the tree's cache.
func (w *yamlWriter) memoNode(n int32, nd jsonNode, inSequence, inMapping, simpleKey bool) {
	m := &w.tree.memo
	key := w.yamlMemoKey(m.takeKey(), nd, inSequence, inMapping, simpleKey)
	defer m.giveKey(key)
	if e, ok := m.lookup(key); ok {
		w.out = append(w.out, e.out...)
		w.column, w.whitespace, w.indention = e.column, e.whitespace, e.indention
		return
	}
	start := len(w.out)
	if nd.lazy {
		n, nd = w.tree.parseMemo(nd)
	}
	w.value(n, nd, inSequence, inMapping, simpleKey)
	if m.again(key) {
		m.store(key, memoEntry{out: w.out[start:], column: w.column, whitespace: w.whitespace, indention: w.indention})
	}
}

// appendMemoJSON is appendIndentedJSON of a memo node through the tree's
// cache.
func appendMemoJSON(dst []byte, t *Tree, n int32, nd jsonNode, prefix string, depth int) []byte {
	m := &t.memo
	key := append(m.takeKey(), 'j', 0)
	if t.escape {
		key[1] = 1
	}
	key = binary.AppendUvarint(key, uint64(depth))
	key = binary.AppendUvarint(key, uint64(len(prefix)))
	key = append(key, prefix...)
	key = append(key, t.memoText(nd)...)
	defer m.giveKey(key)
	if e, ok := m.lookup(key); ok {
		return append(dst, e.out...)
	}
	start := len(dst)
	if nd.lazy {
		n, nd = t.parseMemo(nd)
	}
	dst = appendJSONValue(dst, t, n, nd, prefix, depth)
	if m.again(key) {
		m.store(key, memoEntry{out: dst[start:]})
	}
	return dst
}
