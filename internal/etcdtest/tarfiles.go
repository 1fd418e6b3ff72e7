package etcdtest

import (
	"archive/tar"
	"io"
	"testing"
)

// TarFiles reads a tar stream to its end and returns each entry's content
// by name, failing the test on a read error.
func TarFiles(t testing.TB, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
}
