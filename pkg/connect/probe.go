package connect

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect/kube"
)

func (c *Config) caName() string {
	if c.CACertPEM != nil {
		return c.CertSource + " (ca.crt)"
	}
	return c.CACertFile
}

// ServerVersion is what a member's /version endpoint reports.
type ServerVersion struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
}

// Probe checks that endpoint answers over the configured transport within
// the dial timeout: TCP, the TLS handshake in both directions, and an HTTP
// request to /version. Its errors name the cause and the fix, which gRPC's
// own errors ("context deadline exceeded") do not, so commands probe a
// member before they send it real requests.
func (c *Config) Probe(ctx context.Context, endpoint string) (*ServerVersion, error) {
	if why, ok := c.unreachable[endpoint]; ok {
		return nil, &EndpointError{Endpoint: endpoint, Reason: why}
	}
	if c.etcdctl != nil {
		// Through exec there is no connection to test: the pod must run,
		// and etcdctl reports the rest.
		if p, ok := kube.ForURL(c.Pods, endpoint); ok && !p.Running() {
			return nil, &EndpointError{Endpoint: endpoint, Reason: p.NotRunning()}
		}
		return &ServerVersion{}, nil
	}
	v, err := c.probe(ctx, endpoint)
	if err != nil {
		if t := c.tunnelAt(endpoint); t != nil {
			return nil, tunnelError(t, err)
		}
	}
	return v, err
}

// tunnelError says what happened in the tunnel: through port-forward a
// member that is down looks like a closed connection here.
func tunnelError(t *kube.Tunnel, err error) error {
	ee := &EndpointError{}
	if !errors.As(err, &ee) {
		ee = &EndpointError{Endpoint: t.LocalURL, Reason: err.Error(), Err: err}
	}
	reason := ee.Reason
	if terr := t.Err(); terr != nil {
		reason = terr.Error()
	} else if last := t.LastError(); last != nil {
		reason = last.Error()
	}
	return &EndpointError{Endpoint: ee.Endpoint + " (port-forward to pod " + t.Pod.String() + ")", Reason: reason, Err: err}
}

func (c *Config) probe(ctx context.Context, endpoint string) (*ServerVersion, error) {
	var connected atomic.Bool
	dialer := &net.Dialer{Timeout: c.DialTimeout}
	transport := &http.Transport{
		TLSClientConfig: c.TLS(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dial := dialer.DialContext
			if c.Dial != nil {
				dial = func(ctx context.Context, _, addr string) (net.Conn, error) {
					ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
					defer cancel()
					return c.Dial(ctx, addr)
				}
			}
			conn, err := dial(ctx, network, addr)
			if err == nil {
				connected.Store(true)
			}
			return conn, err
		},
		TLSHandshakeTimeout:   c.DialTimeout,
		ResponseHeaderTimeout: c.DialTimeout,
		DisableKeepAlives:     true,
	}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/version", nil)
	if err != nil {
		return nil, &EndpointError{Endpoint: endpoint, Reason: err.Error(), Err: err}
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return nil, c.explain(endpoint, err, connected.Load())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, c.explain(endpoint, err, true)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &EndpointError{Endpoint: endpoint, Reason: fmt.Sprintf("answered /version with HTTP %d: is this an etcd client URL?", resp.StatusCode)}
	}
	v := &ServerVersion{}
	if err := json.Unmarshal(body, v); err != nil || v.Server == "" {
		return nil, &EndpointError{Endpoint: endpoint, Reason: "answered /version with something other than etcd's version: is this an etcd client URL?"}
	}
	return v, nil
}

// EndpointError is a failure to reach one member, in words a user can act on.
type EndpointError struct {
	Endpoint string
	Reason   string
	Err      error
}

func (e *EndpointError) Error() string { return e.Endpoint + ": " + e.Reason }
func (e *EndpointError) Unwrap() error { return e.Err }

// explain turns a transport error into a sentence naming cause and fix.
func (c *Config) explain(endpoint string, err error, connected bool) error {
	reason := func(format string, args ...any) error {
		return &EndpointError{Endpoint: endpoint, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return reason("connection refused: etcd is not running there, or listens on another address or port")
	case errors.As(err, &dnsErr):
		return reason("cannot resolve host %q: check the endpoint's spelling", dnsErr.Name)
	case errors.As(err, &unknownCA):
		if c.CACertFile == "" && c.CACertPEM == nil {
			return reason("server certificate is signed by an unknown CA: pass the etcd CA with --cacert (kubeadm: %s/etcd/ca.crt)", DefaultPKIDir)
		}
		return reason("server certificate is not signed by the CA in %s: pass the etcd CA that signed it with --cacert", c.caName())
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return reason("server certificate has expired or is not yet valid (%s): renew the member's certificates (kubeadm certs renew etcd-server) or check the clock", invalid.Detail)
	case errors.As(err, &hostname):
		return reason("server certificate is not valid for this address (%v): use an address its SANs cover", hostname)
	case strings.Contains(msg, "tls: certificate required"):
		return reason("etcd requires a client certificate: pass --cert and --key (kubeadm: %s/etcd/healthcheck-client.crt and .key)", DefaultPKIDir)
	case strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: unknown certificate authority"),
		strings.Contains(msg, "remote error: tls: expired certificate"),
		strings.Contains(msg, "remote error: tls: unsupported certificate"),
		strings.Contains(msg, "remote error: tls: certificate unknown"):
		return reason("etcd rejected the client certificate %s (%s): it must be signed by the etcd CA, valid now, and allowed for client auth", c.ClientCertName(), remoteAlert(msg))
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"),
		strings.Contains(msg, "first record does not look like a TLS handshake"):
		return reason("the server does not speak TLS: use an http:// endpoint with --insecure-plaintext, or enable TLS on etcd")
	case strings.HasPrefix(endpoint, "http://") && (strings.Contains(msg, "malformed HTTP response") ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return reason("the server expects TLS: use https:// with --cacert/--cert/--key")
	case isTimeout(err) && connected:
		return reason("accepted the connection but did not answer within %s: the member is hung (paused, overloaded or stuck on disk)", c.DialTimeout)
	case isTimeout(err):
		return reason("no answer within %s: the member is down or unreachable (host, port, firewall)", c.DialTimeout)
	}
	return reason("%v", err)
}

func remoteAlert(msg string) string {
	if i := strings.Index(msg, "remote error: "); i >= 0 {
		return msg[i+len("remote error: "):]
	}
	return msg
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// ProbeAll probes every endpoint in parallel and returns the failures in
// endpoint order; nil when all answered.
func (c *Config) ProbeAll(ctx context.Context, endpoints []string) []error {
	errs := make([]error, len(endpoints))
	done := make(chan struct{})
	for i, ep := range endpoints {
		go func() {
			_, errs[i] = c.Probe(ctx, ep)
			done <- struct{}{}
		}()
	}
	for range endpoints {
		<-done
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return failed
}
