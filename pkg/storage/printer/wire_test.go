package printer

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/internal/emit"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/internal/reference"
)

// The wire printer (wireplan.go, wiretree.go) must print what the typed
// path prints: sigs.k8s.io/yaml of the decoded object for YAML,
// encoding/json of its map for JSON, and the same names. These tests
// store objects of every kind of the scheme, filled with random values,
// as protobuf and compare.

// compareWire prints one stored value both ways; it reports whether the
// wire printer took it.
func compareWire(t *testing.T, what string, kv storage.KV) bool {
	t.Helper()
	d := &storage.Decoder{}
	o, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
	if err != nil {
		return false
	}
	took := false
	// One renderer prints the value in every format and place three
	// times: its tree keeps large values met a second time (emit's memo),
	// and the third time prints them from there; every time must give the
	// same bytes.
	r := &renderer{}
	tookYAML := false
	for _, format := range []string{OutputYAML, OutputJSON, OutputName} {
		for _, list := range []bool{false, true} {
			p := &Printer{Format: format, List: list, Prefix: storage.DefaultPrefix}
			_, first, ok := p.renderWire(r, d, kv)
			if format != OutputName {
				tree, treeOK := renderTree(p, kv)
				if ok != treeOK {
					t.Fatalf("%s: -o %s (list %v): printed from the wire %v, through the tree %v", what, format, list, ok, treeOK)
				}
				if ok && !bytes.Equal(tree, first) {
					t.Fatalf("%s: -o %s (list %v) differs from the tree's\n%s", what, format, list, reference.FirstDifference(tree, first))
				}
			}
			if !ok {
				// JSON is written from the wire by its own walk
				// (emit's wirejson.go); it takes whatever the YAML
				// tree takes, YAML refusing more.
				if format == OutputJSON && tookYAML {
					t.Fatalf("%s: -o json (list %v) left to the typed path, -o yaml printed from the wire", what, list)
				}
				continue
			}
			if format == OutputYAML {
				tookYAML = true
			}
			first = bytes.Clone(first)
			var wobj *storage.Object
			var got []byte
			for range 2 {
				wobj, got, ok = p.renderWire(r, d, kv)
				if !ok {
					t.Fatalf("%s: -o %s (list %v): printed from the wire once, then not", what, format, list)
				}
				if !bytes.Equal(first, got) {
					t.Fatalf("%s: -o %s (list %v) printed again differs\n%s", what, format, list, reference.FirstDifference(first, got))
				}
			}
			took = true
			var want []byte
			switch format {
			case OutputYAML:
				b, err := reference.YAML(o.Object)
				if err != nil {
					t.Fatalf("%s: the wire printer printed what sigs.k8s.io/yaml refuses (%v):\n%s", what, err, got)
				}
				if list {
					ref := &reference.Printer{List: true, N: 1}
					ref.YAMLItem(b)
					b = ref.Out.Bytes()
				}
				want = b
			case OutputJSON:
				prefix := ""
				if list {
					prefix = "        "
				}
				b, err := reference.JSON(o.Object, prefix)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if !list {
					b = append(b, '\n')
				}
				want = b
			case OutputName:
				want = p.renderName(kv, o)
			}
			if !bytes.Equal(want, got) && format == OutputYAML && yamlOrderVaries(o.Object, got, list) {
				continue
			}
			if !bytes.Equal(want, got) {
				t.Fatalf("%s: -o %s (list %v) differs from the typed path\n%s", what, format, list, reference.FirstDifference(want, got))
			}
			if wobj.GVK() != o.GVK() || wobj.Format != o.Format || !bytes.Equal(wobj.Value, o.Value) {
				t.Fatalf("%s: object %v %s, want %v %s", what, wobj.GVK(), wobj.Format, o.GVK(), o.Format)
			}
		}
	}
	return took
}

