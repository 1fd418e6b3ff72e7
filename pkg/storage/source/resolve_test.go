package source

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

// testdataPath names a file under the repository's testdata/, the values
// real clusters stored (testdata/README.md says where each came from).
func testdataPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "..", "testdata"}, parts...)...)
}

func TestResolveAndSegmentsOnASnapshot(t *testing.T) {
	s := &Snapshot{Revision: 9}
	for _, k := range []string{
		"/registry/apiregistration.k8s.io/apiservices/v1.",
		"/registry/example.com/widgets/ns1/w1",
		"/registry/health",
		"/registry/minions/n1",
		"/registry/namespaces/ns1",
		"/registry/services/specs/ns1/svc",
		"/registry/stable.io/crontabs/c1",
	} {
		s.KVs = append(s.KVs, storage.KV{Key: k, ModRevision: 1})
	}
	src := &SnapshotSource{Snapshot: s}
	ctx := context.Background()
	segs, err := Segments(ctx, src, "/registry/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(segs, " "); got != "apiregistration.k8s.io example.com health minions namespaces services stable.io" {
		t.Errorf("segments %q", got)
	}
	for _, tt := range []struct {
		in   string
		want Resolved
	}{
		{"nodes", Resolved{"nodes", "minions", false, true}},
		{"svc", Resolved{"services", "services/specs", true, true}},
		{"widgets", Resolved{"widgets.example.com", "example.com/widgets", true, true}},
		{"crontabs", Resolved{"crontabs.stable.io", "stable.io/crontabs", false, true}},
		{"widgets.example.com", Resolved{"widgets.example.com", "example.com/widgets", true, true}},
		{"pods", Resolved{"pods", "pods", false, false}},
	} {
		r, err := Resolve(ctx, src, "/registry", tt.in, 0)
		if err != nil || r != tt.want {
			t.Errorf("Resolve(%q) = %+v, %v; want %+v", tt.in, r, err, tt.want)
		}
	}
}
