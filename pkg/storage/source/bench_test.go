package source

import "testing"

// BenchmarkReadSnapshot is one pass over a small backend file.
func BenchmarkReadSnapshot(b *testing.B) {
	path := testdataPath("bolt", "small.db")
	for b.Loop() {
		if _, err := ReadSnapshot(path, 0); err != nil {
			b.Fatal(err)
		}
	}
}
