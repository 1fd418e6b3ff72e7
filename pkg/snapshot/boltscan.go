package snapshot

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
)

// boltScan reads a bbolt database as it streams past, page by page, and
// keeps just enough to answer at the end what a save reports without the
// file: the database size its meta page declares, whether the stream held
// all of it, and the newest revision (the last key of etcd's key bucket).
// It keeps, per branch or leaf page, one number: a branch page's last
// child, a leaf page's last key's main revision. That is 16 bytes a page
// (at most 4 MiB for a 1 GiB database), where a copy of the file would be
// the whole of it.
//
// bbolt's layout (go.etcd.io/bbolt, page.go): a page starts with a 16-byte
// header (id uint64, flags uint16, count uint16, overflow uint32); the
// elements follow, 16 bytes each: a branch element is pos, ksize (uint32)
// and pgid (uint64), a leaf element flags, pos, ksize, vsize (uint32); pos
// counts from the element itself. A leaf element with flag 1 is a bucket:
// its value starts with the bucket's root page id (0 for an inline bucket,
// whose page follows the 16-byte bucket header in the value).
//
// A page with overflow spans the pages after it, but a freed page keeps
// its header while those pages are reused on their own: every page-sized
// chunk is read as a page of its own, and what a page needs from beyond
// its first chunk is fetched as the stream passes that offset (a want).
type boltScan struct {
	off      int64 // bytes seen
	pageSize int64
	head     []byte // the first bytes, until the page size is known
	prev     []byte // the chunk before cur, for a want across the boundary
	cur      []byte // the chunk being collected

	metas      [2]boltMeta
	rootPage   []byte // the root bucket's page with its overflow, once whole
	rootNeed   int64
	rootPgid   uint64
	branchLast pageNotes // a branch page's last child
	leafLast   pageNotes // a leaf page's last key's main revision
	wants      wantHeap
	// end is the database's size its meta page declares, once read:
	// nothing past it is a page.
	end int64
	err error
}

// want is n bytes at stream offset off that a page needs, handed to fn.
type want struct {
	off int64
	n   int
	fn  func([]byte)
}

func (w want) due() int64 { return w.off + int64(w.n) }

// wantHeap orders the pending wants by the offset where their bytes end,
// so each chunk takes only those it completes. Chunks inside a large value
// read as pages too, and random bytes there (compressed or encrypted
// values) ask for bytes anywhere ahead: walking every pending want on each
// chunk made the scan quadratic, seconds of CPU for a few hundred MiB.
type wantHeap []want

