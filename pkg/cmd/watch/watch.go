// Package watch holds `kubectl etcd watch`: decoded changes as they
// happen, or from a past revision.
package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// Options are the options of `kubectl etcd watch`.
type Options struct {
	*cmdutil.Factory
	cmdutil.StorageFlags
	Prefix        bool
	AllNamespaces bool
	Namespace     string
	Rev           int64
	Output        string
	MaxEvents     int
	// Target is the key, prefix or resource to watch.
	Target string

	// objectNamespace is -n, else the kubeconfig context's namespace.
	objectNamespace string
}

var formats = []string{printer.OutputText, printer.OutputJSON, printer.OutputKeys}

// NewCmdWatch returns the watch command.
func NewCmdWatch(f *cmdutil.Factory) *cobra.Command {
	o := &Options{Output: printer.OutputText}
	cmd := &cobra.Command{
		Use:   "watch (KEY [--prefix] | PREFIX/ | RESOURCE [-n NAMESPACE | -A])",
		Short: "Print changes to keys or Kubernetes objects as they happen, decoded",
		Long: `Print every change as an event line (ADDED, MODIFIED, DELETED, the key and
the revision) followed by the decoded object or the value. A key ending in /
is watched as a prefix. --rev replays from a past revision first.`,
		Example: `  # Pod changes in every namespace
  kubectl etcd watch pods -A

  # A configuration prefix, as etcdctl watch --prefix does
  kubectl etcd watch /config/

  # One JSON document per event, from revision 1000, stop after 10
  kubectl etcd watch /registry/leases/ -o json --rev 1000 --max-events 10`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.Prefix, "prefix", false, "watch every key starting with KEY")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "watch the resource in every namespace")
	cmdutil.AddNamespaceFlag(fs, &o.Namespace)
	fs.Int64Var(&o.Rev, "rev", 0, "start from this revision (default: now)")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output format: text, json (one document per line) or keys")
	fs.IntVar(&o.MaxEvents, "max-events", 0, "exit after this many events (0: run until interrupted)")
	o.StorageFlags.AddFlags(fs)
	return cmd
}

// Complete takes what to watch and finds the namespace in the kubeconfig.
func (o *Options) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Target = f, args[0]
	o.objectNamespace = cmdutil.ObjectNamespace(o.Namespace, o.Connect.KubeConfig)
	return nil
}

// Validate checks the format.
func (o *Options) Validate() error { return output.Validate(o.Output, formats...) }

// Run watches and prints each event until the context ends or
// --max-events.
func (o *Options) Run(ctx context.Context) error { return o.watch(ctx, o.Target, o.objectNamespace) }

// EventJSON is one event in -o json.
type EventJSON struct {
	Type     string         `json:"type"`
	Key      string         `json:"key"`
	Revision int64          `json:"revision"`
	Object   map[string]any `json:"object,omitempty"`
	Value    string         `json:"value,omitempty"`
	Error    string         `json:"error,omitempty"`
}

var errEnough = errors.New("enough events")

