package cmd_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// manifestsDir is a manifests directory holding the etcd manifest init
// writes (pkg/staticpod's golden file), for commands that only read it.
func manifestsDir(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "staticpod", "testdata", "etcd-init.golden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, staticpod.ManifestFileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConfigErrors(t *testing.T) {
	dir := manifestsDir(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "set"}, "give at least one FLAG=VALUE; the flags config set changes are auto-compaction-mode, "},
		{[]string{"config", "set", "quota-backend-bytes"}, `"quota-backend-bytes" is not FLAG=VALUE`},
		{[]string{"config", "set", "=8GiB"}, `"=8GiB" is not FLAG=VALUE`},
		{[]string{"config", "set", "data-dir=/srv/etcd"}, "config set cannot change --data-dir; the flags it sets are auto-compaction-mode, auto-compaction-retention, election-timeout"},
		{[]string{"config", "set", "--data-dir=/srv/etcd"}, "unknown flag: --data-dir; config set changes only auto-compaction-mode, "},
		{[]string{"config", "set", "quota-backend-bytes=0"}, "the quota must be a positive number of bytes"},
		{[]string{"config", "set", "--quota-backend-bytes=lots"}, "--quota-backend-bytes=lots is not a size in bytes"},
		{[]string{"config", "set", "--heartbeat-interval", "0"}, "--heartbeat-interval=0: want a positive whole number of milliseconds"},
		{[]string{"config", "set", "election-timeout=60000"}, "over etcd's limit of 50000 milliseconds"},
		{[]string{"config", "set", "auto-compaction-mode=daily"}, "want periodic or revision"},
		{[]string{"config", "set", "log-level=verbose"}, "want debug, info, warn, error, panic or fatal"},
		{[]string{"config", "set", "feature-gates=InitialCorruptCheck"}, `"InitialCorruptCheck" is not Name=true or Name=false`},
		{[]string{"config", "set", "listen-metrics-urls=127.0.0.1:2381"}, "is not an http:// or https:// URL"},
		{[]string{"config", "set", "log-level=info", "--log-level=warn"}, "--log-level is given twice"},
		{[]string{"config", "set", "log-level=info", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"config", "set", "log-level=info", "--manifests-dir", "/nonexistent"}, "no such file"},
		// Checked against the manifest, before any cluster access.
		{[]string{"config", "set", "election-timeout=400", "--manifests-dir", dir}, "--election-timeout=400 must be at least 5 times --heartbeat-interval=100, so 500 or more"},
		{[]string{"config", "set", "--heartbeat-interval=250", "--manifests-dir", dir}, "--election-timeout=1000 must be at least 5 times --heartbeat-interval=250"},
		// Standard input is no terminal: without --yes, nothing changes.
		{[]string{"config", "set", "quota-backend-bytes=4GiB", "--manifests-dir", dir}, "refusing to change --quota-backend-bytes: (unset) -> 4294967296 in " + dir + "/etcd.yaml and restart etcd without confirmation: pass --yes"},
		{[]string{"config", "get", "-o", "xml", "--manifests-dir", dir}, `unknown output format "xml"`},
		{[]string{"config", "get", "--manifests-dir", "/nonexistent"}, "no such file"},
		{[]string{"config", "get", "quota-backend-bytes", "--manifests-dir", dir}, "--quota-backend-bytes is not set in " + dir + "/etcd.yaml"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, code, err := cmdtest.Run(t, tt.args...)
			if code == 0 || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("exit %d, error %v; want non-zero with %q", code, err, tt.want)
			}
		})
	}
	data, err := os.ReadFile(filepath.Join(dir, staticpod.ManifestFileName))
	if err != nil || strings.Contains(string(data), "quota-backend-bytes") || strings.Contains(string(data), "election-timeout") {
		t.Fatalf("a refused config set changed the manifest (%v):\n%s", err, data)
	}
}

// TestConfigSetOfValuesInPlace: values the manifest already has change
// nothing, but a run killed after it wrote them leaves them so, so the
// command checks the member instead of saying there is nothing to do;
// here there is none to check (pkg/bootstrap's config test has one).
func TestConfigSetOfValuesInPlace(t *testing.T) {
	dir := manifestsDir(t)
	before, err := os.ReadFile(filepath.Join(dir, staticpod.ManifestFileName))
	if err != nil {
		t.Fatal(err)
	}
	// The manifest's own values, one given as a flag, one as an argument;
	// a PKI directory without the certificates to reach a member with.
	pki := t.TempDir()
	out, errOut, code, err := cmdtest.Run(t, "config", "set", "--listen-metrics-urls=http://127.0.0.1:2381", "snapshot-count=10000", "--manifests-dir", dir, "--pki-dir", pki)
	want := dir + "/etcd.yaml already has --listen-metrics-urls=http://127.0.0.1:2381 --snapshot-count=10000; checking that cp-1 serves and catches up"
	if code == 0 || err == nil || out != "" || !strings.Contains(errOut, want) || !strings.Contains(err.Error(), pki+"/etcd/ca.crt") {
		t.Fatalf("config set of the manifest's values without a member: exit %d, %v, stdout %q, stderr %q; want %q and the CA it could not read", code, err, out, errOut, want)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, staticpod.ManifestFileName)); !bytes.Equal(after, before) {
		t.Errorf("config set of the manifest's values changed it:\n%s", after)
	}
}

func TestConfigGet(t *testing.T) {
	dir := manifestsDir(t)
	out, _ := cmdtest.MustRun(t, "config", "get", "--manifests-dir", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 20 || strings.Fields(lines[0])[0] != "FLAG" || strings.Fields(lines[0])[1] != "VALUE" {
		t.Fatalf("config get printed %d lines, want a header and 19 flags:\n%s", len(lines), out)
	}
	if f := strings.Fields(lines[1]); f[0] != "advertise-client-urls" || f[1] != "https://10.0.0.11:2379" {
		t.Errorf("first row %q, want advertise-client-urls first (sorted)", lines[1])
	}

	out, _ = cmdtest.MustRun(t, "config", "get", "--no-headers", "--manifests-dir", dir, "--", "--snapshot-count", "name")
	if got := strings.Join(strings.Fields(out), " "); got != "snapshot-count 10000 name cp-1" {
		t.Errorf("config get --snapshot-count name = %q, want the two rows in that order", out)
	}

	out, _ = cmdtest.MustRun(t, "config", "get", "feature-gates", "data-dir", "-o", "json", "--manifests-dir", dir)
	var flags []struct{ Flag, Value string }
	if err := json.Unmarshal([]byte(out), &flags); err != nil {
		t.Fatalf("config get -o json: %v\n%s", err, out)
	}
	if len(flags) != 2 || flags[0].Flag != "feature-gates" || flags[0].Value != "InitialCorruptCheck=true" || flags[1].Value != "/var/lib/etcd" {
		t.Errorf("config get -o json = %+v", flags)
	}

	out, _ = cmdtest.MustRun(t, "config", "get", "-o", "jsonpath={[0].value}", "name", "--manifests-dir", dir)
	if out != "cp-1" {
		t.Errorf("config get -o jsonpath = %q, want cp-1", out)
	}
}
