//go:build !windows

package sandbox

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// detach puts the member in its own session so it survives the shell that
// ran `sandbox up` and does not get that terminal's signals.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

func terminate(pid int) { _ = syscall.Kill(pid, syscall.SIGTERM) }

func kill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// isMemberProcess reports whether pid is alive and runs configFile. Where
// /proc exists the command line is checked, so a PID the system reused for
// another program is not taken for a member.
func isMemberProcess(pid int, configFile string) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return !procExists()
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && isZombie(stat) {
		return false
	}
	return bytes.Contains(cmdline, []byte(configFile))
}

// alive reports whether pid still runs (a zombie has stopped running).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || !isZombie(stat)
}

func procExists() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}

// isZombie reads the state field of /proc/PID/stat ("pid (comm) S ...").
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
