package kubetest

import (
	"os"
	"os/exec"
	"sync"

	"github.com/kubectl-etcd/kubectl-etcd/internal/proc"
)

// process is a program a test runs in the background (kube-apiserver,
// kwok): the command and a channel closed when it has exited.
type process struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// stop stops the program (proc.Stop) and waits for the exit. It is safe
// to call more than once.
func (p *process) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	proc.Stop(cmd.Process, done)
}

// logTail returns the last n lines of a log file.
func logTail(file string, n int) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	return tail(string(data), n)
}
