package printer

import (
	"context"
	"runtime"
	"sync"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// ListOptions shape Printer.PrintRange.
type ListOptions struct {
	Source     source.Source
	Start, End string
	Rev, Limit int64
	// Decoder decodes values for the formats that print objects.
	Decoder *storage.Decoder
	// Workers is how many goroutines decode and render (default
	// GOMAXPROCS).
	Workers int
	// Check sees every key in key order before it is printed, with its
	// decoded value or why it did not decode. It returns whether to print
	// the key, or an error that stops the listing.
	Check func(kv storage.KV, o *storage.Object, decodeErr error) (bool, error)
}

// listBatchSize is how many keys a worker takes at once: enough to make
// the hand-over cheap, few enough to keep memory flat (a pod's indented
// JSON is about 27 KB, so a batch holds under 1 MB of text).
const listBatchSize = 32

type listItem struct {
	kv        storage.KV
	obj       *storage.Object
	decodeErr error
	out       []byte
	renderErr error
	// rendered: out was printed from the value's wire form, obj has no
	// decoded Object.
	rendered bool
}

type listBatch struct {
	items []listItem
	// done is closed when every item is decoded and rendered, or when the
	// listing stopped before a worker took the batch (then aborted).
	done    chan struct{}
	aborted bool
}

// PrintRange reads a range and prints it between Begin and End. For yaml, json
// and name listings, workers decode and render the values of one page
// while the next page is fetched, and the results are printed in key
// order: the output is the same as printing key by key.
func (p *Printer) PrintRange(ctx context.Context, o ListOptions) error {
	decode := NeedsDecode(p.Format)
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	parallel := p.List && (p.Format == OutputYAML || p.Format == OutputJSON || p.Format == OutputName)
	if !parallel {
		_, err := o.Source.Range(ctx, o.Start, o.End, o.Rev, o.Limit, func(kv storage.KV) error {
			var obj *storage.Object
			var decodeErr error
			if decode {
				obj, decodeErr = o.Decoder.Decode(kv.Key, kv.Value, kv.ModRevision)
			}
			print, err := o.Check(kv, obj, decodeErr)
			if err != nil || !print {
				return err
			}
			return p.Print(kv, obj)
		})
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *listBatch, workers)
	// Batches in order: one being rendered by each worker, one waiting
	// for each, and two rendered ahead of the printer. Rendered text
	// waits here for its turn, so the window is what bounds memory.
	order := make(chan *listBatch, 2*workers+2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &renderer{}
			for b := range jobs {
				for i := range b.items {
					it := &b.items[i]
					if obj, out, ok := p.renderWire(r, o.Decoder, it.kv); ok {
						it.obj, it.out, it.rendered = obj, out, true
						continue
					}
					it.obj, it.decodeErr = o.Decoder.Decode(it.kv.Key, it.kv.Value, it.kv.ModRevision)
					if it.decodeErr == nil && (it.obj.Object != nil || p.Format == OutputName) {
						it.out, it.renderErr = p.render(r, it.kv, it.obj)
					}
				}
				close(b.done)
			}
		}()
	}

	var rangeErr error
	go func() {
		defer close(order)
		defer close(jobs)
		var cur *listBatch
		hand := func() error {
			b := cur
			cur = nil
			select {
			case order <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- b:
				return nil
			case <-ctx.Done():
				b.aborted = true
				close(b.done)
				return ctx.Err()
			}
		}
		_, rangeErr = o.Source.Range(ctx, o.Start, o.End, o.Rev, o.Limit, func(kv storage.KV) error {
			if cur == nil {
				cur = &listBatch{items: make([]listItem, 0, listBatchSize), done: make(chan struct{})}
			}
			cur.items = append(cur.items, listItem{kv: kv})
			if len(cur.items) == listBatchSize {
				return hand()
			}
			return nil
		})
		if rangeErr == nil && cur != nil {
			rangeErr = hand()
		}
	}()

	var err error
	for b := range order {
		if err != nil {
			continue // drain, so the reader stops
		}
		<-b.done
		if b.aborted {
			err = ctx.Err()
			continue
		}
		for i := range b.items {
			if err = p.printItem(&b.items[i], o.Check); err != nil {
				cancel()
				break
			}
		}
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return rangeErr
}

// printItem prints one decoded and rendered item as Print would.
func (p *Printer) printItem(it *listItem, check func(storage.KV, *storage.Object, error) (bool, error)) error {
	print, err := check(it.kv, it.obj, it.decodeErr)
	if err != nil || !print {
		return err
	}
	if !it.rendered && (p.Format == OutputYAML || p.Format == OutputJSON) && (it.obj == nil || it.obj.Object == nil) {
		p.skip(it.kv, it.obj)
		return nil
	}
	if it.renderErr != nil {
		return it.renderErr
	}
	defer func() {
		p.n++
		putRenderBuffer(it.out)
		it.out = nil
	}()
	if p.Format == OutputName {
		_, err := p.Out.Write(it.out)
		return err
	}
	return p.printRendered(it.out)
}

// StoredRenderer returns a function that renders stored values one by
// one as a listing's workers do: from the wire form where it can, else
// decoded. It returns the value's object (without a decoded Object where
// the wire form was printed) and its text, nil for a plain value; err is
// why the value does not decode. The text is valid until the next call.
// One goroutine's: watch renders its events with it.
func (p *Printer) StoredRenderer(d *storage.Decoder) func(storage.KV) (*storage.Object, []byte, error) {
	render := p.OwnedStoredRenderer(d)
	var last []byte
	return func(kv storage.KV) (*storage.Object, []byte, error) {
		ReleaseRendered(last)
		o, out, err := render(kv)
		last = out
		return o, out, err
	}
}

// OwnedStoredRenderer is StoredRenderer whose text stays the caller's
// until it hands it back with ReleaseRendered, so that one goroutine can
// render the next values while another prints: watch's workers do. Each
// goroutine takes its own.
func (p *Printer) OwnedStoredRenderer(d *storage.Decoder) func(storage.KV) (*storage.Object, []byte, error) {
	r := &renderer{}
	return func(kv storage.KV) (*storage.Object, []byte, error) {
		if obj, out, ok := p.renderWire(r, d, kv); ok {
			return obj, out, nil
		}
		o, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, nil, err
		}
		if o.Object == nil && p.Format != OutputName {
			return o, nil, nil
		}
		out, err := p.render(r, kv, o)
		return o, out, err
	}
}

// ReleaseRendered hands back text an OwnedStoredRenderer gave, once it is
// written out, for the next values to reuse; nil is ignored.
func ReleaseRendered(b []byte) { putRenderBuffer(b) }
