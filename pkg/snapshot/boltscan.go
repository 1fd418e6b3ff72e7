package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
)

// boltScan reads a bbolt database as it streams past, page by page, and
// keeps just enough to answer at the end what a save reports without the
// file: the database size its meta page declares, whether the stream held
// all of it, and the newest revision (the last key of etcd's key bucket).
// It keeps, per page, one number: a branch page's last child, a leaf
// page's last key's main revision. That is 16 bytes a page (4 MiB for a
// 1 GiB database), where a copy of the file would be the whole of it.
//
// bbolt's layout (go.etcd.io/bbolt, page.go): a page starts with a 16-byte
// header (id uint64, flags uint16, count uint16, overflow uint32); the
// elements follow, 16 bytes each: a branch element is pos, ksize (uint32)
// and pgid (uint64), a leaf element flags, pos, ksize, vsize (uint32); pos
// counts from the element itself. A leaf element with flag 1 is a bucket:
// its value starts with the bucket's root page id (0 for an inline bucket,
// whose page follows the 16-byte bucket header in the value).
type boltScan struct {
	off      int64 // bytes seen
	pageSize int64
	buf      []byte // the page being collected
	need     int64  // its length, header included, once known

	metas      [2]boltMeta
	rootPage   []byte // the root bucket's page, copied when seen
	rootPgid   uint64
	branchLast map[uint64]uint64
	leafLast   map[uint64]int64
	err        error
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
	metaPageFlag     = 0x04
	bucketLeafFlag   = 0x01
	boltMagic        = 0xED0CDAED
	metaFieldsLength = 64
)

func newBoltScan() *boltScan {
	return &boltScan{branchLast: map[uint64]uint64{}, leafLast: map[uint64]int64{}}
}

func (b *boltScan) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && b.err == nil {
		if b.pageSize == 0 {
			// The first meta page says how big pages are.
			want := pageHeaderSize + metaFieldsLength
			c := min(want-len(b.buf), len(p))
			b.buf = append(b.buf, p[:c]...)
			p = p[c:]
			b.off += int64(c)
			if len(b.buf) < want {
				continue
			}
			m := readBoltMeta(b.buf)
			if !m.ok || m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0 {
				b.err = errors.New("it is not a bbolt database (the first meta page is not valid)")
				return n, nil
			}
			b.pageSize = int64(m.pageSize)
			b.need = b.pageSize
			continue
		}
		if b.need == 0 {
			b.need = pageHeaderSize
		}
		c := min(int(b.need)-len(b.buf), len(p))
		b.buf = append(b.buf, p[:c]...)
		p = p[c:]
		b.off += int64(c)
		if int64(len(b.buf)) < b.need {
			continue
		}
		if b.need == pageHeaderSize {
			// The header tells how many pages this one spans.
			overflow := int64(binary.LittleEndian.Uint32(b.buf[12:16]))
			b.need = (overflow + 1) * b.pageSize
			if int64(len(b.buf)) < b.need {
				continue
			}
		}
		b.page(b.buf)
		b.buf = b.buf[:0]
		b.need = 0
	}
	return n, nil
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

// page records what the scan needs of one whole page (with its overflow).
func (b *boltScan) page(p []byte) {
	pgid := uint64((b.off - int64(len(p))) / b.pageSize)
	flags := binary.LittleEndian.Uint16(p[8:10])
	count := int(binary.LittleEndian.Uint16(p[10:12]))
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
		}
	case pgid == b.rootPgid:
		b.rootPage = append([]byte(nil), p...)
		fallthrough
	default:
		if count == 0 && flags&leafPageFlag != 0 {
			b.leafLast[pgid] = 0
		}
		if count == 0 || pageHeaderSize+count*elementSize > len(p) {
			return
		}
		last := p[pageHeaderSize+(count-1)*elementSize:]
		switch {
		case flags&branchPageFlag != 0:
			b.branchLast[pgid] = binary.LittleEndian.Uint64(last[8:16])
		case flags&leafPageFlag != 0:
			if rev, ok := leafLastRevision(p); ok {
				b.leafLast[pgid] = rev
			}
		}
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
	if b.rootPage == nil || binary.LittleEndian.Uint16(b.rootPage[8:10])&leafPageFlag == 0 {
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
		if next, ok := b.branchLast[pgid]; ok {
			pgid = next
			continue
		}
		if rev, ok := b.leafLast[pgid]; ok {
			res.Revision = rev
			return res, nil
		}
		break
	}
	return res, fmt.Errorf("the key bucket's last page %d is not in the stream", pgid)
}
