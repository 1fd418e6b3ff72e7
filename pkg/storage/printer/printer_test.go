package printer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/internal/reference"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// TestPrinterOutputIsUnchanged prints captured values and pods of the
// benchmark's shape through the Printer, as lists and one by one, and
// compares with the framing and encoders used before.
func TestPrinterOutputIsUnchanged(t *testing.T) {
	var objs []*storage.Object
	var kvs []storage.KV
	for _, name := range []string{"pod.bin", "job.bin"} {
		v, err := os.ReadFile(testdataPath("stored-values", name))
		if err != nil {
			t.Fatal(err)
		}
		kv := storage.KV{Key: "/registry/x/default/" + name, Value: v[:len(v)-1], ModRevision: 7}
		o, err := (&storage.Decoder{}).Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		objs, kvs = append(objs, o), append(kvs, kv)
	}
	cr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": "a"}, "spec": map[string]any{"size": json.Number("3"), "ratio": 0.5, "note": "multi\nline\n"}}}
	objs = append(objs, &storage.Object{Key: "/registry/example.com/widgets/a/w1", Object: cr})
	kvs = append(kvs, storage.KV{Key: "/registry/example.com/widgets/a/w1"})

	for _, format := range []string{OutputYAML, OutputJSON, OutputName} {
		for _, list := range []bool{true, false} {
			var got, errOut bytes.Buffer
			p := &Printer{Out: &got, ErrOut: &errOut, Format: format, List: list, Prefix: storage.DefaultPrefix}
			ref := &reference.Printer{List: list}
			if err := p.Begin(); err != nil {
				t.Fatal(err)
			}
			if list && format == OutputYAML {
				ref.Out.WriteString("apiVersion: v1\n")
			}
			if list && format == OutputJSON {
				ref.Out.WriteString("{\n    \"apiVersion\": \"v1\",\n    \"items\": [")
			}
			for i, o := range objs {
				if err := p.Print(kvs[i], o); err != nil {
					t.Fatal(err)
				}
				switch format {
				case OutputYAML:
					b, err := yaml.Marshal(o.Object)
					if err != nil {
						t.Fatal(err)
					}
					ref.YAMLItem(b)
				case OutputJSON:
					m, err := storage.ToMap(o.Object)
					if err != nil {
						t.Fatal(err)
					}
					ref.JSONItem(m)
				case OutputName:
					m, _ := storage.ToMap(o.Object)
					fmt.Fprintf(&ref.Out, "%s/%s\n", strings.ToLower(o.GVK().Kind)+map[bool]string{true: "", false: "." + o.GVK().Group}[o.GVK().Group == ""],
						m["metadata"].(map[string]any)["name"])
				}
				ref.N++
			}
			if err := p.End(); err != nil {
				t.Fatal(err)
			}
			if list && format == OutputYAML {
				ref.Out.WriteString("kind: List\nmetadata:\n  resourceVersion: \"\"\n")
			}
			if list && format == OutputJSON {
				ref.Out.WriteString("\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")
			}
			if !bytes.Equal(got.Bytes(), ref.Out.Bytes()) {
				t.Errorf("-o %s (list %v) changed:\n%s", format, list, reference.FirstDifference(ref.Out.Bytes(), got.Bytes()))
			}
		}
	}
}

