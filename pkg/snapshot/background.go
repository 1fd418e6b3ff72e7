package snapshot

import "io"

// backgroundWriter hands what is written to it to another writer on its
// own goroutine, in blocks, so that slow work on the stream (hashing it)
// runs beside receiving and writing it instead of between them. Memory is
// bounded: a fixed set of blocks circulates between the two sides.
type backgroundWriter struct {
	w     io.Writer
	block []byte
	full  chan []byte
	free  chan []byte
	done  chan struct{}
}

const (
	backgroundBlockSize = 256 << 10
	backgroundBlocks    = 8
)

func newBackgroundWriter(w io.Writer) *backgroundWriter {
	b := &backgroundWriter{
		w:    w,
		full: make(chan []byte, backgroundBlocks),
		free: make(chan []byte, backgroundBlocks),
		done: make(chan struct{}),
	}
	for range backgroundBlocks - 1 {
		b.free <- make([]byte, 0, backgroundBlockSize)
	}
	b.block = make([]byte, 0, backgroundBlockSize)
	// The goroutine takes the channels now: Close sets b.full to nil, and a
	// goroutine that first ran after that ranged over a nil channel forever
	// (seen on a loaded machine, a short snapshot's Save hanging in Close).
	full, free, done := b.full, b.free, b.done
	go func() {
		defer close(done)
		for block := range full {
			// The writers this serves (hashes) never fail.
			_, _ = w.Write(block)
			free <- block[:0]
		}
	}()
	return b
}

func (b *backgroundWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		c := copy(b.block[len(b.block):cap(b.block)], p)
		b.block = b.block[:len(b.block)+c]
		p = p[c:]
		if len(b.block) == cap(b.block) {
			b.full <- b.block
			b.block = <-b.free
		}
	}
	return n, nil
}

// Close hands over the last partial block and waits until everything
// written has reached the writer behind.
func (b *backgroundWriter) Close() {
	if b.full == nil {
		return
	}
	if len(b.block) > 0 {
		b.full <- b.block
	}
	close(b.full)
	b.full = nil
	<-b.done
}
