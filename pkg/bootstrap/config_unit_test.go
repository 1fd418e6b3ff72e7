package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcdflags"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// TestWithFlags edits the manifest init writes: plain flags are set or
// replaced, and feature gates on an etcd 3.5 image become the
// --experimental-* flags it takes, as an upgrade to 3.5 would write them
// (with the other flags 3.5 spells otherwise).
func TestWithFlags(t *testing.T) {
	m, err := staticpod.Read(filepath.Join("..", "staticpod", "testdata", "etcd-init.golden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		image    string
		settings []etcdflags.Setting
		want     []string // FlagChange.String() of every change
	}{
		{"a new flag and a changed one", "registry.k8s.io/etcd:3.7.3-0",
			[]etcdflags.Setting{{Name: "quota-backend-bytes", Value: "8589934592"}, {Name: "snapshot-count", Value: "5000"}},
			[]string{"--quota-backend-bytes: (unset) -> 8589934592", "--snapshot-count: 10000 -> 5000"}},
		{"the same value", "registry.k8s.io/etcd:3.7.3-0",
			[]etcdflags.Setting{{Name: "snapshot-count", Value: "10000"}}, nil},
		{"gates on 3.6", "registry.k8s.io/etcd:3.6.16-0",
			[]etcdflags.Setting{{Name: "feature-gates", Value: "InitialCorruptCheck=true,StopGRPCServiceOnDefrag=true"}},
			[]string{"--feature-gates: InitialCorruptCheck=true -> InitialCorruptCheck=true,StopGRPCServiceOnDefrag=true"}},
		{"gates on 3.5", "registry.k8s.io/etcd:3.5.35-0",
			[]etcdflags.Setting{{Name: "feature-gates", Value: "CompactHashCheck=true,InitialCorruptCheck=true"}},
			[]string{
				"--experimental-compact-hash-check-enabled: (unset) -> true",
				"--experimental-initial-corrupt-check: (unset) -> true",
				// This 3.7 manifest's other flag 3.5 spells otherwise.
				"--experimental-watch-progress-notify-interval: (unset) -> 5s",
				"--feature-gates: InitialCorruptCheck=true -> (unset)",
				"--watch-progress-notify-interval: 5s -> (unset)",
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, flags, err := withFlags(m, tt.settings, tt.image)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range flagChanges(m.Flags, flags) {
				got = append(got, c.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			// The bytes written say the same as the flags returned.
			path := filepath.Join(t.TempDir(), "etcd.yaml")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			back, err := staticpod.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(flagChanges(flags, back.Flags)) != 0 {
				t.Errorf("the manifest written differs from the flags returned: %v", flagChanges(flags, back.Flags))
			}
		})
	}
	if m.Flags["snapshot-count"] != "10000" {
		t.Errorf("withFlags changed the manifest it was given")
	}
}
