package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// writePKI creates a CA and a healthcheck-client certificate under dir in
// the kubeadm layout and returns dir/etcd.
func writePKI(t *testing.T, dir string, clientValidity time.Duration, notBefore time.Time) string {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(dir, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pki.ClientConfig(pki.HealthcheckClientCommonName)
	cfg.Validity, cfg.NotBefore = clientValidity, notBefore
	client, err := pki.NewLeaf(ca, cfg, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Write(dir, pki.HealthcheckClientBaseName); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "etcd")
}

func testFlags(env map[string]string) *Flags {
	f := NewFlags()
	f.EtcdManifest = "/nonexistent/etcd.yaml"
	// No kubeconfig either, whatever the developer's machine has.
	empty := "/dev/null"
	f.KubeConfig.KubeConfig = &empty
	f.Getenv = func(k string) string { return env[k] }
	return f
}

func TestResolveEndpointsFromFlagsThenEnvironment(t *testing.T) {
	certs := writePKI(t, t.TempDir(), 0, time.Time{})
	env := map[string]string{
		EnvEndpoints: "https://127.0.0.9:2379, 127.0.0.8:2379",
		EnvCACert:    filepath.Join(certs, "ca.crt"),
		EnvCert:      filepath.Join(certs, "healthcheck-client.crt"),
		EnvKey:       filepath.Join(certs, "healthcheck-client.key"),
	}

	f := testFlags(env)
	cfg, err := f.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Endpoints, ","); got != "https://127.0.0.9:2379,https://127.0.0.8:2379" {
		t.Errorf("endpoints from %s = %s; a bare host:port should get https://", EnvEndpoints, got)
	}
	if cfg.Source != EnvEndpoints || cfg.TLS() == nil || len(cfg.TLS().Certificates) != 1 {
		t.Errorf("source %q, TLS %v: want the environment's endpoints and client certificate", cfg.Source, cfg.TLS())
	}

	f = testFlags(env)
	f.Endpoints = []string{"https://127.0.0.7:2379"}
	cfg, err = f.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Endpoints[0] != "https://127.0.0.7:2379" || cfg.Source != "--endpoints" {
		t.Errorf("--endpoints should win over %s, got %v from %s", EnvEndpoints, cfg.Endpoints, cfg.Source)
	}
}

func TestResolveFromStaticPodManifest(t *testing.T) {
	root := t.TempDir()
	certs := writePKI(t, filepath.Join(root, "pki"), 0, time.Time{})
	manifest := filepath.Join(root, "etcd.yaml")
	writeFile(t, manifest, `apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - name: etcd
    command:
    - etcd
    - --listen-client-urls=https://127.0.0.1:2379,https://192.0.2.10:2379
    - --trusted-ca-file=`+filepath.Join(certs, "ca.crt")+`
`)
	f := testFlags(nil)
	f.EtcdManifest = manifest
	cfg, err := f.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Endpoints[0] != "https://127.0.0.1:2379" {
		t.Errorf("endpoint %v, want the loopback client URL of the manifest", cfg.Endpoints)
	}
	if cfg.CertFile != filepath.Join(certs, "healthcheck-client.crt") || cfg.KeyFile != filepath.Join(certs, "healthcheck-client.key") {
		t.Errorf("client certificate %s / %s, want healthcheck-client beside the manifest's CA", cfg.CertFile, cfg.KeyFile)
	}

	// An explicit --pki-dir wins.
	other := writePKI(t, filepath.Join(root, "other"), 0, time.Time{})
	f.PKIDir = filepath.Join(root, "other")
	if cfg, err = f.Resolve(); err != nil {
		t.Fatal(err)
	}
	if cfg.CertFile != filepath.Join(other, "healthcheck-client.crt") {
		t.Errorf("with --pki-dir the client certificate is %s, want %s", cfg.CertFile, filepath.Join(other, "healthcheck-client.crt"))
	}
}

