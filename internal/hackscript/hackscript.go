// Package hackscript runs the repository's hack/ build scripts for tests:
// each builds a reference binary once, caches it outside the repository
// and prints where it is.
package hackscript

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Memo returns a function that hands every test of this process what
// build returns, building the first time a test asks: a script prints its
// cached build at once, but the first call may wait minutes for a build.
// A failed build fails the test that asked and is not kept: the next test
// to ask builds again.
func Memo[T comparable](build func() (T, error)) func(testing.TB) T {
	var (
		mu    sync.Mutex
		built T
	)
	return func(t testing.TB) T {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		var zero T
		if built != zero {
			return built
		}
		b, err := build()
		if err != nil {
			t.Fatal(err)
		}
		built = b
		return b
	}
}

// Path is the path of the script named name under hack/.
func Path(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "hack", name)
}

// Output runs the script at path and returns what it printed, trimmed.
// Its stderr is shown as it runs (a cold build says so and takes minutes);
// a failure's error ends with the last lines of it.
func Output(path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", path, err, lastLines(stderr.String(), 40))
	}
	return strings.TrimSpace(string(out)), nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
