// Package weed runs a real S3-compatible store on this machine: SeaweedFS's
// `weed server` (master, volume, filer and S3 gateway in one process) on
// free ports of 127.0.0.1, built once from the Go module proxy by
// hack/build-weed.sh and cached outside the repository. Tests reach it
// through internal/s3test, which stops it when the test ends; the
// benchmark (hack/bench) starts it for its s3:// rows.
package weed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kubectl-etcd/kubectl-etcd/internal/hackscript"
	"github.com/kubectl-etcd/kubectl-etcd/internal/proc"
	"github.com/kubectl-etcd/kubectl-etcd/internal/s3bucket"
)

// Build returns the path of the weed binary: hack/build-weed.sh prints
// the cached directory at once, waits for a build another process runs,
// or builds (minutes on a fresh machine).
func Build() (string, error) {
	script := hackscript.Path("build-weed.sh")
	out, err := hackscript.Output(script)
	if err != nil {
		return "", err
	}
	b := filepath.Join(out, "weed")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("%s printed a directory without weed: %v", script, err)
	}
	return b, nil
}

// Credentials are an access key the server accepts.
type Credentials struct {
	AccessKey, SecretKey string
}

// Server is a weed server with its S3 gateway.
type Server struct {
	// Binary is the weed program; Dir holds its data and configuration.
	Binary, Dir string
	// Endpoint is the S3 URL, http://127.0.0.1:PORT.
	Endpoint string
	// Credentials are the accepted keys, nil when any request is.
	Credentials *Credentials
	// Args are more flags of `weed server`, after the defaults (the last
	// of a repeated flag wins).
	Args []string
	// TLS, when set, serves S3 over HTTPS only (Endpoint https://...).
	TLS *TLS

	ports  [4]int
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedWriter
}

// TLS are the files of an S3 gateway served over HTTPS: a certificate
// for 127.0.0.1 and its key (weed's -s3.cert.file, -s3.key.file), and the
// CA that signed it, which clients must trust.
type TLS struct {
	CAFile, CertFile, KeyFile string
}

// Start runs weed from bin with its data in dir on free loopback ports
// and waits until S3 answers. With creds, only those keys are accepted
// (weed's -s3.config); without, any request is. args are more flags of
// `weed server`.
func Start(bin, dir string, creds *Credentials, args ...string) (*Server, error) {
	return StartTLS(bin, dir, creds, nil, args...)
}

// StartTLS is Start with S3 served over HTTPS with the certificate of tls
// (plain HTTP when tls is nil).
func StartTLS(bin, dir string, creds *Credentials, tls *TLS, args ...string) (*Server, error) {
	ports, err := freePorts()
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if tls != nil {
		scheme = "https"
	}
	s := &Server{Binary: bin, Dir: dir, Credentials: creds, Args: args, TLS: tls, ports: ports,
		Endpoint: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[3])}
	return s, s.Start()
}

// Start starts the server again on the same data and ports after Stop or
// Kill.
func (s *Server) Start() error {
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	args := []string{"server",
		"-dir", data, "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1",
		"-master.port", fmt.Sprint(s.ports[0]), "-volume.port", fmt.Sprint(s.ports[1]),
		"-filer.port", fmt.Sprint(s.ports[2]), "-s3", "-s3.port", fmt.Sprint(s.ports[3]),
		// By default the master reports usage to an outside host.
		"-master.telemetry=false",
		"-master.volumeSizeLimitMB", "64", "-volume.max", "20",
	}
	if s.Credentials != nil {
		cfg := filepath.Join(s.Dir, "s3.json")
		doc := map[string]any{"identities": []any{map[string]any{
			"name":        "test",
			"credentials": []any{map[string]string{"accessKey": s.Credentials.AccessKey, "secretKey": s.Credentials.SecretKey}},
			"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
		}}}
		b, _ := json.Marshal(doc)
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			return err
		}
		args = append(args, "-s3.config", cfg)
	}
	if s.TLS != nil {
		// With a key and no -s3.port.https, -s3.port serves HTTPS only.
		args = append(args, "-s3.cert.file", s.TLS.CertFile, "-s3.key.file", s.TLS.KeyFile)
	}
	args = append(args, s.Args...)
	s.log = &lockedWriter{}
	cmd := exec.Command(s.Binary, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting weed: %w", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.exited)
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Kill()
		return fmt.Errorf("weed S3 on %s: %v\n%s", s.Endpoint, err, tailLines(s.log.String(), 30))
	}
	return nil
}

