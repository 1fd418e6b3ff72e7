// Package s3test runs a real S3-compatible store for tests: SeaweedFS's
// `weed server` with its S3 gateway on 127.0.0.1, built once from the Go
// module proxy by hack/build-weed.sh and cached outside the repository. A
// test that needs it builds it rather than skipping; the server is stopped
// when the test ends and dies with the test binary.
package s3test

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/hackscript"
	"github.com/kubectl-etcd/kubectl-etcd/internal/proc"
)

var (
	binaryMu sync.Mutex
	binary   string
)

// Binary returns the path of the weed binary, running hack/build-weed.sh
// the first time in this process: it prints the cached directory at once,
// waits for a build another process runs, or builds (minutes on a fresh
// machine, so hack/test.sh builds it before the tests that need it).
func Binary(t testing.TB) string {
	t.Helper()
	binaryMu.Lock()
	defer binaryMu.Unlock()
	if binary != "" {
		return binary
	}
	script := hackscript.Path("build-weed.sh")
	out, err := hackscript.Output(script)
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(out, "weed")
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("%s printed a directory without weed: %v", script, err)
	}
	binary = b
	return b
}

// Credentials are an access key the server accepts.
type Credentials struct {
	AccessKey, SecretKey string
}

// Option changes how the server starts.
type Option func(*Server)

// WithCredentials turns on authentication: only these keys are accepted
// (weed's -s3.config). Without it the server accepts any request.
func WithCredentials(c Credentials) Option { return func(s *Server) { s.Credentials = &c } }

// Server is a running weed server with its S3 gateway.
type Server struct {
	T testing.TB
	// Endpoint is the S3 URL, http://127.0.0.1:PORT.
	Endpoint string
	// Credentials are the accepted keys, nil when any request is.
	Credentials *Credentials
	Dir         string

	ports  [4]int
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedWriter
}

// Start runs a weed server (master, volume, filer and S3 gateway in one
// process) on free loopback ports and waits until S3 answers.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{T: t, Dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	s.ports = freePorts(t, 4)
	s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", s.ports[3])
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server again on the same data and ports after Stop or
// Kill.
func (s *Server) Start() {
	t := s.T
	t.Helper()
	bin := Binary(t)
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
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
			t.Fatal(err)
		}
		args = append(args, "-s3.config", cfg)
	}
	s.log = &lockedWriter{}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting weed: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.exited)
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Kill()
		t.Fatalf("weed S3 on %s: %v\n%s", s.Endpoint, err, tailLines(s.log.String(), 30))
	}
}

// waitReady polls until the S3 gateway answers a bucket listing and the
// filer behind it can store data: a write right after the port opens can
// still fail while the master assigns its first volumes.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("weed exited")
		default:
		}
		resp, err := http.Get(s.Endpoint + "/")
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

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// CreateBucket creates a bucket through the S3 API. With credentials on,
// the request is signed by the AWS SDK (see Client).
func (s *Server) CreateBucket(ctx context.Context, name string) {
	s.T.Helper()
	if err := createBucket(ctx, s, name); err != nil {
		s.T.Fatalf("creating bucket %s: %v", name, err)
	}
}

// freePorts finds n loopback ports below 55535 that are free, each with
// port+10000 free too: weed serves gRPC there.
func freePorts(t testing.TB, n int) [4]int {
	t.Helper()
	var out [4]int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := 0; i < n; {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
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
	return out
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
