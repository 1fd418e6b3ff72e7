package storage

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func benchValue(b *testing.B) []byte {
	v, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "testdata", "stored-values", "pod.bin"))
	if err != nil {
		b.Skip("shared test data:", err)
	}
	return v[:len(v)-1]
}

// BenchmarkDecodePod is the per-object cost of get -o yaml: decode a
// stored Pod and print it in a List.
func BenchmarkDecodePod(b *testing.B) {
	v := benchValue(b)
	var d Decoder
	p := &Printer{Out: io.Discard, ErrOut: io.Discard, Format: OutputYAML, List: true, Prefix: DefaultPrefix}
	kv := KV{Key: "/registry/pods/default/pi-dqtsw", Value: v, ModRevision: 42}
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

// BenchmarkReadSnapshot is one pass over a small backend file.
func BenchmarkReadSnapshot(b *testing.B) {
	path := filepath.Join("..", "..", "..", "shared", "testdata", "bolt", "small.db")
	if _, err := os.Stat(path); err != nil {
		b.Skip("shared test data:", err)
	}
	for b.Loop() {
		if _, err := ReadSnapshot(path, 0); err != nil {
			b.Fatal(err)
		}
	}
}
