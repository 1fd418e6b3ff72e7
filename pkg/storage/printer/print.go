// Package printer writes keys and decoded objects as they stream from a
// source: yaml and json (one kubectl List, or the objects alone), name,
// keys, raw, table and text. A listing decodes and renders in parallel and
// prints in key order; yaml and json go through the fast emitters where
// they print exactly what sigs.k8s.io/yaml and encoding/json would.
package printer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/internal/emit"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// Output formats of Printer.
const (
	OutputYAML  = "yaml"
	OutputJSON  = "json"
	OutputName  = "name"
	OutputKeys  = "keys"
	OutputRaw   = "raw"
	OutputTable = "table"
	// OutputText is etcdctl's: the key on one line, the value on the next
	// (decoded objects as YAML).
	OutputText = "text"
)

// RawFraming says how -o raw separates the values of a listing, for help
// texts: a single key's value is written as stored, nothing added.
const RawFraming = `-o raw writes a single key's value exactly as stored, nothing added. A
listing (--prefix, or a RESOURCE without NAME) frames each key, so values
holding any bytes stay apart: a header line "<key length> <value length>"
(decimal byte counts), the key, the value, then a newline. The frame
depends on the query, not on how many keys matched, so a script reads the
same shape for one key as for many.`

// OutputFormats are every format Printer accepts.
var OutputFormats = []string{OutputYAML, OutputJSON, OutputName, OutputKeys, OutputRaw, OutputTable, OutputText}

// NeedsValue reports whether format prints values, not only keys.
func NeedsValue(format string) bool {
	return format != OutputKeys && format != OutputTable
}

// NeedsDecode reports whether format prints decoded objects.
func NeedsDecode(format string) bool {
	return format != OutputKeys && format != OutputTable && format != OutputRaw
}

// Printer writes keys and decoded objects as they stream in. With List,
// yaml and json print one kubectl List; without, the single object.
type Printer struct {
	Out, ErrOut io.Writer
	Format      string
	List        bool
	NoHeaders   bool
	// Prefix is the storage prefix, for the table's resource column.
	Prefix string

	n     int
	table *tabwriterRows
}

type tabwriterRows struct {
	w    io.Writer
	rows int
}

// Begin writes what comes before the first item.
func (p *Printer) Begin() error {
	switch p.Format {
	case OutputTable:
		p.table = &tabwriterRows{w: printers.GetNewTabWriter(p.Out)}
	case OutputYAML:
		if p.List {
			_, err := io.WriteString(p.Out, "apiVersion: v1\n")
			return err
		}
	case OutputJSON:
		if p.List {
			_, err := io.WriteString(p.Out, "{\n    \"apiVersion\": \"v1\",\n    \"items\": [")
			return err
		}
	}
	return nil
}

// Print writes one key. o is its decoded value, nil for formats that do
// not decode or when decoding failed (then the key is skipped in yaml and
// json).
func (p *Printer) Print(kv storage.KV, o *storage.Object) error {
	defer func() { p.n++ }()
	switch p.Format {
	case OutputKeys:
		_, err := fmt.Fprintln(p.Out, kv.Key)
		return err
	case OutputRaw:
		if !p.List {
			_, err := p.Out.Write(kv.Value)
			return err
		}
		// Values are bytes with any content: a frame keeps them apart
		// (RawFraming).
		_, err := fmt.Fprintf(p.Out, "%d %d\n%s%s\n", len(kv.Key), len(kv.Value), kv.Key, kv.Value)
		return err
	case OutputTable:
		if p.n == 0 && !p.NoHeaders {
			// The header comes with the first row: an empty list prints
			// nothing, as kubectl does.
			fmt.Fprintln(p.table.w, "RESOURCE\tNAMESPACE\tNAME\tSIZE\tMODREV")
		}
		resource, ns, name := "<none>", "", kv.Key
		if k, ok := storage.ParseKey(p.Prefix, kv.Key); ok {
			resource, ns, name = k.Resource(), k.Namespace, k.Name
		}
		_, err := fmt.Fprintf(p.table.w, "%s\t%s\t%s\t%d\t%d\n", resource, ns, name, len(kv.Value), kv.ModRevision)
		if p.table.rows++; p.table.rows%1000 == 0 {
			// Keep memory flat on long listings; columns may shift per block.
			if f, ok := p.table.w.(interface{ Flush() error }); ok {
				f.Flush()
			}
		}
		return err
	case OutputName:
		b, err := p.render(nil, kv, o)
		if err != nil {
			return err
		}
		_, err = p.Out.Write(b)
		putRenderBuffer(b)
		return err
	case OutputText:
		if _, err := fmt.Fprintln(p.Out, kv.Key); err != nil {
			return err
		}
		if o != nil && o.Object != nil {
			m, err := storage.ToMap(o.Object)
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(m)
			if err != nil {
				return err
			}
			_, err = p.Out.Write(b)
			return err
		}
		v := kv.Value
		if o != nil {
			v = o.Value
		}
		_, err := fmt.Fprintf(p.Out, "%s\n", v)
		return err
	case OutputYAML, OutputJSON:
		if o == nil || o.Object == nil {
			p.skip(kv, o)
			p.n--
			return nil
		}
		b, err := p.render(nil, kv, o)
		if err != nil {
			return err
		}
		err = p.printRendered(b)
		putRenderBuffer(b)
		return err
	}
	return fmt.Errorf("unknown output format %q", p.Format)
}

