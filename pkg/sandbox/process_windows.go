//go:build windows

package sandbox

import (
	"os"
	"os/exec"
)

func detach(cmd *exec.Cmd) {}

func terminate(pid int) { kill(pid) }

func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// isMemberProcess cannot check the command line on Windows; a process with
// the PID is taken to be the member.
func isMemberProcess(pid int, configFile string) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

// alive reports whether a process with pid exists.
func alive(pid int) bool { return isMemberProcess(pid, "") }
