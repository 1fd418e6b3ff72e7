package nodetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// APIServerAddress is where the nodes reach the test's kube-apiserver:
// the bridge's address, forwarded to the server on the host's loopback.
const APIServerAddress = bridgeAddress + ":6443"

// bridgeAddress is the bridge's own address on the nodes' network, their
// default route.
const bridgeAddress = "10.250.0.254"

// WithAPIServer registers the kubelets with the kube-apiserver at
// serverURL (https://127.0.0.1:PORT, as internal/kubetest starts it),
// authenticating with token: the nodes appear as Node objects and their
// static pods as mirror pods. The nodes reach it at APIServerAddress.
func WithAPIServer(serverURL, token string) Option {
	return func(o *Options) { o.APIServerURL, o.APIServerToken = serverURL, token }
}

// forwardAPIServer listens on APIServerAddress in the bridge's namespace
// and copies every connection to the host's server, until the cluster
// stops.
func (c *Cluster) forwardAPIServer() error {
	u, err := url.Parse(c.Options.APIServerURL)
	if err != nil {
		return fmt.Errorf("kube-apiserver URL: %w", err)
	}
	l, err := listenIn(filepath.Join(netnsDir, c.bridge), "tcp", APIServerAddress)
	if err != nil {
		return fmt.Errorf("forwarding %s to %s: %w", APIServerAddress, u.Host, err)
	}
	c.stopForward = forward(l, func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	})
	return nil
}

// Kubeconfig is a kubeconfig for reaching the kube-apiserver from inside
// the nodes (WithAPIServer); its token is the one the cluster was given.
// The server's certificate does not name the forwarded address, so the
// file skips verifying it: it is a test's own server on a private network.
func (c *Cluster) Kubeconfig() string {
	return filepath.Join(baseDir, c.id[len(Prefix):], "kubeconfig")
}

func (c *Cluster) writeKubeconfig() error {
	if err := os.MkdirAll(filepath.Dir(c.Kubeconfig()), 0o700); err != nil {
		return err
	}
	return os.WriteFile(c.Kubeconfig(), []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://%s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context:
    cluster: test
    user: admin
    namespace: kube-system
current-context: test
`, APIServerAddress, c.Options.APIServerToken)), 0o600)
}

// EgressProxy lets a kube-apiserver on the host reach the kubelets (exec,
// port-forward, logs): an HTTP CONNECT proxy on the host's loopback, named
// in the server's EgressSelectorConfiguration for "cluster" traffic, that
// opens each tunnel from inside the nodes' network. It listens on a unix
// socket: kube-apiserver 1.37 crashes on a plain-HTTP TCP proxy (it reads
// the TLS settings such a transport has none of).
type EgressProxy struct {
	// Socket is the unix socket the proxy listens on.
	Socket string

	mu     sync.Mutex
	bridge string // the namespace to dial from, once a cluster uses the proxy
	server *http.Server
}

// StartEgressProxy starts the proxy on the host's filesystem; Start with WithEgressProxy points it
// at the cluster's network. It stops when the test ends.
func StartEgressProxy(t testing.TB) *EgressProxy {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "egress.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	p := &EgressProxy{Socket: socket}
	p.server = &http.Server{Handler: http.HandlerFunc(p.connect)}
	go func() { _ = p.server.Serve(l) }()
	t.Cleanup(func() { p.server.Close() })
	return p
}

func (p *EgressProxy) connect(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	bridge := p.bridge
	p.mu.Unlock()
	if r.Method != http.MethodConnect || bridge == "" {
		http.Error(w, "CONNECT to a node only", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out, err := dialIn(ctx, bridge, "tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		out.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	in, buf, err := hj.Hijack()
	if err != nil {
		out.Close()
		return
	}
	_, _ = in.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	go func() {
		if buf.Reader.Buffered() > 0 {
			_, _ = io.CopyN(out, buf, int64(buf.Reader.Buffered()))
		}
		_, _ = io.Copy(out, in)
		out.Close()
	}()
	go func() { _, _ = io.Copy(in, out); in.Close() }()
}

// WriteEgressConfig writes the EgressSelectorConfiguration for
// kube-apiserver's --egress-selector-config-file into dir.
func (p *EgressProxy) WriteEgressConfig(t testing.TB, dir string) string {
	t.Helper()
	file := filepath.Join(dir, "egress-selector.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %s
`, p.Socket)), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// WithEgressProxy points p at the cluster's network.
func WithEgressProxy(p *EgressProxy) Option { return func(o *Options) { o.EgressProxy = p } }