func TestResolveBadInput(t *testing.T) {
	root := t.TempDir()
	good := writePKI(t, filepath.Join(root, "good"), 0, time.Time{})
	expired := writePKI(t, filepath.Join(root, "expired"), time.Hour, time.Now().Add(-48*time.Hour))
	notPod := filepath.Join(root, "not-a-pod.yaml")
	writeFile(t, notPod, "apiVersion: v1\nkind: ConfigMap\n")
	// What a restart killed while etcd was down for it leaves.
	parkedDir := filepath.Join(root, "manifests")
	if err := os.Mkdir(parkedDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(parkedDir, ".etcd.yaml.restarting"), "apiVersion: v1\nkind: Pod\n")

	tests := []struct {
		name    string
		set     func(f *Flags)
		wantErr string
	}{
		{"nothing to go on", func(f *Flags) {}, "no etcd endpoints: pass --endpoints"},
		{"plaintext without consent", func(f *Flags) { f.Endpoints = []string{"http://127.0.0.1:2379"} }, "pass --insecure-plaintext"},
		{"unknown scheme", func(f *Flags) { f.Endpoints = []string{"grpc://127.0.0.1:2379"} }, `scheme "grpc" is not supported`},
		{"not a URL", func(f *Flags) { f.Endpoints = []string{"https://"} }, "is not a URL"},
		{"manifest is not an etcd pod", func(f *Flags) { f.EtcdManifest = notPod }, "is not an etcd static pod"},
		{"manifest parked by an interrupted restart", func(f *Flags) { f.EtcdManifest = filepath.Join(parkedDir, "etcd.yaml") },
			parkedDir + "/etcd.yaml is missing, and " + parkedDir + "/.etcd.yaml.restarting holds it: a kubectl etcd restart, upgrade or config set was stopped"},
		{"missing CA file", func(f *Flags) {
			f.Endpoints = []string{"127.0.0.1:2379"}
			f.CACert = filepath.Join(root, "missing.crt")
		}, "reading CA certificate (--cacert)"},
		{"cert without key", func(f *Flags) {
			f.Endpoints = []string{"127.0.0.1:2379"}
			f.Cert = filepath.Join(good, "healthcheck-client.crt")
		}, "--cert given without --key"},
		{"unreadable key", func(f *Flags) {
			f.Endpoints = []string{"127.0.0.1:2379"}
			f.Cert = filepath.Join(good, "healthcheck-client.crt")
			f.Key = filepath.Join(root, "missing.key")
		}, "reading client key (--key)"},
		{"key of another certificate", func(f *Flags) {
			f.Endpoints = []string{"127.0.0.1:2379"}
			f.Cert = filepath.Join(good, "healthcheck-client.crt")
			f.Key = filepath.Join(expired, "healthcheck-client.key")
		}, "private key does not match"},
		{"expired client certificate", func(f *Flags) {
			f.Endpoints = []string{"127.0.0.1:2379"}
			f.Cert = filepath.Join(expired, "healthcheck-client.crt")
			f.Key = filepath.Join(expired, "healthcheck-client.key")
		}, "expired on"},
		{"zero timeout", func(f *Flags) {
			f.Endpoints = []string{"127.0.0.1:2379"}
			f.DialTimeout = 0
		}, "--dial-timeout must be positive"},
		{"unknown --via", func(f *Flags) { f.Via = "ssh" }, `--via "ssh": want one of auto, direct, port-forward, exec`},
		{"--endpoints with --via exec", func(f *Flags) {
			f.Endpoints = []string{"127.0.0.1:2379"}
			f.Via = ViaExec
		}, "--endpoints and --via exec exclude each other"},
		{"--via direct never tries the API", func(f *Flags) { f.Via = ViaDirect }, "no etcd manifest at /nonexistent/etcd.yaml"},
		{"--via port-forward without a kubeconfig", func(f *Flags) { f.Via = ViaPortForward }, "--via port-forward needs a kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFlags(nil)
			tt.set(f)
			_, err := f.Resolve()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Resolve() error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}

	f := testFlags(nil)
	f.Endpoints = []string{"http://127.0.0.1:2379"}
	f.InsecurePlaintext = true
	if cfg, err := f.Resolve(); err != nil || cfg.TLS() != nil {
		t.Errorf("with --insecure-plaintext: %v, TLS %v; want a plaintext config", err, cfg)
	}
}

func TestMemberEndpointPrefersConfiguredEndpoints(t *testing.T) {
	cfg := &Config{Endpoints: []string{"https://127.0.0.1:2379"}}
	if got := cfg.MemberEndpoint([]string{"https://10.1.1.1:2379", "https://127.0.0.1:2379"}); got != "https://127.0.0.1:2379" {
		t.Errorf("got %s, want the configured endpoint the member also advertises", got)
	}
	if got := cfg.MemberEndpoint([]string{"https://10.1.1.2:2379/"}); got != "https://10.1.1.2:2379" {
		t.Errorf("got %s, want the member's first client URL", got)
	}
	if got := cfg.MemberEndpoint(nil); got != "" {
		t.Errorf("got %q for an unstarted member, want empty", got)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