func (h wantHeap) Len() int           { return len(h) }
func (h wantHeap) Less(i, j int) bool { return h[i].due() < h[j].due() }
func (h wantHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wantHeap) Push(x any)        { *h = append(*h, x.(want)) }
func (h *wantHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

type boltMeta struct {
	ok             bool
	pageSize       uint32
	root, hwm, txn uint64
}

const (
	pageHeaderSize   = 16
	elementSize      = 16
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	bucketLeafFlag   = 0x01
	boltMagic        = 0xED0CDAED
	metaFieldsLength = 64
)

func newBoltScan() *boltScan { return &boltScan{} }

// pageNotes keep one number per page, in the order pages stream past
// (increasing page ids): 16 bytes a page where a map took about three
// times that, and a map's growth is garbage too. A note is added when its
// page is read and set when the bytes it needs have passed.
type pageNotes []pageNote

type pageNote struct{ pgid, v uint64 }

// unset marks a note whose bytes have not come (or never will).
const unset = ^uint64(0)

// add adds an unset note for pgid and returns a function that sets it.
func (n *pageNotes) add(pgid uint64) func(uint64) {
	i := len(*n)
	*n = append(*n, pageNote{pgid: pgid, v: unset})
	return func(v uint64) { (*n)[i].v = v }
}

// get returns the note of pgid, if it is set.
func (n pageNotes) get(pgid uint64) (uint64, bool) {
	i := sort.Search(len(n), func(i int) bool { return n[i].pgid >= pgid })
	if i < len(n) && n[i].pgid == pgid && n[i].v != unset {
		return n[i].v, true
	}
	return 0, false
}

func (b *boltScan) Write(p []byte) (int, error) {
	n := len(p)
	if b.pageSize == 0 && b.err == nil {
		// The first meta page says how big pages are.
		want := pageHeaderSize + metaFieldsLength
		c := min(want-len(b.head), len(p))
		b.head = append(b.head, p[:c]...)
		if len(b.head) < want {
			return n, nil
		}
		m := readBoltMeta(b.head)
		if !m.ok || m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0 {
			b.err = errors.New("it is not a bbolt database (the first meta page is not valid)")
			return n, nil
		}
		b.pageSize = int64(m.pageSize)
		b.cur = make([]byte, 0, b.pageSize)
		b.prev = make([]byte, 0, b.pageSize)
		// Replay what was held back as the start of the first chunk.
		p = append(b.head, p[c:]...)
	}
	for len(p) > 0 && b.err == nil {
		c := min(int(b.pageSize)-len(b.cur), len(p))
		b.cur = append(b.cur, p[:c]...)
		p = p[c:]
		if int64(len(b.cur)) < b.pageSize {
			continue
		}
		b.off += b.pageSize
		b.chunk()
		b.prev, b.cur = b.cur, b.prev[:0]
	}
	return n, nil
}

// chunk handles the page-sized chunk just completed (b.cur, ending at
// b.off): the wants it satisfies, then the chunk read as a page.
func (b *boltScan) chunk() {
	start := b.off - b.pageSize
	// A want a satisfied one adds ends past this chunk (need), so it waits.
	for len(b.wants) > 0 && b.wants[0].due() <= b.off {
		b.satisfy(heap.Pop(&b.wants).(want), start)
	}
	pgid := uint64(start / b.pageSize)
	if b.rootPage != nil && int64(len(b.rootPage)) < b.rootNeed {
		b.rootPage = append(b.rootPage, b.cur...)
	}
	b.page(pgid, start, b.cur)
}

// satisfy hands a want its bytes from prev and cur (cur starts at start).
func (b *boltScan) satisfy(w want, start int64) {
	lo := start - int64(len(b.prev))
	if w.off < lo {
		return // a want too far back: the page it served was not sound
	}
	if w.off >= start {
		w.fn(b.cur[w.off-start : w.due()-start])
		return
	}
	joined := append(append(make([]byte, 0, len(b.prev)+len(b.cur)), b.prev...), b.cur...)
	at := w.off - lo
	w.fn(joined[at : at+int64(w.n)])
}

// need asks for n bytes at offset off: now when they are in this chunk,
// else when the stream gets there.
func (b *boltScan) need(start int64, page []byte, off int64, n int, fn func([]byte)) {
	if rel := off - start; rel >= 0 && rel+int64(n) <= int64(len(page)) {
		fn(page[rel : rel+int64(n)])
		return
	}
	if off < start || b.end > 0 && off+int64(n) > b.end {
		return // behind the stream, or past the database: not a sound page
	}
	heap.Push(&b.wants, want{off: off, n: n, fn: fn})
}

func readBoltMeta(page []byte) boltMeta {
	if len(page) < pageHeaderSize+metaFieldsLength {
		return boltMeta{}
	}
	m := page[pageHeaderSize:]
	if binary.LittleEndian.Uint32(m[0:]) != boltMagic {
		return boltMeta{}
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != binary.LittleEndian.Uint64(m[56:]) {
		return boltMeta{}
	}
	return boltMeta{
		ok:       true,
		pageSize: binary.LittleEndian.Uint32(m[8:]),
		root:     binary.LittleEndian.Uint64(m[16:]),
		hwm:      binary.LittleEndian.Uint64(m[40:]),
		txn:      binary.LittleEndian.Uint64(m[48:]),
	}
}

// page records what the scan needs of the page whose first chunk is p, at
// stream offset start.
func (b *boltScan) page(pgid uint64, start int64, p []byte) {
	flags := binary.LittleEndian.Uint16(p[8:10])
	count := int64(binary.LittleEndian.Uint16(p[10:12]))
	overflow := int64(binary.LittleEndian.Uint32(p[12:16]))
	switch {
	case pgid < 2:
		b.metas[pgid] = readBoltMeta(p)
		if pgid == 1 {
			m := b.meta()
			if !m.ok {
				b.err = errors.New("neither meta page is valid")
				return
			}
			b.rootPgid = m.root
			b.end = int64(m.hwm) * b.pageSize
		}
		return
	case pgid == b.rootPgid:
		// The root bucket's page is live: its overflow is its own.
		b.rootPage = append([]byte(nil), p...)
		b.rootNeed = (overflow + 1) * b.pageSize
	}
	if count == 0 {
		if flags&leafPageFlag != 0 {
			b.leafLast.add(pgid)(0)
		}
		return
	}
	size := (overflow + 1) * b.pageSize
	last := start + pageHeaderSize + (count-1)*elementSize
	if last+elementSize > start+size {
		return // not a sound page
	}
	switch {
	case flags&branchPageFlag != 0:
		set := b.branchLast.add(pgid)
		b.need(start, p, last+8, 8, func(v []byte) { set(binary.LittleEndian.Uint64(v)) })
	case flags&leafPageFlag != 0:
		set := b.leafLast.add(pgid)
		b.need(start, p, last, elementSize, func(e []byte) {
			pos, ksize := int64(binary.LittleEndian.Uint32(e[4:8])), binary.LittleEndian.Uint32(e[8:12])
			if ksize < 8 || last+pos+8 > start+size {
				return
			}
			b.need(b.off-b.pageSize, b.cur, last+pos, 8, func(k []byte) { set(binary.BigEndian.Uint64(k)) })
		})
	}
}

// meta is the newer of the two valid meta pages, as bbolt picks it.
func (b *boltScan) meta() boltMeta {
	m0, m1 := b.metas[0], b.metas[1]
	if m1.ok && (!m0.ok || m1.txn > m0.txn) {
		return m1
	}
	return m0
}

// leafLastRevision reads the main revision of the last key of a leaf page
// (etcd's key bucket: 8-byte big-endian main revision first).
func leafLastRevision(p []byte) (int64, bool) {
	count := int(binary.LittleEndian.Uint16(p[10:12]))
	if count == 0 {
		return 0, false
	}
	at := pageHeaderSize + (count-1)*elementSize
	if at+elementSize > len(p) {
		return 0, false
	}
	e := p[at:]
	pos, ksize := int(binary.LittleEndian.Uint32(e[4:8])), int(binary.LittleEndian.Uint32(e[8:12]))
	if ksize < 8 || at+pos+8 > len(p) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(p[at+pos:])), true
}

// bucketValue finds the value of the bucket element named name in a leaf
// page.
func bucketValue(p []byte, name []byte) ([]byte, bool) {
	count := int(binary.LittleEndian.Uint16(p[10:12]))
	for i := range count {
		at := pageHeaderSize + i*elementSize
		if at+elementSize > len(p) {
			return nil, false
		}
		e := p[at:]
		flags := binary.LittleEndian.Uint32(e[0:4])
		pos := int(binary.LittleEndian.Uint32(e[4:8]))
		ksize := int(binary.LittleEndian.Uint32(e[8:12]))
		vsize := int(binary.LittleEndian.Uint32(e[12:16]))
		if at+pos+ksize+vsize > len(p) {
			return nil, false
		}
		if flags&bucketLeafFlag != 0 && bytes.Equal(p[at+pos:at+pos+ksize], name) {
			return p[at+pos+ksize : at+pos+ksize+vsize], true
		}
	}
	return nil, false
}

// boltScanResult is what the scan found.
type boltScanResult struct {
	// Size is the database size the meta page declares (bbolt's
	// tx.Size()); Revision the newest main revision in the key bucket.
	Size     int64
	Revision int64
}

// result checks that the stream of n page bytes (the trailer left out)
// held the whole database and finds the newest revision.
func (b *boltScan) result(n int64) (boltScanResult, error) {
	if b.err != nil {
		return boltScanResult{}, b.err
	}
	if b.pageSize == 0 {
		return boltScanResult{}, errors.New("it is too short to be a bbolt database")
	}
	m := b.meta()
	if !m.ok {
		return boltScanResult{}, errors.New("it is not a bbolt database (no valid meta page)")
	}
	size := int64(m.hwm) * b.pageSize
	if size > n {
		return boltScanResult{}, fmt.Errorf("the database needs %d bytes but the stream held %d", size, n)
	}
	if n%b.pageSize != 0 {
		return boltScanResult{}, fmt.Errorf("it ends mid-page: %d bytes is not a whole number of %d-byte pages", n, b.pageSize)
	}
	res := boltScanResult{Size: size}
	if b.rootPage == nil || int64(len(b.rootPage)) < b.rootNeed || binary.LittleEndian.Uint16(b.rootPage[8:10])&leafPageFlag == 0 {
		return res, errors.New("the root bucket page is missing or not a leaf")
	}
	v, ok := bucketValue(b.rootPage, []byte("key"))
	if !ok || len(v) < 16 {
		return res, errors.New("it has no key bucket: not an etcd database")
	}
	pgid := binary.LittleEndian.Uint64(v[0:8])
	if pgid == 0 {
		// An inline bucket: its leaf page is in the value.
		if inline := v[16:]; len(inline) >= pageHeaderSize {
			res.Revision, _ = leafLastRevision(inline)
		}
		return res, nil
	}
	for range 64 {
		if next, ok := b.branchLast.get(pgid); ok {
			pgid = next
			continue
		}
		if rev, ok := b.leafLast.get(pgid); ok {
			res.Revision = int64(rev)
			return res, nil
		}
		break
	}
	return res, fmt.Errorf("the key bucket's last page %d is not in the stream", pgid)
}