// renderTree renders a stored value as the listing's workers did before
// they wrote YAML and JSON straight from the wire (emit's wireyaml.go,
// wirejson.go): through a tree (emit.Wire.Build) and its printers, which
// the emit tests compare with sigs.k8s.io/yaml and encoding/json. The two
// must give the same bytes and leave the same values to the typed path.
func renderTree(p *Printer, kv storage.KV) ([]byte, bool) {
	if !bytes.HasPrefix(kv.Value, storage.ProtobufPrefix) {
		return nil, false
	}
	typeMeta, raw, ok := parseEnvelope(kv.Value[len(storage.ProtobufPrefix):])
	if !ok {
		return nil, false
	}
	k := newWireKindEntry(typeMeta)
	if k.plan == nil {
		return nil, false
	}
	var w emit.Wire
	var tree emit.Tree
	if err := w.Build(&tree, k.plan, raw, k.apiVersion, k.kind, kv.ModRevision, p.Format == OutputYAML); err != nil {
		return nil, false
	}
	if p.Format == OutputYAML {
		return emit.AppendYAMLTree(nil, &tree, p.List), true
	}
	if p.List {
		return emit.AppendIndentedJSON(nil, &tree, "        "), true
	}
	return append(emit.AppendIndentedJSON(nil, &tree, ""), '\n'), true
}

// yamlOrderVaries reports whether sigs.k8s.io/yaml prints obj as got in
// some of a number of runs. go-yaml's key order is not transitive for some
// mixes of digits and letters ("a1b" < "a2" < "a100b10" < "a1b"); there
// its output follows Go's random map order.
func yamlOrderVaries(obj runtime.Object, got []byte, list bool) bool {
	for range 200 {
		b, err := reference.YAML(obj)
		if err != nil {
			return false
		}
		if list {
			ref := &reference.Printer{List: true, N: 1}
			ref.YAMLItem(b)
			b = ref.Out.Bytes()
		}
		if bytes.Equal(b, got) {
			return true
		}
	}
	return false
}

// TestWirePrinterMatchesOnEveryKind stores each kind of the scheme filled
// with random values as protobuf and compares the two printers.
func TestWirePrinterMatchesOnEveryKind(t *testing.T) {
	codecs := serializer.NewCodecFactory(storage.Scheme)
	gvks := reference.Kinds()
	rounds := 4
	if testing.Short() {
		rounds = 1
	}
	wire, typed := 0, 0
	kinds := map[string]bool{}
	for seed := range rounds {
		filler := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(int64(seed)), codecs).NilChance(0.2).NumElements(0, 3).MaxDepth(10)
		for _, gvk := range gvks {
			obj, filled, err := reference.Filled(gvk, filler.Fill)
			if err != nil {
				t.Fatal(err)
			}
			if !filled {
				continue
			}
			value, _, err := storage.EncodeObject(obj)
			if err != nil {
				continue
			}
			kv := storage.KV{Key: "/registry/things/ns/name-" + fmt.Sprint(seed), Value: value, ModRevision: int64(1000 + seed)}
			if seed == 1 {
				kv.ModRevision = 0
			}
			if compareWire(t, fmt.Sprintf("%s (seed %d)", gvk, seed), kv) {
				wire++
			} else {
				typed++
				kinds[gvk.Kind] = true
			}
		}
	}
	var left []string
	for k := range kinds {
		left = append(left, k)
	}
	sort.Strings(left)
	t.Logf("%d kinds; %d values printed from the wire, %d left to the typed path (%s)", len(gvks), wire, typed, strings.Join(left, " "))
	if wire < typed*4 {
		t.Errorf("the wire printer took only %d of %d values", wire, wire+typed)
	}
}

// FuzzWirePrinter mutates stored values (a pod, a job) and checks that
// whatever the wire printer prints, the typed path prints the same, and
// that it prints nothing the typed decoder refuses. Run it with a short
// -fuzzminimizetime (make fuzz does): its seeds are KiB-sized objects.
func FuzzWirePrinter(f *testing.F) {
	for _, name := range []string{"pod.bin", "job.bin"} {
		v, err := os.ReadFile(testdataPath("stored-values", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v[:len(v)-1])
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		kv := storage.KV{Key: "/registry/pods/default/fuzz", Value: value, ModRevision: 5}
		if _, err := (&storage.Decoder{}).Decode(kv.Key, kv.Value, kv.ModRevision); err != nil {
			for _, format := range []string{OutputYAML, OutputJSON, OutputName} {
				if _, out, ok := (&Printer{Format: format, List: true}).renderWire(&renderer{}, &storage.Decoder{}, kv); ok {
					t.Fatalf("-o %s printed a value the decoder refuses (%v):\n%s", format, err, out)
				}
			}
			return
		}
		compareWire(t, "fuzzed value", kv)
	})
}