// skip warns about a key that yaml and json do not print.
func (p *Printer) skip(kv storage.KV, o *storage.Object) {
	if o != nil {
		fmt.Fprintf(p.ErrOut, "warning: %s holds a plain value, not a Kubernetes object: shown with -o text or -o raw\n", kv.Key)
	}
}

// printRendered writes one item rendered by render, with what goes
// between items.
func (p *Printer) printRendered(b []byte) error {
	var sep string
	switch {
	case p.Format == OutputYAML && p.List && p.n == 0:
		sep = "items:\n"
	case p.Format == OutputYAML && !p.List && p.n > 0:
		sep = "---\n"
	case p.Format == OutputJSON && p.List && p.n == 0:
		sep = "\n        "
	case p.Format == OutputJSON && p.List:
		sep = ",\n        "
	}
	if sep != "" {
		if _, err := io.WriteString(p.Out, sep); err != nil {
			return err
		}
	}
	_, err := p.Out.Write(b)
	return err
}

// renderer holds one goroutine's scratch buffers for render.
type renderer struct {
	tree  emit.Tree
	json  bytes.Buffer
	wire  emit.Wire
	kinds map[string]wireKindEntry
}

// marshal is json.Marshal into a reused buffer.
func (r *renderer) marshal(v any) ([]byte, error) {
	r.json.Reset()
	if err := json.NewEncoder(&r.json).Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(r.json.Bytes(), []byte("\n")), nil
}

// renderBuffers recycles rendered items: a listing renders one per key.
var renderBuffers = sync.Pool{New: func() any { return new([]byte) }}

func getRenderBuffer() []byte { return (*renderBuffers.Get().(*[]byte))[:0] }

// putRenderBuffer returns a buffer render gave once it is written out.
func putRenderBuffer(b []byte) {
	if cap(b) > 0 && cap(b) <= 1<<20 {
		renderBuffers.Put(&b)
	}
}

// render returns the text of one decoded object in the yaml, json or name
// format, independent of its place in the listing, so several goroutines
// can render while one prints. The result comes from getRenderBuffer. r
// may be nil.
func (p *Printer) render(r *renderer, kv storage.KV, o *storage.Object) ([]byte, error) {
	if r == nil {
		r = &renderer{}
	}
	switch p.Format {
	case OutputName:
		return append(getRenderBuffer(), p.renderName(kv, o)...), nil
	case OutputYAML:
		b, err := r.renderYAML(getRenderBuffer(), o.Object, p.List)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		return b, nil
	case OutputJSON:
		prefix, suffix := "", "\n"
		if p.List {
			prefix, suffix = "        ", ""
		}
		if b, ok := r.renderJSON(getRenderBuffer(), o.Object, prefix); ok {
			return append(b, suffix...), nil
		}
		m, err := storage.ToMap(o.Object)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		b, err := json.MarshalIndent(m, prefix, "    ")
		if err != nil {
			return nil, err
		}
		return append(b, suffix...), nil
	}
	return nil, fmt.Errorf("unknown output format %q", p.Format)
}

