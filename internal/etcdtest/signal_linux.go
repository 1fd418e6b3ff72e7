//go:build linux

package etcdtest

import (
	"os"
	"os/exec"
	"syscall"
)

func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }
func pause(p *os.Process)     { _ = p.Signal(syscall.SIGSTOP) }
func resume(p *os.Process)    { _ = p.Signal(syscall.SIGCONT) }

// dieWithParent makes a member die when the test binary dies, even when it
// is killed before its cleanups run (a test timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
