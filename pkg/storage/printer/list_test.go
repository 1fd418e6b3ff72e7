package printer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/internal/reference"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// listPods lists kvs with PrintRange on two workers; check may stop it.
func listPods(t *testing.T, kvs []storage.KV, format string, check func(storage.KV) error) ([]byte, error) {
	t.Helper()
	src := &source.SnapshotSource{Snapshot: &source.Snapshot{Revision: 100000, KVs: kvs}}
	var out bytes.Buffer
	p := &printer.Printer{Out: &out, ErrOut: io.Discard, Format: format, List: true, Prefix: storage.DefaultPrefix}
	if err := p.Begin(); err != nil {
		t.Fatal(err)
	}
	err := p.PrintRange(context.Background(), printer.ListOptions{
		Source: src, Start: "/registry/pods/", End: storage.PrefixEnd("/registry/pods/"), Decoder: &storage.Decoder{}, Workers: 2,
		Check: func(kv storage.KV, _ *storage.Object, decodeErr error) (bool, error) {
			if decodeErr != nil {
				t.Fatalf("%s: %v", kv.Key, decodeErr)
			}
			if check != nil {
				return true, check(kv)
			}
			return true, nil
		},
	})
	if err == nil {
		err = p.End()
	}
	return out.Bytes(), err
}

// referenceList prints kvs as one kubectl List the way the typed path
// did: sigs.k8s.io/yaml or encoding/json of each decoded object, framed.
func referenceList(t *testing.T, kvs []storage.KV, format string, end bool) []byte {
	t.Helper()
	ref := &reference.Printer{List: true}
	if format == printer.OutputYAML {
		ref.Out.WriteString("apiVersion: v1\n")
	} else {
		ref.Out.WriteString("{\n    \"apiVersion\": \"v1\",\n    \"items\": [")
	}
	for _, kv := range kvs {
		o, err := (&storage.Decoder{}).Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		if format == printer.OutputYAML {
			b, err := reference.YAML(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			ref.YAMLItem(b)
		} else {
			m, err := storage.ToMap(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			ref.JSONItem(m)
		}
		ref.N++
	}
	if end && format == printer.OutputYAML {
		ref.Out.WriteString("kind: List\nmetadata:\n  resourceVersion: \"\"\n")
	}
	if end && format == printer.OutputJSON {
		ref.Out.WriteString("\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")
	}
	return ref.Out.Bytes()
}

// TestListingOfPodsOfOneDeploymentIsUnchanged lists the benchmark's pods,
// whose managed fields recur from pod to pod as those of one Deployment
// do (the printers reuse what they printed for them), and compares with
// sigs.k8s.io/yaml and encoding/json of each decoded pod in a List.
func TestListingOfPodsOfOneDeploymentIsUnchanged(t *testing.T) {
	kvs := sortedBenchPods(t, 150)
	for _, format := range []string{printer.OutputYAML, printer.OutputJSON} {
		got, err := listPods(t, kvs, format, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceList(t, kvs, format, true); !bytes.Equal(want, got) {
			t.Errorf("-o %s: the listing differs from the typed path:\n%s", format, reference.FirstDifference(want, got))
		}
	}
}

// TestListingStoppedInTheMiddlePrintsTheKeysBefore stops a listing at a
// key in the middle (as get stops on an error it cannot skip): the error
// comes back and the output holds exactly the keys before it, in order,
// whole.
func TestListingStoppedInTheMiddlePrintsTheKeysBefore(t *testing.T) {
	kvs := sortedBenchPods(t, 300)
	stop := errors.New("stopped")
	for _, format := range []string{printer.OutputYAML, printer.OutputJSON, printer.OutputName} {
		for _, at := range []int{0, 1, 63, 64, 65, 201} {
			got, err := listPods(t, kvs, format, func(kv storage.KV) error {
				if kv.Key == kvs[at].Key {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) {
				t.Fatalf("-o %s, stopped at %d: error %v, want %v", format, at, err, stop)
			}
			var want []byte
			if format == printer.OutputName {
				var b strings.Builder
				for _, kv := range kvs[:at] {
					fmt.Fprintf(&b, "pod/%s\n", kv.Key[strings.LastIndexByte(kv.Key, '/')+1:])
				}
				want = []byte(b.String())
			} else {
				want = referenceList(t, kvs[:at], format, false)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("-o %s, stopped at %d: output differs:\n%s", format, at, reference.FirstDifference(want, got))
			}
		}
	}
}

// sortedBenchPods are n of the benchmark's pods in key order.
func sortedBenchPods(t *testing.T, n int) []storage.KV {
	kvs := benchPods(t, n)
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	return kvs
}
