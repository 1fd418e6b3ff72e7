package cmd_test

import (
	"path/filepath"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
)

// TestCommandOutputGolden runs whole commands whose output depends only on
// their input files and compares what they print with testdata/output/.
func TestCommandOutputGolden(t *testing.T) {
	smallDB := filepath.Join("..", "..", "testdata", "bolt", "small.db")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"certs-check-expiration-empty", []string{"certs", "check-expiration", "--pki-dir", t.TempDir()}},
		{"certs-check-expiration-names", []string{"certs", "check-expiration", "--pki-dir", t.TempDir(), "--no-headers", "-o", `jsonpath={range [*]}{.name} missing={.missing}{"\n"}{end}`}},
		{"stats-snapshot", []string{"stats", "--snapshot", smallDB, "/", "--top", "3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code, err := cmdtest.Run(t, tt.args...)
			if code != 0 || err != nil {
				t.Fatalf("exit %d, %v\n%s", code, err, errOut)
			}
			golden.Assert(t, "output/"+tt.name+".golden", out)
		})
	}
}
