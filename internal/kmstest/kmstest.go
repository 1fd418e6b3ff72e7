// Package kmstest runs the test KMS plugin (package kmsplugin, command
// kms-test-plugin) as a process for tests: no production KMS can run on the
// test machines, so this plugin stands in for one, speaking the real KMS v2
// (and v1beta1) gRPC API on a unix socket.
package kmstest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/kmstest/kmsplugin"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// NewKey makes a random 32-byte key encryption key with that id.
func NewKey(t testing.TB, id string) kmsplugin.Key {
	t.Helper()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	return kmsplugin.Key{ID: id, Secret: secret}
}

// Binary builds kms-test-plugin once per test process (go build's cache
// makes it quick) into the user's cache directory, beside the reference
// binaries, and returns its path. A failed build fails every test that
// asks.
func Binary(t testing.TB) string {
	t.Helper()
	binary, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return binary
}

// buildOnce builds to a temporary name and renames, which lets test
// processes of several packages build at once.
var buildOnce = sync.OnceValues(func() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "kubectl-etcd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".kms-test-plugin-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./kms-test-plugin")
	cmd.Dir = filepath.Dir(file)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kms-test-plugin: %v\n%s", err, out)
	}
	binary := filepath.Join(dir, "kms-test-plugin")
	return binary, os.Rename(tmp.Name(), binary)
})

// Plugin is a running kms-test-plugin process.
type Plugin struct {
	T testing.TB
	// Socket is the unix socket path; Endpoint is the same as an
	// EncryptionConfiguration's kms endpoint (unix:///...).
	Socket   string
	Endpoint string
	Keys     []kmsplugin.Key
	LogFile  string
	cmd      *exec.Cmd
}

// Start starts the plugin on socket with keys (the first current) and
// waits until it accepts connections. Cleanup kills it.
func Start(t testing.TB, socket string, keys ...kmsplugin.Key) *Plugin {
	t.Helper()
	p := &Plugin{T: t, Socket: socket, Endpoint: "unix://" + socket, Keys: keys, LogFile: socket + ".log"}
	t.Cleanup(p.Kill)
	p.Start()
	return p
}

// Start starts the stopped plugin again with its keys.
func (p *Plugin) Start() {
	p.T.Helper()
	if p.cmd != nil {
		return
	}
	args := []string{"--listen", p.Socket}
	for _, k := range p.Keys {
		args = append(args, "--key", k.ID+"="+base64.StdEncoding.EncodeToString(k.Secret))
	}
	log, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.T.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(Binary(p.T), args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Die with the test binary even when it is killed before cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.T.Fatalf("starting kms-test-plugin: %v", err)
	}
	p.cmd = cmd
	err = poll.Until(context.Background(), "kms-test-plugin to listen on "+p.Socket, 20*time.Millisecond, 30*time.Second, func(ctx context.Context) error {
		c, err := (&net.Dialer{}).DialContext(ctx, "unix", p.Socket)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		logText, _ := os.ReadFile(p.LogFile)
		p.T.Fatalf("%v\n%s", err, logText)
	}
}

// Restart kills the plugin and starts it with keys, the first current: a
// KMS rotating its key encryption key (new first, old ones still there to
// decrypt) or retiring one (left out).
func (p *Plugin) Restart(keys ...kmsplugin.Key) {
	p.T.Helper()
	p.Kill()
	p.Keys = keys
	p.Start()
}

// Kill kills the plugin (resuming it first if paused); its socket file goes.
func (p *Plugin) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	_ = os.Remove(p.Socket)
	p.cmd = nil
}

// Pause stops the plugin with SIGSTOP: its socket still accepts
// connections, but nothing answers, like a hung plugin.
func (p *Plugin) Pause() { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused plugin.
func (p *Plugin) Resume() { _ = p.cmd.Process.Signal(syscall.SIGCONT) }
