package emit

import (
	"bytes"
	"encoding/binary"
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
	memoMaxBytes = 4 << 20
)

// memoCache maps a value's JSON text and the printer's state to what the
// printer wrote for it there.
type memoCache struct {
	entries map[string]memoEntry
	bytes   int
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
	if m.entries == nil || m.bytes+n > memoMaxBytes {
		m.entries = map[string]memoEntry{}
		m.bytes = 0
	}
	e.out = bytes.Clone(e.out)
	m.entries[string(key)] = e
	m.bytes += n
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
	w.value(n, nd, inSequence, inMapping, simpleKey)
	m.store(key, memoEntry{out: w.out[start:], column: w.column, whitespace: w.whitespace, indention: w.indention})
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
	dst = appendJSONValue(dst, t, n, nd, prefix, depth)
	m.store(key, memoEntry{out: dst[start:]})
	return dst
}
