package connect_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// TestProbeExplainsEachFailure reaches a real etcd member, and other
// listeners that are wrong in one way each, and checks the sentence a user
// gets for every case.
func TestProbeExplainsEachFailure(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	s := c.State
	ep := s.Members[0].ClientURL

	// Another CA, with a client certificate of its own.
	otherDir := t.TempDir()
	otherCA, err := pki.LoadOrCreateCA(otherDir, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := pki.NewLeaf(otherCA, pki.ClientConfig("stranger"), pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.Write(otherDir, "stranger"); err != nil {
		t.Fatal(err)
	}
	otherCACert, _ := pki.Paths(otherDir, pki.CABaseName)
	strangerCert, strangerKey := pki.Paths(otherDir, "stranger")

	// A listener that accepts connections and never answers: a hung member.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			conn, err := hung.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	// A port nobody listens on.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	// A plaintext HTTP server.
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()

	tests := []struct {
		name          string
		endpoint      string
		ca, cert, key string
		plaintext     bool
		want          string
	}{
		{"refused", "https://" + closedAddr, s.CACert, s.ClientCert, s.ClientKey, false, "connection refused"},
		{"hung", "https://" + hung.Addr().String(), s.CACert, s.ClientCert, s.ClientKey, false, "accepted the connection but did not answer"},
		{"wrong CA", ep, otherCACert, s.ClientCert, s.ClientKey, false, "is not signed by the CA in " + otherCACert},
		{"no client certificate", ep, s.CACert, "", "", false, "requires a client certificate: pass --cert and --key"},
		{"client certificate of another CA", ep, s.CACert, strangerCert, strangerKey, false, "rejected the client certificate " + strangerCert},
		{"plaintext to a TLS member", strings.Replace(ep, "https://", "http://", 1), "", "", "", true, "expects TLS"},
		{"TLS to a plaintext server", strings.Replace(plain.URL, "http://", "https://", 1), s.CACert, s.ClientCert, s.ClientKey, false, "does not speak TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := connect.NewFlags()
			f.Endpoints = []string{tt.endpoint}
			f.CACert, f.Cert, f.Key = tt.ca, tt.cert, tt.key
			f.InsecurePlaintext = tt.plaintext
			f.DialTimeout = 500 * time.Millisecond
			f.Getenv = func(string) string { return "" }
			cfg, err := f.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			_, err = cfg.Probe(context.Background(), cfg.Endpoints[0])
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Probe() = %v, want an error containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), cfg.Endpoints[0]+": ") {
				t.Errorf("error %q does not name the endpoint", err)
			}
		})
	}

	cfg := c.Config()
	v, err := cfg.Probe(context.Background(), ep)
	if err != nil {
		t.Fatalf("probing a healthy member: %v", err)
	}
	if !strings.HasPrefix(v.Server, "3.") {
		t.Errorf("server version %q, want etcd 3.x", v.Server)
	}
}
