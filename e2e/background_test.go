package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// background is a kubectl-etcd started in the background, whose stderr a test
// can wait on while it runs: a test that must act while the plugin waits
// (kill a member, move the leader) acts when the plugin says it waits.
type background struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	exited chan struct{}
	res    result
}

// lockedWriter appends to a buffer under the background plugin's lock, so the
// test can read stderr while the process writes it.
type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// startPlugin starts kubectl-etcd with args in the environment plugin
// gives it; the process is killed at cleanup if still running.
func startPlugin(t *testing.T, args ...string) *background {
	t.Helper()
	r := &background{t: t, args: args, cmd: pluginCommand(nil, args...), exited: make(chan struct{})}
	r.cmd.Stdout = lockedWriter{&r.mu, &r.stdout}
	r.cmd.Stderr = lockedWriter{&r.mu, &r.stderr}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting kubectl-etcd %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := r.cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		r.mu.Lock()
		r.res = result{r.stdout.String(), r.stderr.String(), code}
		r.mu.Unlock()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	})
	return r
}

// waitStderr waits until the plugin's stderr contains want, and fails the
// test when it exits first or says nothing of the kind within timeout.
func (r *background) waitStderr(want string, timeout time.Duration) {
	r.t.Helper()
	err := poll.Until(context.Background(), "kubectl-etcd to say "+want, 20*time.Millisecond, timeout, func(context.Context) error {
		select {
		case <-r.exited:
			return poll.Stop(errors.New("kubectl-etcd exited first"))
		default:
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if !strings.Contains(r.stderr.String(), want) {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.t.Fatalf("kubectl etcd %s: %v; stderr so far:\n%s", strings.Join(r.args, " "), err, r.stderr.String())
	}
}

// wait returns the plugin's output and exit code once it exits.
func (r *background) wait() result {
	r.t.Helper()
	<-r.exited
	r.t.Logf("kubectl etcd %s -> exit %d", strings.Join(r.args, " "), r.res.code)
	return r.res
}
