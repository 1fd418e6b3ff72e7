// Package s3test runs a real S3-compatible store for tests: SeaweedFS's
// `weed server` with its S3 gateway on 127.0.0.1 (internal/weed), built
// once from the Go module proxy by hack/build-weed.sh and cached outside
// the repository. A test that needs it builds it rather than skipping; the
// server is stopped when the test ends and dies with the test binary.
package s3test

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/hackscript"
	"github.com/kubectl-etcd/kubectl-etcd/internal/weed"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// Binary returns the path of the weed binary, running hack/build-weed.sh
// the first time in this process: it prints the cached directory at once,
// waits for a build another process runs, or builds (minutes on a fresh
// machine, so hack/test.sh builds it before the tests that need it).
var Binary = hackscript.Memo(weed.Build)

// Credentials are an access key the server accepts.
type Credentials = weed.Credentials

// Option changes how the server starts.
type Option func(*Server)

// WithCredentials turns on authentication: only these keys are accepted
// (weed's -s3.config). Without it the server accepts any request.
func WithCredentials(c Credentials) Option { return func(s *Server) { s.Credentials = &c } }

// WithTLS serves S3 over HTTPS only, with a certificate for 127.0.0.1
// signed by a CA made for the test (CAFile): what a store with a private
// CA looks like to its clients.
func WithTLS() Option { return func(s *Server) { s.tls = true } }

// Server is a running weed server with its S3 gateway.
type Server struct {
	T testing.TB
	// Endpoint is the S3 URL, http://127.0.0.1:PORT (https:// WithTLS).
	Endpoint string
	// Credentials are the accepted keys, nil when any request is.
	Credentials *Credentials
	Dir         string
	// CAFile is the PEM file of the CA that signed the server's
	// certificate, WithTLS.
	CAFile string

	tls bool

	srv *weed.Server
}

// Start runs a weed server (master, volume, filer and S3 gateway in one
// process) on free loopback ports and waits until S3 answers.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{T: t, Dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	var files *weed.TLS
	if s.tls {
		files = testCA(t, filepath.Join(s.Dir, "tls"))
		s.CAFile = files.CAFile
	}
	srv, err := weed.StartTLS(Binary(t), s.Dir, s.Credentials, files)
	if err != nil {
		t.Fatal(err)
	}
	s.srv, s.Endpoint = srv, srv.Endpoint
	t.Cleanup(s.Stop)
	return s
}

// testCA writes a CA and a server certificate for 127.0.0.1 and
// localhost signed by it into dir.
func testCA(t testing.TB, dir string) *weed.TLS {
	t.Helper()
	ca, err := pki.NewCA("s3test-ca", pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.NewLeaf(ca, pki.ServerConfig("localhost", net.IPv4(127, 0, 0, 1)), pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(dir, "s3"); err != nil {
		t.Fatal(err)
	}
	caFile, _ := pki.Paths(dir, "ca")
	certFile, keyFile := pki.Paths(dir, "s3")
	return &weed.TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
}

// Start starts the server again on the same data and ports after Stop or
// Kill.
func (s *Server) Start() {
	s.T.Helper()
	if err := s.srv.Start(); err != nil {
		s.T.Fatal(err)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period); the
// data stays for Start.
func (s *Server) Stop() { s.srv.Stop() }

// Kill kills the server outright, as a crash or a lost network would stop
// it mid-request.
func (s *Server) Kill() { s.srv.Kill() }

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.srv.Log() }
