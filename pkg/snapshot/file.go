// Package snapshot saves, inspects and restores etcd snapshot files: the
// bbolt database a member streams through the Snapshot API, followed by a
// sha256 of everything before it. Files may be gzip or zstd compressed; the
// compression is recognised by its magic bytes, not by the file name.
package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names accepted by --compress.
const (
	None = ""
	Gzip = "gzip"
	Zstd = "zstd"
)

// Compressions lists the accepted --compress values, for help and errors.
var Compressions = []string{Gzip, Zstd}

// Extension returns the file name suffix of a compression.
func Extension(compression string) string {
	switch compression {
	case Gzip:
		return ".gz"
	case Zstd:
		return ".zst"
	}
	return ""
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniff tells the compression of a file from its first bytes.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	}
	return None
}

// CorruptError says a snapshot file cannot be trusted: it is truncated, its
// bytes changed, or it is not a snapshot at all.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("snapshot %s is truncated or corrupt: %s", e.Path, e.Reason)
}

// hasTrailer reports whether a database of n bytes carries the sha256 etcd
// appends: bbolt files are whole pages (multiples of 512), so a trailer
// leaves exactly 32 bytes over. etcdutl decides the same way.
func hasTrailer(n int64) bool { return n >= sha256.Size && n%512 == sha256.Size }

// trailerHash hashes everything written to it except the last 32 bytes,
// which it keeps aside: at the end of a snapshot stream those are the
// sha256 of the rest. It lets the trailer be checked while the stream is
// written, without reading the file again.
type trailerHash struct {
	h    hash.Hash
	tail []byte
	n    int64
}

func newTrailerHash() *trailerHash {
	return &trailerHash{h: sha256.New(), tail: make([]byte, 0, 2*sha256.Size)}
}

func (t *trailerHash) Write(p []byte) (int, error) {
	t.n += int64(len(p))
	if len(p) >= sha256.Size {
		t.h.Write(t.tail)
		t.h.Write(p[:len(p)-sha256.Size])
		t.tail = append(t.tail[:0], p[len(p)-sha256.Size:]...)
		return len(p), nil
	}
	t.tail = append(t.tail, p...)
	if over := len(t.tail) - sha256.Size; over > 0 {
		t.h.Write(t.tail[:over])
		t.tail = t.tail[:copy(t.tail, t.tail[over:])]
	}
	return len(p), nil
}

// fileSum is the sha256 of everything written, trailer included: the
// hash of the rest, continued over the trailer, so the file is hashed
// once.
func (t *trailerHash) fileSum() []byte {
	state, err := t.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err) // crypto/sha256 always marshals its state
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		panic(err)
	}
	h.Write(t.tail)
	return h.Sum(nil)
}

// errNoTrailer: the data does not end in a sha256 trailer.
var errNoTrailer = errors.New("no sha256 trailer")

// check compares the trailer with the hash of the rest. errNoTrailer when
// the size leaves no room for one.
func (t *trailerHash) check() error {
	if !hasTrailer(t.n) {
		return errNoTrailer
	}
	if sum := t.h.Sum(nil); !bytes.Equal(sum, t.tail) {
		return fmt.Errorf("the sha256 trailer %x does not match the data's sha256 %x", t.tail, sum)
	}
	return nil
}

// checkBoltSize reads the bbolt meta pages of a database of size bytes and
// makes sure the file holds every page they claim. A truncated file fails
// here with a plain reason instead of crashing the reader that maps it.
// Layout: each of the first two pages holds a 16-byte page header, then
// magic, version, page size, flags (uint32 each), root bucket (16 bytes),
// freelist, high-water page id, txid and a FNV-64a checksum of the
// preceding meta fields (uint64 each), little endian.
func checkBoltSize(r io.ReaderAt, size int64) error {
	const (
		magic     = 0xED0CDAED
		metaStart = 16
		metaLen   = 64
	)
	readMeta := func(off int64) (pageSize uint32, hwm, txid uint64, ok bool) {
		buf := make([]byte, metaStart+metaLen)
		if _, err := r.ReadAt(buf, off); err != nil {
			return 0, 0, 0, false
		}
		m := buf[metaStart:]
		if binary.LittleEndian.Uint32(m[0:]) != magic {
			return 0, 0, 0, false
		}
		h := fnv.New64a()
		h.Write(m[:56])
		if h.Sum64() != binary.LittleEndian.Uint64(m[56:]) {
			return 0, 0, 0, false
		}
		return binary.LittleEndian.Uint32(m[8:]), binary.LittleEndian.Uint64(m[40:]), binary.LittleEndian.Uint64(m[48:]), true
	}
	ps0, hwm0, tx0, ok0 := readMeta(0)
	pageSize, hwm := ps0, hwm0
	if ok0 {
		if ps1, hwm1, tx1, ok1 := readMeta(int64(ps0)); ok1 && tx1 > tx0 {
			pageSize, hwm = ps1, hwm1
		}
	} else {
		// The first meta page is damaged; the second sits one page in, and
		// the page size is unknown: try the usual ones.
		for _, ps := range []uint32{4096, 8192, 16384, 65536} {
			if p, h, _, ok := readMeta(int64(ps)); ok && p == ps {
				pageSize, hwm, ok0 = p, h, true
				break
			}
		}
		if !ok0 {
			return errors.New("it is not a bbolt database (no valid meta page)")
		}
	}
	if need := int64(hwm) * int64(pageSize); need > size {
		return fmt.Errorf("the database needs %d bytes but the file holds %d", need, size)
	}
	// bbolt only ever writes and grows whole pages.
	if size%int64(pageSize) != 0 {
		return fmt.Errorf("it ends mid-page: %d bytes is not a whole number of %d-byte pages", size, pageSize)
	}
	return nil
}

// decompressor returns a reader of the uncompressed bytes of r.
func decompressor(compression string, r io.Reader) (io.ReadCloser, error) {
	switch compression {
	case Gzip:
		return gzip.NewReader(r)
	case Zstd:
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// compressor returns a writer that compresses into w; Close flushes it
// (and leaves w open).
func compressor(compression string, w io.Writer) (io.WriteCloser, error) {
	switch compression {
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w)
	case None:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q: use gzip or zstd", compression)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// openSniffed opens path and tells its compression.
func openSniffed(path string) (*os.File, *bufio.Reader, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, "", err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(4)
	return f, br, sniff(head), nil
}
