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

// TestCrashLoopNamesLastWords: the error quotes the last run's error from
// the podLogsDir of the kubelet's config.yaml in its root dir, as kubeadm
// lays it out, and otherwise says how to read the log.
func TestCrashLoopNamesLastWords(t *testing.T) {
	root, logs := t.TempDir(), t.TempDir()
	n := &Node{KubeletRootDir: root}
	const uid = "5e5e5e5e5e5e"
	dir := filepath.Join(root, "pods", uid, "containers", "etcd")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "b", "c", "d"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now().Add(-time.Minute)
	if err := n.giveUpOnCrashLoop(since)(); err == nil || !strings.Contains(err.Error(), "crictl logs") {
		t.Fatalf("without logs in the default dir: %v, want the crictl hint", err)
	}

	config := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\npodLogsDir: " + logs + "\n"
	if err := os.WriteFile(filepath.Join(root, "config.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	podLogs := filepath.Join(logs, "kube-system_etcd-cp-1_"+uid, "etcd")
	if err := os.MkdirAll(podLogs, 0o750); err != nil {
		t.Fatal(err)
	}
	runs := map[string]string{
		"2.log": `2026-12-06T15:33:51.43Z stderr F {"level":"info","msg":"starting"}
2026-12-06T15:33:51.44Z stderr F {"level":"fatal","msg":"discovery failed","error":"version \"3.7.0\" is not supported","stacktrace":"main.main"}
2026-12-06T15:33:51.45Z stderr F {"level":"info","msg":"closed etcd server"}
`,
		"3.log": "2026-12-06T15:34:01.00Z stderr F run 4 still starting\n",
	}
	for name, text := range runs {
		if err := os.WriteFile(filepath.Join(podLogs, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := n.giveUpOnCrashLoop(since)()
	want := "its last words (" + filepath.Join(podLogs, "2.log") + `): discovery failed: version "3.7.0" is not supported`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("with logs in the config's podLogsDir: %v, want the last finished run's fatal entry: %s", err, want)
	}

	if err := os.WriteFile(filepath.Join(podLogs, "2.log"), []byte("2026-12-06T15:33:51.43Z stderr F panic: runtime error: index out of range\n2026-12-06T15:33:51.43Z stderr F \n2026-12-06T15:33:51.43Z stderr F goroutine 1 [running]:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.giveUpOnCrashLoop(since)(); err == nil || !strings.HasSuffix(err.Error(), "): panic: runtime error: index out of range") {
		t.Fatalf("a Go panic: %v, want its first line", err)
	}
}
