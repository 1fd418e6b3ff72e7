package printer_test

import (
	"context"
	"fmt"
	"io"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/benchdata"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// benchPods are the stored values of n of the benchmark's pods.
func benchPods(b testing.TB, n int) []storage.KV {
	var kvs []storage.KV
	for i := range n {
		v, err := benchdata.PodValue(i)
		if err != nil {
			b.Fatal(err)
		}
		kvs = append(kvs, storage.KV{Key: benchdata.PodKey(storage.DefaultPrefix, i), Value: v, ModRevision: int64(100 + i)})
	}
	return kvs
}

// benchmarkPrint is the per-pod cost of get --prefix -o FORMAT on one
// core: decode and print in a List.
func benchmarkPrint(b *testing.B, format string) {
	kvs := benchPods(b, 64)
	var d storage.Decoder
	p := &printer.Printer{Out: io.Discard, ErrOut: io.Discard, Format: format, List: true, Prefix: storage.DefaultPrefix}
	var bytes int64
	for _, kv := range kvs {
		bytes += int64(len(kv.Value))
	}
	b.SetBytes(bytes / int64(len(kvs)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		kv := kvs[i%len(kvs)]
		i++
		o, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Print(kv, o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrintPodYAML(b *testing.B) { benchmarkPrint(b, printer.OutputYAML) }
func BenchmarkPrintPodJSON(b *testing.B) { benchmarkPrint(b, printer.OutputJSON) }
func BenchmarkPrintPodName(b *testing.B) { benchmarkPrint(b, printer.OutputName) }

// BenchmarkDecodePodOnly is the protobuf decoding alone.
func BenchmarkDecodePodOnly(b *testing.B) {
	kvs := benchPods(b, 64)
	var d storage.Decoder
	i := 0
	for b.Loop() {
		kv := kvs[i%len(kvs)]
		i++
		if _, err := d.Decode(kv.Key, kv.Value, kv.ModRevision); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrintPodYAMLGeneral is the general path the fast printer
// replaces (sigs.k8s.io/yaml), for comparison.
func BenchmarkPrintPodYAMLGeneral(b *testing.B) {
	kvs := benchPods(b, 64)
	var d storage.Decoder
	i := 0
	for b.Loop() {
		kv := kvs[i%len(kvs)]
		i++
		o, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := yaml.Marshal(o.Object); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrintRangeYAML is one listing of 1,000 pods from memory
// through the parallel printer, as get --prefix -o yaml runs it.
func BenchmarkPrintRangeYAML(b *testing.B) { benchmarkPrintRange(b, printer.OutputYAML) }
func BenchmarkPrintRangeJSON(b *testing.B) { benchmarkPrintRange(b, printer.OutputJSON) }

func benchmarkPrintRange(b *testing.B, format string) {
	kvs := benchPods(b, 1000)
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	src := &source.SnapshotSource{Snapshot: &source.Snapshot{Revision: 2000, KVs: kvs}}
	b.ReportAllocs()
	for b.Loop() {
		p := &printer.Printer{Out: io.Discard, ErrOut: io.Discard, Format: format, List: true, Prefix: storage.DefaultPrefix}
		p.Begin()
		err := p.PrintRange(context.Background(), printer.ListOptions{Source: src, Start: "/registry/pods/", End: "/registry/pods0", Decoder: &storage.Decoder{},
			Check: func(storage.KV, *storage.Object, error) (bool, error) { return true, nil }})
		if err != nil {
			b.Fatal(err)
		}
		p.End()
	}
}

// benchmarkRenderStored is the per-pod cost of a listing's worker: the
// stored value to its text (from the wire where it can), on one core.
func benchmarkRenderStored(b *testing.B, format string) {
	kvs := benchPods(b, 64)
	p := &printer.Printer{Format: format, List: true, Prefix: storage.DefaultPrefix}
	var bytes int64
	for _, kv := range kvs {
		bytes += int64(len(kv.Value))
	}
	b.SetBytes(bytes / int64(len(kvs)))
	renderEach(b, p, kvs)
}

// renderEach renders the stored values of kvs in turn, one per iteration.
func renderEach(b *testing.B, p *printer.Printer, kvs []storage.KV) {
	b.ReportAllocs()
	render := p.StoredRenderer(&storage.Decoder{})
	i := 0
	for b.Loop() {
		kv := kvs[i%len(kvs)]
		i++
		if _, out, err := render(kv); err != nil || out == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderStoredYAML(b *testing.B) { benchmarkRenderStored(b, printer.OutputYAML) }
func BenchmarkRenderStoredJSON(b *testing.B) { benchmarkRenderStored(b, printer.OutputJSON) }
func BenchmarkRenderStoredName(b *testing.B) { benchmarkRenderStored(b, printer.OutputName) }

// distinctManagedFieldsPods are n of the benchmark's pods whose managed
// fields differ from pod to pod (each names its pod's IP, as a kubelet's
// entry does): the printers' cache of recurring values never hits.
func distinctManagedFieldsPods(b testing.TB, n int) []storage.KV {
	var kvs []storage.KV
	for i := range n {
		p := benchdata.Pod(i)
		for j := range p.ManagedFields {
			f := p.ManagedFields[j].FieldsV1
			f.Raw = append([]byte(fmt.Sprintf(`{"f:ip-%d":{},`, i)), f.Raw[1:]...)
		}
		v, _, err := storage.EncodeObject(p)
		if err != nil {
			b.Fatal(err)
		}
		kvs = append(kvs, storage.KV{Key: benchdata.PodKey(storage.DefaultPrefix, i), Value: v, ModRevision: int64(100 + i)})
	}
	return kvs
}

// benchmarkRenderDistinct is benchmarkRenderStored where no two pods'
// managed fields are the same: more pods than the printers remember
// values met once (emit's memoMaxSeen), so each comes as new.
func benchmarkRenderDistinct(b *testing.B, format string) {
	kvs := distinctManagedFieldsPods(b, 8192)
	renderEach(b, &printer.Printer{Format: format, List: true, Prefix: storage.DefaultPrefix}, kvs)
}

func BenchmarkRenderDistinctYAML(b *testing.B) { benchmarkRenderDistinct(b, printer.OutputYAML) }
func BenchmarkRenderDistinctJSON(b *testing.B) { benchmarkRenderDistinct(b, printer.OutputJSON) }

// benchmarkRenderListing is benchmarkRenderStored over 8,192 of the
// benchmark's pods in key order, as a listing meets them: what recurs is
// what recurs between the pods of one ReplicaSet (seven in a row), not
// the same few pods over and over as in benchmarkRenderStored, whose 64
// pods the printers' caches end up holding whole.
func benchmarkRenderListing(b *testing.B, format string) {
	kvs := benchPods(b, 8192)
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	renderEach(b, &printer.Printer{Format: format, List: true, Prefix: storage.DefaultPrefix}, kvs)
}

func BenchmarkRenderListingYAML(b *testing.B) { benchmarkRenderListing(b, printer.OutputYAML) }
func BenchmarkRenderListingJSON(b *testing.B) { benchmarkRenderListing(b, printer.OutputJSON) }

// replicaSetPods are n of the benchmark's pods as one pod template makes
// them: the labels, annotations and containers of every pod of a
// ReplicaSet (seven in a row) are those of its first pod, but for the
// service-account token's volume, whose name each pod gets for itself.
// The benchmark's own pods draw these anew for each pod, which real
// pods of one ReplicaSet do not.
func replicaSetPods(b testing.TB, n int) []storage.KV {
	var kvs []storage.KV
	for i := range n {
		p, first := benchdata.Pod(i), benchdata.Pod(i/7*7)
		p.Labels, p.Annotations = first.Labels, first.Annotations
		p.Spec.Containers = first.Spec.Containers
		for c := range p.Spec.Containers {
			ctr := &p.Spec.Containers[c]
			ctr.VolumeMounts = append([]corev1.VolumeMount(nil), ctr.VolumeMounts...)
			ctr.VolumeMounts[len(ctr.VolumeMounts)-1].Name = p.Spec.Volumes[0].Name
		}
		v, _, err := storage.EncodeObject(p)
		if err != nil {
			b.Fatal(err)
		}
		kvs = append(kvs, storage.KV{Key: benchdata.PodKey(storage.DefaultPrefix, i), Value: v, ModRevision: int64(100 + i)})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	return kvs
}

// benchmarkRenderReplicaSets is benchmarkRenderListing over 8,192 such
// pods in key order.
func benchmarkRenderReplicaSets(b *testing.B, format string) {
	renderEach(b, &printer.Printer{Format: format, List: true, Prefix: storage.DefaultPrefix}, replicaSetPods(b, 8192))
}

func BenchmarkRenderReplicaSetsYAML(b *testing.B) { benchmarkRenderReplicaSets(b, printer.OutputYAML) }
func BenchmarkRenderReplicaSetsJSON(b *testing.B) { benchmarkRenderReplicaSets(b, printer.OutputJSON) }
