package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGiveUpOnCrashLoop lays out a kubelet root dir as the kubelet leaves
// it (a termination-message file per container it created) and checks
// which starts count: those since the manifest went in, of static pods
// only, of the container asked for.
func TestGiveUpOnCrashLoop(t *testing.T) {
	root := t.TempDir()
	n := &Node{KubeletRootDir: root}
	since := time.Now().Add(-time.Minute)
	starts := func(uid, container string, at ...time.Time) {
		t.Helper()
		dir := filepath.Join(root, "pods", uid, "containers", container)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		for i, when := range at {
			f := filepath.Join(dir, strings.Repeat(string(rune('a'+i)), 8))
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f, when, when); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := time.Now()
	// The pod of the old manifest started etcd many times, before since.
	starts("0ld0ld0ld0ld", "etcd", since.Add(-time.Hour), since.Add(-50*time.Minute), since.Add(-40*time.Minute), since.Add(-30*time.Minute), since.Add(-time.Second))
	// An API pod with a container of the same name: not a static pod.
	starts("8a1f3c2e-0d4b-4c5e-9f6a-7b8c9d0e1f2a", "etcd", now, now, now, now, now)
	// The new pod's other container restarts: not etcd.
	starts("5e5e5e5e5e5e", "sidecar", now, now, now, now)
	giveUp := n.giveUpOnCrashLoop(since)
	if err := giveUp(); err != nil {
		t.Fatalf("no etcd container of a static pod started since the manifest: %v", err)
	}
	starts("5e5e5e5e5e5e", "etcd", now, now, now)
	if err := giveUp(); err != nil {
		t.Fatalf("three starts (two runs ended): %v", err)
	}
	starts("5e5e5e5e5e5e", "etcd", now, now, now, now)
	err := giveUp()
	if err == nil || !strings.Contains(err.Error(), "started the etcd container 4 times") || !strings.Contains(err.Error(), "crash-looping (static pod UID 5e5e5e5e5e5e)") {
		t.Fatalf("four starts: %v, want a crash loop named", err)
	}
	if (&Node{}).giveUpOnCrashLoop(since)() != nil {
		t.Error("without the kubelet's root dir the wait must never give up early")
	}
}