// Run watches until interrupted or --max-events.
func (o *Options) watch(ctx context.Context, target, namespace string) error {
	d, err := o.Decoder()
	if err != nil {
		return err
	}
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := cfg.RequireConnection("a watch"); err != nil {
		return err
	}
	prefix := strings.TrimSuffix(o.StoragePrefix, "/")
	start, end := target, ""
	switch {
	case o.Prefix || strings.HasSuffix(target, "/"):
		end = storage.PrefixEnd(target)
	case strings.Contains(target, "/"):
	default:
		src := &source.Etcd{Client: cli, RequestContext: cfg.WithCommandTimeout}
		r, err := source.Resolve(ctx, src, prefix, target, o.Rev)
		if err != nil {
			return err
		}
		start = prefix + "/" + r.Path + "/"
		if r.Found && r.Namespaced && !o.AllNamespaces {
			start += namespace + "/"
		}
		if !r.Found {
			fmt.Fprintf(o.ErrOut, "nothing is stored under %s yet: watching it\n", start)
		}
		end = storage.PrefixEnd(start)
	}
	n := 0
	handle, finish := o.eventPrinter(ctx, d, runtime.GOMAXPROCS(0))
	err = source.Watch(ctx, cli, start, end, o.Rev, func(e source.Event) error {
		if err := handle(e); err != nil {
			return err
		}
		n++
		if o.MaxEvents > 0 && n >= o.MaxEvents {
			return errEnough
		}
		return nil
	})
	if ferr := finish(); ferr != nil {
		return ferr
	}
	if errors.Is(err, errEnough) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// readyEvent is one event made ready to print by a worker.
type readyEvent struct {
	e         source.Event
	obj       *storage.Object
	decodeErr error
	// out is the text of -o text's object, to hand back with
	// printer.ReleaseRendered once written, or the line of -o json.
	out []byte
	err error
	// done is closed once the fields above are set.
	done chan struct{}
}

// eventPrinter returns handle, which takes the events in order, and
// finish, which returns once every event handed over is printed, with the
// first error in printing them. With more than one worker, text and json
// events are decoded and rendered by the workers while the next arrive
// (a busy prefix is thousands of events a second) and printed in order
// through a buffer that is flushed whenever the printer would wait for
// the next event: the output is the same as printing each event as it
// comes, and as soon.
func (o *Options) eventPrinter(ctx context.Context, d *storage.Decoder, workers int) (handle func(source.Event) error, finish func() error) {
	if workers <= 1 || o.Output == printer.OutputKeys {
		renderYAML := (&printer.Printer{Format: printer.OutputYAML}).StoredRenderer(d)
		return func(e source.Event) error { return o.print(d, renderYAML, e) }, func() error { return nil }
	}
	jobs := make(chan *readyEvent, 4*workers)
	// Events in order: one being made ready by each worker, those waiting
	// for a worker, and as many again ready ahead of the printer.
	order := make(chan *readyEvent, 16*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			render := (&printer.Printer{Format: printer.OutputYAML}).OwnedStoredRenderer(d)
			for it := range jobs {
				o.prepare(d, render, it)
				close(it.done)
			}
		}()
	}
	// failed is closed when printing fails: handle then stops the watch.
	failed := make(chan struct{})
	var printErr error
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		w := bufio.NewWriterSize(o.Out, 64<<10)
		// flush writes out what is printed before the printer waits: for
		// an event to arrive or to be made ready.
		flush := func() {
			if printErr == nil {
				if printErr = w.Flush(); printErr != nil {
					close(failed)
				}
			}
		}
		for {
			var it *readyEvent
			var ok bool
			select {
			case it, ok = <-order:
			default:
				flush()
				it, ok = <-order
			}
			if !ok {
				break
			}
			if printErr != nil {
				continue // drain, so handle does not block
			}
			select {
			case <-it.done:
			default:
				flush()
				<-it.done
			}
			if printErr == nil {
				if printErr = o.printReady(w, it); printErr != nil {
					close(failed)
				}
			}
		}
		flush()
	}()
	handle = func(e source.Event) error {
		select {
		case <-failed:
			return errPrinting
		default:
		}
		it := &readyEvent{e: e, done: make(chan struct{})}
		order <- it
		jobs <- it
		return nil
	}
	finish = func() error {
		close(jobs)
		close(order)
		wg.Wait()
		<-printed
		return printErr
	}
	return handle, finish
}

// errPrinting stops the watch when printing failed; finish returns why.
var errPrinting = errors.New("printing failed")

// prepare decodes and renders one event as print would print it.
func (o *Options) prepare(d *storage.Decoder, render func(storage.KV) (*storage.Object, []byte, error), it *readyEvent) {
	e := it.e
	rev := e.KV.ModRevision
	if len(e.KV.Value) == 0 {
		if o.Output == printer.OutputJSON {
			it.out, it.err = jsonEvent(e, nil, nil)
		}
		return
	}
	if o.Output == printer.OutputJSON {
		it.obj, it.decodeErr = d.Decode(e.KV.Key, e.KV.Value, rev)
		it.out, it.err = jsonEvent(e, it.obj, it.decodeErr)
		return
	}
	it.obj, it.out, it.decodeErr = render(storage.KV{Key: e.KV.Key, Value: e.KV.Value, ModRevision: rev})
}