// waitReady polls until the S3 gateway answers a bucket listing and the
// filer behind it can store data: a write right after the port opens can
// still fail while the master assigns its first volumes.
func (s *Server) waitReady(timeout time.Duration) error {
	client, err := s.HTTPClient()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("weed exited")
		default:
		}
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			// 200 anonymous, 403 with identities: the gateway is up.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusForbidden {
				if err := s.probeWrite(); err == nil {
					return nil
				} else {
					last = err
				}
			} else {
				last = fmt.Errorf("status %s", resp.Status)
			}
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

// probeWrite stores and removes a small file through the filer.
func (s *Server) probeWrite() error {
	url := fmt.Sprintf("http://127.0.0.1:%d/.s3test-probe", s.ports[2])
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("ok"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("filer write: %s", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodDelete, url, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period); the
// data stays for Start.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	proc.Stop(s.cmd.Process, s.exited)
	s.cmd = nil
}

// Kill kills the server outright, as a crash or a lost network would stop
// it mid-request.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// PID is the server's process ID (0 when it is not running): the
// benchmark reads its CPU time and pins it to a core.
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// HTTPClient returns an HTTP client for the server's S3 endpoint: one
// that trusts the server's CA when it serves HTTPS.
func (s *Server) HTTPClient() (*http.Client, error) {
	if s.TLS == nil {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(s.TLS.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", s.TLS.CAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// Client returns an S3 client of the AWS SDK for the server, path-style,
// signed with the server's credentials (any keys when it has none), and
// trusting its CA over HTTPS: what a test or the benchmark uses to look
// at the bucket behind the plugin's back.
func (s *Server) Client() *s3.Client {
	creds := Credentials{AccessKey: "any", SecretKey: "any"}
	if s.Credentials != nil {
		creds = *s.Credentials
	}
	var hc *http.Client
	if s.TLS != nil {
		hc, _ = s.HTTPClient()
	}
	return s3bucket.Client(s.Endpoint, creds.AccessKey, creds.SecretKey, hc)
}

// CreateBucket creates a bucket through the S3 API.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	return s3bucket.Create(ctx, s.Client(), name)
}

// Keys lists every object key in bucket under prefix, in order.
func (s *Server) Keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	return s3bucket.Keys(ctx, s.Client(), bucket, prefix)
}

// Uploads lists the multipart uploads in bucket that are neither
// completed nor aborted.
func (s *Server) Uploads(ctx context.Context, bucket string) ([]types.MultipartUpload, error) {
	return s3bucket.Uploads(ctx, s.Client(), bucket)
}

// AbortUploads aborts every unfinished multipart upload in bucket.
func (s *Server) AbortUploads(ctx context.Context, bucket string) error {
	return s3bucket.AbortUploads(ctx, s.Client(), bucket)
}

// Empty removes every object under prefix in bucket and aborts every
// unfinished upload there.
func (s *Server) Empty(ctx context.Context, bucket, prefix string) error {
	return s3bucket.Empty(ctx, s.Client(), bucket, prefix)
}

// freePorts finds four loopback ports below 55535 that are free, each
// with port+10000 free too: weed serves gRPC there.
func freePorts() ([4]int, error) {
	var out [4]int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := 0; i < len(out); {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return out, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port >= 55535 {
			l.Close()
			// Below the ephemeral range's top: ask for one near the bottom.
			port = 20000 + int(time.Now().UnixNano()%30000)
			l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				continue
			}
		}
		grpc, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, l, grpc)
		out[i] = port
		i++
	}
	return out, nil
}

// lockedWriter collects the server's output, written by two pipes.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedWriter) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
