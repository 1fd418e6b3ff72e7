package bootstrap

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// testNode is a node whose files live under dir.
func testNode(dir, name, ip string) *Node {
	n := NewNode()
	n.Name, n.AdvertiseAddress = name, ip
	n.PKIDir = filepath.Join(dir, "pki")
	n.ManifestsDir = filepath.Join(dir, "manifests")
	n.DataDir = filepath.Join(dir, "data")
	n.KeyAlgorithm = pki.ECDSAP256
	return n
}

func TestInitWritesPKIAndManifestWithKubeadmModes(t *testing.T) {
	dir := t.TempDir()
	n := testNode(dir, "cp-1", "10.0.0.11")
	n.KeyAlgorithm = "" // kubeadm's default, RSA-2048
	if err := n.Init(time.Now()); err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{
		n.ManifestPath(): 0o600,
		n.ManifestsDir:   0o700,
		n.DataDir:        0o700,
		filepath.Join(n.PKIDir, "etcd", "ca.key"): 0o600,
		filepath.Join(n.PKIDir, "etcd", "ca.crt"): 0o644,
	}
	for _, c := range Certs {
		certFile, keyFile := pki.Paths(n.PKIDir, c.BaseName)
		modes[certFile], modes[keyFile] = 0o644, 0o600
	}
	for path, want := range modes {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	kp, err := pki.Load(n.PKIDir, pki.ServerBaseName)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kp.Cert.PublicKey.(interface{ Size() int }); !ok {
		t.Errorf("server key is %T, want kubeadm's RSA default", kp.Cert.PublicKey)
	}
	m, err := staticpod.Read(n.ManifestPath())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Flags["cert-file"], filepath.Join(n.PKIDir, "etcd", "server.crt"); got != want {
		t.Errorf("--cert-file = %s, want %s", got, want)
	}
	if got := m.Flags["data-dir"]; got != n.DataDir {
		t.Errorf("--data-dir = %s, want %s", got, n.DataDir)
	}
	// Same inputs again: nothing changes.
	before := etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "etcd", "server.crt"))
	if err := n.Init(time.Now()); err != nil {
		t.Fatalf("second init with the same inputs: %v", err)
	}
	if !bytes.Equal(before, etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "etcd", "server.crt"))) {
		t.Error("second init rewrote the server certificate")
	}
	// Different inputs: refused.
	other := testNode(dir, "cp-9", "10.0.0.19")
	if err := other.Init(time.Now()); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("init over another node's manifest = %v, want a refusal pointing at reset", err)
	}
}

func TestEnsurePKIReusesCAAndNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	n := testNode(dir, "cp-1", "10.0.0.11")
	ca, err := pki.LoadOrCreateCA(n.PKIDir, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	// An apiserver client certificate made elsewhere by this CA is kept.
	client, err := pki.NewLeaf(ca, pki.ClientConfig(pki.APIServerClientCommonName), pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Write(n.PKIDir, pki.APIServerClientBaseName); err != nil {
		t.Fatal(err)
	}
	caBefore := etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "etcd", "ca.crt"))
	clientBefore := etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "apiserver-etcd-client.crt"))
	if err := n.EnsurePKI(PKIOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caBefore, etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "etcd", "ca.crt"))) {
		t.Error("the existing CA was replaced")
	}
	if !bytes.Equal(clientBefore, etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "apiserver-etcd-client.crt"))) {
		t.Error("the existing apiserver-etcd-client certificate was replaced")
	}
	for _, c := range Certs[1:] {
		kp, err := pki.Load(n.PKIDir, c.BaseName)
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.Cert.CheckSignatureFrom(ca.Cert); err != nil {
			t.Errorf("%s not signed by the existing CA: %v", c.Name, err)
		}
	}
	server, _ := pki.Load(n.PKIDir, pki.ServerBaseName)
	if !slices.Equal(pki.SANs(server.Cert), []string{"cp-1", "localhost", "10.0.0.11", "127.0.0.1", "::1"}) {
		t.Errorf("server SANs = %v", pki.SANs(server.Cert))
	}

	// A certificate for another address is not overwritten: it is an error.
	moved := testNode(dir, "cp-1", "10.0.0.99")
	serverBefore := etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "etcd", "server.crt"))
	err = moved.EnsurePKI(PKIOptions{}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "not valid for IP address 10.0.0.99") {
		t.Errorf("EnsurePKI for a new address = %v, want an error about the IP", err)
	}
	if !bytes.Equal(serverBefore, etcdtest.ReadFile(t, filepath.Join(n.PKIDir, "etcd", "server.crt"))) {
		t.Error("the server certificate was overwritten")
	}

	// A certificate without its key is an error, not a reason to replace it.
	os.Remove(filepath.Join(n.PKIDir, "etcd", "peer.key"))
	if err := n.EnsurePKI(PKIOptions{}, time.Now()); err == nil || !strings.Contains(err.Error(), "peer.key") {
		t.Errorf("EnsurePKI with a missing key = %v, want an error naming it", err)
	}

	// Joining needs the cluster's CA.
	joiner := testNode(t.TempDir(), "cp-2", "10.0.0.12")
	if err := joiner.EnsurePKI(PKIOptions{RequireCA: true}, time.Now()); err == nil || !strings.Contains(err.Error(), "copy ca.crt and ca.key") {
		t.Errorf("EnsurePKI without a CA for a join = %v, want advice to copy the CA", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	n := testNode(dir, "cp-1", "10.0.0.11")
	var out bytes.Buffer
	n.DryRun, n.Out = true, &out
	if err := n.Init(time.Now()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("dry run created %d entries in %s", len(entries), dir)
	}
	s := out.String()
	for _, want := range []string{"would write " + n.ManifestPath() + " (mode 0600)", "--name=cp-1", "private key, not shown", "BEGIN CERTIFICATE"} {
		if !strings.Contains(s, want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if strings.Contains(s, "PRIVATE KEY-----") {
		t.Error("dry run printed a private key")
	}
}

func TestRenewKeepsSANsUsagesAndKey(t *testing.T) {
	dir := t.TempDir()
	n := testNode(dir, "cp-1", "10.0.0.11")
	issued := time.Now().Add(-200 * 24 * time.Hour)
	if err := n.EnsurePKI(PKIOptions{}, issued); err != nil {
		t.Fatal(err)
	}
	// Backdate: reissue the peer certificate as if made 200 days ago.
	ca, _ := pki.Load(n.PKIDir, pki.CABaseName)
	old, _ := pki.Load(n.PKIDir, pki.PeerBaseName)
	cfg := pki.ServerConfig("cp-1", old.Cert.IPAddresses[0])
	cfg.NotBefore = issued
	backdated, err := pki.SignLeaf(ca, cfg, old.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := backdated.Write(n.PKIDir, pki.PeerBaseName); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	before := pki.CheckExpiration(n.PKIDir, now)
	if _, err := n.Renew([]string{"etcd-ca"}, now); err == nil {
		t.Error("renewing the CA was accepted")
	}
	if _, err := n.Renew([]string{"bogus"}, now); err == nil {
		t.Error("renewing an unknown certificate was accepted")
	}
	renewed, err := n.Renew([]string{"all"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewed) != 4 {
		t.Fatalf("renewed %d certificates, want 4", len(renewed))
	}
	after := pki.CheckExpiration(n.PKIDir, now)
	for i := range before {
		b, a := before[i], after[i]
		if b.Name == CACertName {
			if !a.NotAfter.Equal(b.NotAfter) {
				t.Error("renew all changed the CA")
			}
			continue
		}
		if !a.NotAfter.After(b.NotAfter) && b.Name == "etcd-peer" {
			t.Errorf("%s NotAfter %s -> %s, want later", b.Name, b.NotAfter, a.NotAfter)
		}
		if !slices.Equal(a.SANs, b.SANs) || a.Subject != b.Subject {
			t.Errorf("%s changed: SANs %v -> %v, subject %s -> %s", b.Name, b.SANs, a.SANs, b.Subject, a.Subject)
		}
	}
	peer, err := pki.Load(n.PKIDir, pki.PeerBaseName)
	if err != nil {
		t.Fatal(err)
	}
	if !sameKey(peer.Cert, old.Key) {
		t.Error("renewal changed the peer key")
	}
	if !slices.Equal(peer.Cert.ExtKeyUsage, old.Cert.ExtKeyUsage) || peer.Cert.KeyUsage != old.Cert.KeyUsage {
		t.Errorf("usages changed: %v/%v -> %v/%v", old.Cert.ExtKeyUsage, old.Cert.KeyUsage, peer.Cert.ExtKeyUsage, peer.Cert.KeyUsage)
	}
	if err := peer.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("renewed certificate not signed by the CA: %v", err)
	}
	if got := after[2].ResidualString(); got != "364d" && got != "365d" {
		t.Errorf("residual after renewal = %s, want about a year", got)
	}
}