// printReady prints one prepared event to w, its warning to ErrOut.
func (o *Options) printReady(w *bufio.Writer, it *readyEvent) error {
	e := it.e
	if it.decodeErr != nil || it.obj != nil && it.obj.Partial != nil {
		// In its place among the events, as print writes it.
		if err := w.Flush(); err != nil {
			return err
		}
		o.warn(e.KV.Key, it.obj, it.decodeErr)
	}
	if o.Output == printer.OutputJSON {
		if it.err != nil {
			return it.err
		}
		_, err := w.Write(it.out)
		return err
	}
	defer printer.ReleaseRendered(it.out)
	if _, err := fmt.Fprintf(w, "%s %s (revision %d)\n", e.Type, e.KV.Key, e.KV.ModRevision); err != nil {
		return err
	}
	switch {
	case it.out != nil:
		_, err := w.Write(it.out)
		return err
	case it.obj != nil:
		_, err := fmt.Fprintf(w, "%s\n", it.obj.Value)
		return err
	}
	return nil
}

// jsonEvent returns the line of -o json for an event whose value decoded
// to obj, or did not (decodeErr); obj is nil for an event without value.
func jsonEvent(e source.Event, obj *storage.Object, decodeErr error) ([]byte, error) {
	ev := EventJSON{Type: e.Type, Key: e.KV.Key, Revision: e.KV.ModRevision}
	switch {
	case decodeErr != nil:
		ev.Error = decodeErr.Error()
	case obj != nil && obj.Object != nil:
		if line, ok := sortedJSONEvent(ev, obj.Object); ok {
			return line, nil
		}
		m, err := storage.ToMap(obj.Object)
		if err != nil {
			return nil, err
		}
		ev.Object = m
	case obj != nil:
		ev.Value = string(obj.Value)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// sortedJSONEvent returns the line of -o json for ev with obj as its
// object, as json.Marshal writes it with the object's map, without
// building the map (a third of the time of a pod's event). ok is false
// where the map has to be built.
func sortedJSONEvent(ev EventJSON, obj kruntime.Object) (line []byte, ok bool) {
	if _, isMap := obj.(*unstructured.Unstructured); isMap {
		return nil, false
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, false
	}
	// The object is the last member written: the other fields are empty
	// when it is there.
	line, err = json.Marshal(ev)
	if err != nil || len(line) == 0 || line[len(line)-1] != '}' {
		return nil, false
	}
	line = append(line[:len(line)-1], `,"object":`...)
	if line, err = storage.SortedJSON(line, data); err != nil {
		return nil, false
	}
	return append(line, '}', '\n'), true
}

func (o *Options) print(d *storage.Decoder, renderYAML func(storage.KV) (*storage.Object, []byte, error), e source.Event) error {
	rev := e.KV.ModRevision
	switch o.Output {
	case printer.OutputKeys:
		_, err := fmt.Fprintf(o.Out, "%s %s %d\n", e.Type, e.KV.Key, rev)
		return err
	case printer.OutputJSON:
		var obj *storage.Object
		var decodeErr error
		if len(e.KV.Value) > 0 {
			obj, decodeErr = d.Decode(e.KV.Key, e.KV.Value, rev)
			o.warn(e.KV.Key, obj, decodeErr)
		}
		b, err := jsonEvent(e, obj, decodeErr)
		if err != nil {
			return err
		}
		_, err = o.Out.Write(b)
		return err
	}
	var obj *storage.Object
	var doc []byte
	if len(e.KV.Value) > 0 {
		var decodeErr error
		obj, doc, decodeErr = renderYAML(storage.KV{Key: e.KV.Key, Value: e.KV.Value, ModRevision: rev})
		o.warn(e.KV.Key, obj, decodeErr)
	}
	if _, err := fmt.Fprintf(o.Out, "%s %s (revision %d)\n", e.Type, e.KV.Key, rev); err != nil {
		return err
	}
	switch {
	case doc != nil:
		_, err := o.Out.Write(doc)
		return err
	case obj != nil:
		_, err := fmt.Fprintf(o.Out, "%s\n", obj.Value)
		return err
	}
	return nil
}

// warn writes why a value did not decode, or decoded only in part.
func (o *Options) warn(key string, obj *storage.Object, decodeErr error) {
	if decodeErr != nil {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", decodeErr)
	} else if obj != nil && obj.Partial != nil {
		fmt.Fprintf(o.ErrOut, "warning: %s: %v\n", key, obj.Partial)
	}
}
