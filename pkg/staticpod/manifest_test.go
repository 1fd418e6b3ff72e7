package staticpod

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKubeadmManifest(t *testing.T) {
	m, err := Read("testdata/kubeadm-etcd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"name":             "cp-1",
		"data-dir":         "/var/lib/etcd",
		"trusted-ca-file":  "/etc/kubernetes/pki/etcd/ca.crt",
		"client-cert-auth": "true",
	} {
		if got := m.Flags[flag]; got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	ep, err := m.LocalClientURL()
	if err != nil || ep != "https://127.0.0.1:2379" {
		t.Errorf("LocalClientURL() = %q, %v; want the loopback listener", ep, err)
	}
	if got := m.List("listen-client-urls"); len(got) != 2 {
		t.Errorf("List(listen-client-urls) = %v, want two URLs", got)
	}
}

func TestParseRejectsWhatIsNotAnEtcdPod(t *testing.T) {
	tests := []struct {
		name, manifest, wantErr string
	}{
		{"not yaml", "\t{{{", "is not a pod manifest"},
		{"a deployment", "apiVersion: apps/v1\nkind: Deployment\n", `kind is "Deployment"`},
		{"no etcd container", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: api\n    command: [kube-apiserver]\n", "no container runs the etcd command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.manifest))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseFlagsAcceptsBothSpellings(t *testing.T) {
	got := parseFlags([]string{"--name", "a", "--data-dir=/d", "--debug", "-x=1"})
	want := map[string]string{"name": "a", "data-dir": "/d", "debug": "true", "x": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("flag %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

// TestReadParkedManifest: a manifest a restart moved aside and never put
// back is missing, and the error says where it is and how to put it back.
func TestReadParkedManifest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ManifestFileName)
	if _, err := Read(path); !errors.Is(err, fs.ErrNotExist) || Parked(path) != "" || strings.Contains(err.Error(), "holds it") {
		t.Fatalf("a manifest neither in place nor parked: %v, parked %q", err, Parked(path))
	}
	parked := ParkedPath(path)
	if filepath.Dir(parked) != dir || !strings.HasPrefix(filepath.Base(parked), ".") {
		t.Fatalf("parked manifest %s is not a hidden file beside %s (the kubelet would run it)", parked, path)
	}
	if err := os.WriteFile(parked, []byte("pod"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Read(path)
	if !errors.Is(err, fs.ErrNotExist) || Parked(path) != parked || !strings.Contains(err.Error(), path+" is missing, and "+parked+" holds it") || !strings.Contains(err.Error(), "mv "+parked+" "+path) {
		t.Fatalf("a parked manifest: %v, parked %q; want it named with the way back", err, Parked(path))
	}
	if err := os.WriteFile(path, []byte("pod"), 0o600); err != nil {
		t.Fatal(err)
	}
	if Parked(path) != "" {
		t.Errorf("a manifest in place is not parked, whatever is beside it")
	}
}