// TestPrintRangeInParallelKeepsOrderAndWarnings lists a few hundred keys
// (whole objects, a plain value, a corrupt value, an unknown kind) with
// several workers and with one, and compares output and warnings.
func TestPrintRangeInParallelKeepsOrderAndWarnings(t *testing.T) {
	pod, err := os.ReadFile(testdataPath("stored-values", "pod.bin"))
	if err != nil {
		t.Fatal(err)
	}
	pod = pod[:len(pod)-1]
	var kvs []storage.KV
	for i := range 300 {
		key := fmt.Sprintf("/registry/pods/default/p%04d", i)
		v := pod
		switch i {
		case 7:
			v = []byte("plain text")
		case 100:
			v = append([]byte(nil), pod[:40]...) // corrupt
		case 201:
			var unk runtime.Unknown
			if err := unk.Unmarshal(pod[4:]); err != nil {
				t.Fatal(err)
			}
			unk.APIVersion, unk.Kind = "future.k8s.io/v1", "Gizmo"
			b, _ := unk.Marshal()
			v = append([]byte("k8s\x00"), b...)
		}
		kvs = append(kvs, storage.KV{Key: key, Value: v, ModRevision: int64(10 + i)})
	}
	src := &source.SnapshotSource{Snapshot: &source.Snapshot{Revision: 400, KVs: kvs}}
	run := func(format string, workers int) (string, string) {
		var out, errOut bytes.Buffer
		p := &Printer{Out: &out, ErrOut: &errOut, Format: format, List: true, Prefix: storage.DefaultPrefix}
		if err := p.Begin(); err != nil {
			t.Fatal(err)
		}
		err := p.PrintRange(context.Background(), ListOptions{
			Source: src, Start: "/registry/pods/", End: storage.PrefixEnd("/registry/pods/"), Decoder: &storage.Decoder{}, Workers: workers,
			Check: func(kv storage.KV, o *storage.Object, decodeErr error) (bool, error) {
				if decodeErr != nil {
					fmt.Fprintf(&errOut, "warning: %v\n", decodeErr)
					return false, nil
				}
				if o.Partial != nil {
					fmt.Fprintf(&errOut, "warning: %s: %v\n", kv.Key, o.Partial)
				}
				return true, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.End(); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	for _, format := range []string{OutputYAML, OutputJSON, OutputName} {
		seqOut, seqErr := run(format, 1)
		parOut, parErr := run(format, 4)
		// One worker still goes through the pipeline; print key by key too.
		var ref bytes.Buffer
		p := &Printer{Out: &ref, ErrOut: io.Discard, Format: format, List: true, Prefix: storage.DefaultPrefix}
		p.Begin()
		for _, kv := range kvs {
			o, err := (&storage.Decoder{}).Decode(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				continue
			}
			if err := p.Print(kv, o); err != nil {
				t.Fatal(err)
			}
		}
		p.End()
		if parOut != seqOut || parOut != ref.String() || parErr != seqErr {
			t.Errorf("-o %s: parallel listing differs:\n%s", format, reference.FirstDifference([]byte(ref.String()), []byte(parOut)))
		}
		if !strings.Contains(parErr, "p0100: not a Kubernetes protobuf envelope") || !strings.Contains(parErr, "p0201: kind Gizmo") ||
			format != OutputName && !strings.Contains(parErr, "p0007 holds a plain value") {
			t.Errorf("-o %s: warnings:\n%s", format, parErr)
		}
		if strings.Index(parErr, "p0007") > strings.Index(parErr, "p0100") || strings.Index(parErr, "p0100") > strings.Index(parErr, "p0201") {
			t.Errorf("-o %s: warnings out of order:\n%s", format, parErr)
		}
	}
}

func TestPrinterFormats(t *testing.T) {
	value := encodeT(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n")
	kvs := []storage.KV{
		{Key: "/registry/deployments/prod/web", Value: value, ModRevision: 5},
		{Key: "/registry/deployments/prod/web2", Value: value, ModRevision: 6},
	}
	var d storage.Decoder
	print := func(format string, list bool) (string, string) {
		var out, errOut bytes.Buffer
		p := &Printer{Out: &out, ErrOut: &errOut, Format: format, List: list, Prefix: "/registry"}
		if err := p.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			o, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Print(kv, o); err != nil {
				return out.String(), err.Error()
			}
		}
		if err := p.End(); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	out, _ := print(OutputTable, true)
	if want := "RESOURCE      NAMESPACE   NAME   SIZE   MODREV\ndeployments   prod        web    "; !strings.HasPrefix(out, want) {
		t.Errorf("table:\n%s", out)
	}
	out, _ = print(OutputName, true)
	if out != "deployment.apps/web\ndeployment.apps/web\n" {
		t.Errorf("name: %q", out)
	}
	out, _ = print(OutputKeys, true)
	if out != "/registry/deployments/prod/web\n/registry/deployments/prod/web2\n" {
		t.Errorf("keys: %q", out)
	}
	if out, _ := print(OutputRaw, true); out != fmt.Sprintf("30 %d\n/registry/deployments/prod/web%s\n31 %d\n/registry/deployments/prod/web2%s\n", len(kvs[0].Value), kvs[0].Value, len(kvs[1].Value), kvs[1].Value) {
		t.Errorf("raw of two keys, framed: %q", out)
	}
	for _, f := range []string{OutputYAML, OutputJSON} {
		out, _ = print(f, true)
		var l struct {
			Kind  string           `json:"kind"`
			Items []map[string]any `json:"items"`
		}
		if err := yamlUnmarshal(out, &l); err != nil || l.Kind != "List" || len(l.Items) != 2 || l.Items[1]["metadata"].(map[string]any)["resourceVersion"] != "6" {
			t.Errorf("%s list (%v):\n%s", f, err, out)
		}
	}
	kvs = nil
	out, _ = print(OutputYAML, true)
	if out != "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n" {
		t.Errorf("empty yaml list: %q", out)
	}
	out, _ = print(OutputJSON, true)
	var l struct{ Items []any }
	if err := yamlUnmarshal(out, &l); err != nil || l.Items == nil {
		t.Errorf("empty json list (%v): %q", err, out)
	}
}

func encodeT(t *testing.T, doc string) []byte {
	t.Helper()
	v, _, err := storage.Encode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func yamlUnmarshal(s string, v any) error { return yaml.Unmarshal([]byte(s), v) }

// testdataPath names a file under the repository's testdata/, the values
// real clusters stored (testdata/README.md says where each came from).
func testdataPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "..", "testdata"}, parts...)...)
}
