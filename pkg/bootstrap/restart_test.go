package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecoverParkedManifest(t *testing.T) {
	n := NewNode()
	n.ManifestsDir = t.TempDir()
	parked := n.parkedManifestPath()
	if filepath.Dir(parked) != n.ManifestsDir || !strings.HasPrefix(filepath.Base(parked), ".") {
		t.Fatalf("parked manifest %s is not a hidden file beside the manifest", parked)
	}

	t.Log("a restart killed while the manifest was away: it is put back")
	if err := os.WriteFile(parked, []byte("pod"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.recoverParkedManifest(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(n.ManifestPath()); err != nil || string(data) != "pod" {
		t.Errorf("manifest after recovery: %q, %v", data, err)
	}
	if _, err := os.Stat(parked); !os.IsNotExist(err) {
		t.Errorf("parked copy still there: %v", err)
	}

	t.Log("a stale parked copy beside a manifest written since: the manifest wins")
	if err := os.WriteFile(parked, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.recoverParkedManifest(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(n.ManifestPath()); string(data) != "pod" {
		t.Errorf("manifest overwritten by a stale copy: %q", data)
	}
	if _, err := os.Stat(parked); !os.IsNotExist(err) {
		t.Errorf("stale parked copy kept: %v", err)
	}
}

// TestHolderGone: a restart lock held by a process of this host that no
// longer runs (killed outright) is told apart from one another node, or
// a live process here, holds.
func TestHolderGone(t *testing.T) {
	// pid_max is at most 4194304: 4194305 is never a process.
	key := RestartLockName + "/6542a24ff20eae2a"
	for _, tt := range []struct {
		holder string
		gone   bool
	}{
		{key + " (" + restartLockOwner("cp-1", "node-a", os.Getpid()) + ")", false},
		{key + " (" + restartLockOwner("cp-1", "node-a", 4194305) + ")", true},
		{key + " (" + restartLockOwner("cp-1", "node-b", 4194305) + ")", false},
		{key, false},
		{"(none)", false},
	} {
		if got := holderGone(tt.holder, "node-a"); got != tt.gone {
			t.Errorf("holderGone(%q) on node-a = %v, want %v", tt.holder, got, tt.gone)
		}
	}
}
