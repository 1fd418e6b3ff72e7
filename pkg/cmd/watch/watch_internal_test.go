package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/internal/benchdata"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// watchEvents is a busy prefix's events: pods created, changed and
// deleted, with plain values, values that do not decode and deletions
// without their previous value among them.
func watchEvents(t *testing.T) []source.Event {
	var events []source.Event
	add := func(typ, key string, value []byte) {
		rev := int64(len(events) + 100)
		events = append(events, source.Event{Type: typ, KV: storage.KV{Key: key, Value: value, CreateRevision: rev, ModRevision: rev, Version: 1}})
	}
	for i := range 400 {
		v, err := benchdata.PodValue(i)
		if err != nil {
			t.Fatal(err)
		}
		typ := source.EventAdded
		if i%5 == 1 {
			typ = source.EventModified
		}
		add(typ, benchdata.PodKey("/registry", i), v)
		switch i % 37 {
		case 3:
			add(source.EventDeleted, benchdata.PodKey("/registry", i), v)
		case 5:
			add(source.EventDeleted, benchdata.PodKey("/registry", i), nil)
		case 7:
			add(source.EventAdded, fmt.Sprintf("/config/k-%d", i), []byte("plain value\nwith two lines"))
		case 11:
			add(source.EventModified, fmt.Sprintf("/registry/pods/bad/p-%d", i), []byte("k8s\x00\x0a\x09not a pod"))
		case 13:
			add(source.EventAdded, fmt.Sprintf("/registry/pods/cut/p-%d", i), v[:len(v)/2])
		}
	}
	return events
}

// printEvents prints events as watch does with workers, to out and errOut.
func printEvents(t *testing.T, format string, workers int, out, errOut *bytes.Buffer, events []source.Event) error {
	o := &Options{Factory: &cmdutil.Factory{IOStreams: genericiooptions.IOStreams{Out: out, ErrOut: errOut}}, Output: format}
	handle, finish := o.eventPrinter(context.Background(), &storage.Decoder{}, workers)
	for _, e := range events {
		if err := handle(e); err != nil {
			if ferr := finish(); ferr != nil {
				return ferr
			}
			return err
		}
	}
	return finish()
}

// TestEventPrinterParallel: events rendered by several workers print
// byte for byte as one by one, warnings in their place among them.
func TestEventPrinterParallel(t *testing.T) {
	events := watchEvents(t)
	for _, format := range []string{printer.OutputText, printer.OutputJSON, printer.OutputKeys} {
		for _, together := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/one stream %v", format, together), func(t *testing.T) {
				run := func(workers int) (string, string) {
					var out, errOut bytes.Buffer
					e := &errOut
					if together {
						e = &out
					}
					if err := printEvents(t, format, workers, &out, e, events); err != nil {
						t.Fatalf("%d workers: %v", workers, err)
					}
					return out.String(), errOut.String()
				}
				wantOut, wantErr := run(1)
				if !together && wantErr == "" && format != printer.OutputKeys {
					t.Fatal("no warnings: the events should hold values that do not decode")
				}
				for _, workers := range []int{2, 3, 8} {
					gotOut, gotErr := run(workers)
					if gotOut != wantOut || gotErr != wantErr {
						t.Errorf("%d workers print differently from one: %d and %d bytes, then %d and %d",
							workers, len(gotOut), len(gotErr), len(wantOut), len(wantErr))
					}
				}
			})
		}
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

var errFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errFull
	}
	w.n -= len(p)
	return len(p), nil
}

// TestEventPrinterWriteError: a failed write stops the workers' printer
// and is the error returned.
func TestEventPrinterWriteError(t *testing.T) {
	events := watchEvents(t)
	for _, format := range []string{printer.OutputText, printer.OutputJSON} {
		o := &Options{Factory: &cmdutil.Factory{IOStreams: genericiooptions.IOStreams{Out: &failingWriter{n: 200 << 10}, ErrOut: &bytes.Buffer{}}}, Output: format}
		handle, finish := o.eventPrinter(context.Background(), &storage.Decoder{}, 2)
		stopped := false
		for _, e := range events {
			if err := handle(e); err != nil {
				stopped = true
				break
			}
		}
		if err := finish(); !errors.Is(err, errFull) {
			t.Errorf("%s: finish returned %v, want %v", format, err, errFull)
		}
		if !stopped {
			t.Errorf("%s: handle took every event after the write failed", format)
		}
	}
}
