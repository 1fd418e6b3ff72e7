// Package shareddata finds the values real clusters stored, captured by
// others, that the decoding tests check against. They live in the project's
// shared folder, checked out beside this repository as ../shared/testdata;
// KUBECTL_ETCD_SHARED_TESTDATA points elsewhere.
package shareddata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Path returns the path of parts under the shared test data, failing the
// test with what to do when the folder is not there.
func Path(t testing.TB, parts ...string) string {
	t.Helper()
	root := os.Getenv("KUBECTL_ETCD_SHARED_TESTDATA")
	if root == "" {
		// This file is internal/shareddata/shareddata.go in the checkout.
		_, self, _, _ := runtime.Caller(0)
		root = filepath.Join(filepath.Dir(self), "..", "..", "..", "shared", "testdata")
	}
	p := filepath.Join(append([]string{root}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data: %v\n(check out the project's shared folder beside this repository as ../shared, or set KUBECTL_ETCD_SHARED_TESTDATA to its testdata directory)", err)
	}
	return p
}
