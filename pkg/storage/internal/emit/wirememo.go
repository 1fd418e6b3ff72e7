package emit

import (
	"bytes"
	"hash/maphash"
)

// Messages recur from object to object: the probes, ports, tolerations,
// security contexts and projected volumes of the pods of a workload, and
// in a real ReplicaSet most of each container (all but the mount of the
// token volume each pod names for itself), are the same bytes in every
// pod.
// What the JSON and YAML walks write for a message is a pure function of
// its plan, its bytes and the writer's state where it starts (for YAML
// the cursor's column, indentation, flow level and whitespace flags and
// the List prefix; for JSON the prefix and depth), so a builder keeps the
// text it wrote for a message, in a slot its hash picks, and copies it
// when the same message comes again in the same state, instead of
// walking the message again. It is memo.go's cache for values
// of types with their own JSON form, for messages: a cache of this
// package's own output, which no library offers. The top object's
// metadata is never taken from it: the key's revision goes there.
// BenchmarkRenderListing in pkg/storage/printer measures it
// (docs/benchmarks.md).

const (
	// wireMemoMinBytes: smaller messages print about as fast as they are
	// hashed and looked up.
	wireMemoMinBytes = 12
	// A builder keeps 1<<wireMemoSlotBits texts, each in the slot its
	// hash picks, the last one there; wireMemoMaxEntry bounds the bytes
	// of one (message and text), so a builder keeps 512 KiB.
	wireMemoSlotBits = 9
	wireMemoMaxEntry = 1 << 10
	// Every wireMemoWindow messages of a plan, a plan whose messages
	// were found fewer than one time in wireMemoRarely (a container's
	// environment variables with values of their own in every pod) is
	// walked without the cache for its next wireMemoPause messages:
	// hashing and keeping what never recurs costs without paying back.
	wireMemoWindow = 256
	wireMemoRarely = 32
	wireMemoPause  = 4096
)

// wireMemoState is the writer's state a message's text depends on.
type wireMemoState struct {
	json bool
	// column, indent and flowLevel are the YAML writer's; indent is the
	// depth for JSON.
	column, indent, flowLevel int
	whitespace, indention     bool
	// staticSafe is the tree's: which way keys are written (the same
	// bytes either way, kept apart anyway).
	staticSafe bool
	prefix     string
}

// wireMemoEntry is the text written for one message in one state, and
// for YAML the cursor after it.
type wireMemoEntry struct {
	hash      uint64
	plan      *objPlan
	state     wireMemoState
	wire, out []byte
	// room is the slot's part of the cache's block, where wire and out
	// are kept.
	room                  []byte
	column                int
	whitespace, indention bool
}

// wireMemoPlan is how messages of one plan fared in the cache lately.
type wireMemoPlan struct {
	tries, found, paused int
}

// wireMemo is a builder's cache of the text of messages: a table of
// slots, each holding the last text kept there, its buffers reused.
type wireMemo struct {
	seed  maphash.Seed
	slots []wireMemoEntry
	plans []wireMemoPlan
}

// try reports whether a message of plan p, data long, is worth looking
// up.
func (m *wireMemo) try(p *objPlan, data []byte) bool {
	if len(data) < wireMemoMinBytes || len(data) > wireMemoMaxEntry {
		return false
	}
	if p.id >= len(m.plans) {
		m.plans = append(m.plans, make([]wireMemoPlan, p.id+1-len(m.plans))...)
	}
	s := &m.plans[p.id]
	if s.paused > 0 {
		s.paused--
		return false
	}
	if s.tries++; s.tries == wireMemoWindow {
		if s.found*wireMemoRarely < s.tries {
			s.paused = wireMemoPause
		}
		s.tries, s.found = 0, 0
	}
	return true
}

// find returns the slot of message data of plan p in state st, and
// whether it holds the text written for it; h is the message's hash,
// for keep.
func (m *wireMemo) find(p *objPlan, st *wireMemoState, data []byte) (e *wireMemoEntry, h uint64, found bool) {
	if m.slots == nil {
		m.seed = maphash.MakeSeed()
		m.slots = make([]wireMemoEntry, 1<<wireMemoSlotBits)
		// One block for all the slots' bytes, a fixed room each:
		// nothing to grow or to free while the builder lives.
		block := make([]byte, len(m.slots)*wireMemoMaxEntry)
		for i := range m.slots {
			m.slots[i].room = block[i*wireMemoMaxEntry : (i+1)*wireMemoMaxEntry : (i+1)*wireMemoMaxEntry]
		}
	}
	h = maphash.Bytes(m.seed, data)
	h ^= uint64(st.column) | uint64(st.indent)<<16 | uint64(st.flowLevel)<<32 | uint64(len(st.prefix))<<40
	for i, f := range [...]bool{st.json, st.whitespace, st.indention, st.staticSafe} {
		if f {
			h ^= 1 << (48 + i)
		}
	}
	h *= 0x9e3779b97f4a7c15
	e = &m.slots[h>>(64-wireMemoSlotBits)]
	if e.hash == h && e.plan == p && e.state == *st && bytes.Equal(e.wire, data) {
		m.plans[p.id].found++
		return e, h, true
	}
	return e, h, false
}

// keep fills slot e, which find gave, with the text out written for
// message data of plan p in state st; for YAML also the cursor after it.
func (e *wireMemoEntry) keep(h uint64, p *objPlan, st *wireMemoState, data, out []byte) {
	if len(data)+len(out) > wireMemoMaxEntry {
		e.hash, e.plan = 0, nil
		return
	}
	e.hash, e.plan, e.state = h, p, *st
	n := copy(e.room, data)
	e.wire = e.room[:n]
	e.out = e.room[n : n+copy(e.room[n:], out)]
}

// yMessage is yObject(p, from, to, false) through the cache.
func (b *wireBuilder) yMessage(p *objPlan, from, to int32) error {
	data := b.data[from:to]
	if b.rvNext || !b.memo.try(p, data) {
		return b.yObject(p, from, to, false)
	}
	w := &b.yw
	st := wireMemoState{column: w.column, indent: w.indent, flowLevel: w.flowLevel, whitespace: w.whitespace, indention: w.indention, staticSafe: b.t.staticSafe, prefix: w.prefix}
	e, h, found := b.memo.find(p, &st, data)
	if found {
		w.out = append(w.out, e.out...)
		w.column, w.whitespace, w.indention = e.column, e.whitespace, e.indention
		return nil
	}
	start := len(w.out)
	if err := b.yObject(p, from, to, false); err != nil {
		return err
	}
	// The walk may have used the slot for a message inside this one.
	e.keep(h, p, &st, data, w.out[start:])
	e.column, e.whitespace, e.indention = w.column, w.whitespace, w.indention
	return nil
}

// jMessage is jObject(p, from, to, false, depth) through the cache.
func (b *wireBuilder) jMessage(p *objPlan, from, to int32, depth int) error {
	data := b.data[from:to]
	if b.rvNext || !b.memo.try(p, data) {
		return b.jObject(p, from, to, false, depth)
	}
	st := wireMemoState{json: true, indent: depth, staticSafe: b.t.staticSafe, prefix: b.prefix}
	e, h, found := b.memo.find(p, &st, data)
	if found {
		b.out = append(b.out, e.out...)
		return nil
	}
	start := len(b.out)
	if err := b.jObject(p, from, to, false, depth); err != nil {
		return err
	}
	e.keep(h, p, &st, data, b.out[start:])
	return nil
}
