// Package reference is what -o yaml and -o json printed before the fast
// printers: sigs.k8s.io/yaml, encoding/json of an object's map, and the
// list framing around them. The differential tests of
// pkg/storage/internal/emit and pkg/storage/printer compare against it.
package reference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

// YAML is what -o yaml printed for one object: sigs.k8s.io/yaml.
func YAML(obj any) ([]byte, error) { return yaml.Marshal(obj) }

// JSON is what -o json printed for one object (in a List when prefix is
// not empty): encoding/json of its map.
func JSON(obj runtime.Object, prefix string) ([]byte, error) {
	m, err := storage.ToMap(obj)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(m, prefix, "    ")
}

// Printer is the Printer's list framing before the fast path: one object
// per call, as it wrote them. N counts the objects written before; the
// caller advances it.
type Printer struct {
	Out  bytes.Buffer
	N    int
	List bool
}

// YAMLItem frames one object's YAML b.
func (p *Printer) YAMLItem(b []byte) {
	if !p.List {
		if p.N > 0 {
			p.Out.WriteString("---\n")
		}
		p.Out.Write(b)
		return
	}
	if p.N == 0 {
		p.Out.WriteString("items:\n")
	}
	for i, line := range strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n") {
		if i == 0 {
			p.Out.WriteString("- ")
		} else {
			p.Out.WriteString("  ")
		}
		p.Out.WriteString(line)
	}
	p.Out.WriteString("\n")
}

// JSONItem frames one object's map m as JSON.
func (p *Printer) JSONItem(m map[string]any) {
	if !p.List {
		b, _ := json.MarshalIndent(m, "", "    ")
		fmt.Fprintf(&p.Out, "%s\n", b)
		return
	}
	b, _ := json.MarshalIndent(m, "        ", "    ")
	sep := "\n        "
	if p.N > 0 {
		sep = ",\n        "
	}
	fmt.Fprintf(&p.Out, "%s%s", sep, b)
}

// FirstDifference shows want and got around the first byte they differ in.
func FirstDifference(want, got []byte) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	from := max(0, i-300)
	return fmt.Sprintf("--- reference from byte %d:\n%s\n--- fast:\n%s", from, want[from:min(len(want), i+200)], got[from:min(len(got), i+200)])
}

// Kinds lists the kinds of storage.Scheme a test fills with random values,
// in order: internal versions and Lists left out.
func Kinds() []schema.GroupVersionKind {
	var gvks []schema.GroupVersionKind
	for gvk := range storage.Scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		gvks = append(gvks, gvk)
	}
	sort.Slice(gvks, func(i, j int) bool { return gvks[i].String() < gvks[j].String() })
	return gvks
}

// Filled makes a new object of gvk and fills it with fill (a fuzzer's
// Fill); filled is false when fill panicked on it, as it does on some
// kinds.
func Filled(gvk schema.GroupVersionKind, fill func(any)) (obj runtime.Object, filled bool, err error) {
	obj, err = storage.Scheme.New(gvk)
	if err != nil {
		return nil, false, err
	}
	filled = func() (ok bool) {
		defer func() { ok = recover() == nil }()
		fill(obj)
		return true
	}()
	if filled {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	return obj, filled, nil
}
