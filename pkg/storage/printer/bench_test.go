package printer

import (
	"io"
	"os"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

func benchValue(b *testing.B) []byte {
	v, err := os.ReadFile(testdataPath("stored-values", "pod.bin"))
	if err != nil {
		b.Fatal(err)
	}
	return v[:len(v)-1]
}

// BenchmarkDecodePod is the per-object cost of get -o yaml: decode a
// stored Pod and print it in a List.
func BenchmarkDecodePod(b *testing.B) {
	v := benchValue(b)
	var d storage.Decoder
	p := &Printer{Out: io.Discard, ErrOut: io.Discard, Format: OutputYAML, List: true, Prefix: storage.DefaultPrefix}
	kv := storage.KV{Key: "/registry/pods/default/pi-dqtsw", Value: v, ModRevision: 42}
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		o, err := d.Decode(kv.Key, v, 42)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Print(kv, o); err != nil {
			b.Fatal(err)
		}
	}
}