// renderYAML appends sigs.k8s.io/yaml.Marshal(obj) to dst, through the
// fast printer where it can; with listItem as an item of a List: "- "
// before the first line, "  " before the others.
func (r *renderer) renderYAML(dst []byte, obj any, listItem bool) ([]byte, error) {
	if data, err := r.marshal(obj); err == nil {
		if b, err := emit.AppendYAMLItem(dst, &r.tree, data, listItem); err == nil {
			return b, nil
		}
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	if !listItem {
		return append(dst, b...), nil
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	dst = append(dst, '-', ' ')
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			dst = append(dst, b...)
			break
		}
		dst = append(dst, b[:i+1]...)
		dst = append(dst, ' ', ' ')
		b = b[i+1:]
	}
	return append(dst, '\n'), nil
}

// renderJSON appends json.MarshalIndent(storage.ToMap(obj), prefix, "    ") to dst
// through the fast printer; ok is false where the general path must do it.
func (r *renderer) renderJSON(dst []byte, obj runtime.Object, prefix string) ([]byte, bool) {
	var v any = obj
	if u, ok := obj.(*unstructured.Unstructured); ok {
		v = u.Object
	}
	data, err := r.marshal(v)
	if err != nil || r.tree.Parse(data) != nil {
		return nil, false
	}
	return emit.AppendIndentedJSON(dst, &r.tree, prefix), true
}

// renderName is kind[.group]/name, the name from the object's metadata or,
// without one, from the key.
func (p *Printer) renderName(kv storage.KV, o *storage.Object) []byte {
	if o == nil || o.Object == nil {
		return []byte(kv.Key + "\n")
	}
	gvk := o.GVK()
	name := ""
	_, isUnstructured := o.Object.(*unstructured.Unstructured)
	if m, ok := o.Object.(metav1.Object); ok && !isUnstructured {
		if s := m.GetName(); s != "" {
			name = s
		}
	} else if m, err := storage.ToMap(o.Object); err == nil {
		if md, ok := m["metadata"].(map[string]any); ok {
			if s, ok := md["name"].(string); ok && s != "" {
				name = s
			}
		}
	}
	return p.appendName(nil, kv, gvk, []byte(name))
}

// appendName appends kind[.group]/name and a newline; the name from the
// key where the object's is empty.
func (p *Printer) appendName(dst []byte, kv storage.KV, gvk schema.GroupVersionKind, name []byte) []byte {
	for i := 0; i < len(gvk.Kind); i++ {
		c := gvk.Kind[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if c >= utf8.RuneSelf {
			dst = append(dst, strings.ToLower(gvk.Kind[i:])...)
			break
		}
		dst = append(dst, c)
	}
	if gvk.Group != "" {
		dst = append(append(dst, '.'), gvk.Group...)
	}
	dst = append(dst, '/')
	if len(name) > 0 {
		dst = append(dst, name...)
	} else if k, ok := storage.ParseKey(p.Prefix, kv.Key); ok {
		dst = append(dst, k.Name...)
	}
	return append(dst, '\n')
}

// End writes what comes after the last item.
func (p *Printer) End() error {
	switch p.Format {
	case OutputTable:
		if f, ok := p.table.w.(interface{ Flush() error }); ok {
			return f.Flush()
		}
	case OutputYAML:
		if p.List {
			if p.n == 0 {
				io.WriteString(p.Out, "items: []\n")
			}
			_, err := io.WriteString(p.Out, "kind: List\nmetadata:\n  resourceVersion: \"\"\n")
			return err
		}
	case OutputJSON:
		if p.List {
			end := "\n    ],\n"
			if p.n == 0 {
				end = "],\n"
			}
			_, err := io.WriteString(p.Out, end+"    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")
			return err
		}
	}
	return nil
}

// Count is how many keys were printed.
func (p *Printer) Count() int { return p.n }
