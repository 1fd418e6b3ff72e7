package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
)

// TestMakeDemo runs `make demo`, the README's first command, as a newcomer
// does in a fresh clone: it builds bin/kubectl-etcd, starts a sandbox of
// three members, shows them working and tears them down. It must exit 0,
// read back the object it stored, and leave neither the sandbox's
// directory nor a member process behind.
func TestMakeDemo(t *testing.T) {
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "demo")
	cmd.Dir = etcdtest.RepoRoot()
	// The demo makes its sandbox under TMPDIR: the test's own directory,
	// where a member left running is found by its path.
	cmd.Env = cleanEnv("TMPDIR=" + tmp)
	out, err := cmd.CombinedOutput()
	text := string(out)
	t.Logf("make demo:\n%s", text)
	if err != nil {
		t.Fatalf("make demo: %v", err)
	}
	for _, want := range []string{
		"member-1", "member-2", "member-3",
		"greeting: hello from etcd", // the ConfigMap put, read back decoded
		"verified       sha256 trailer",
		"dry run: would defragment",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("make demo's output lacks %q", want)
		}
	}
	removed := regexp.MustCompile(`(?m)^removed (\S+)$`).FindStringSubmatch(text)
	if removed == nil {
		t.Fatalf("make demo did not say it removed its sandbox")
	}
	dir := removed[1]
	if !strings.HasPrefix(dir, tmp+string(filepath.Separator)) {
		t.Errorf("the demo's sandbox %s is not under TMPDIR %s", dir, tmp)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's sandbox %s is still there (stat: %v)", dir, err)
	}
	if left := processesNaming(t, dir); len(left) > 0 {
		t.Errorf("processes of the demo's sandbox still run: %s", strings.Join(left, "; "))
	}
}

// processesNaming lists the command lines of running processes that name
// path, each with its pid.
func processesNaming(t *testing.T, path string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // it exited meanwhile
		}
		if line := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "); strings.Contains(line, path) {
			found = append(found, filepath.Base(filepath.Dir(f))+": "+line)
		}
	}
	return found
}
