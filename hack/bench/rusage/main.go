// Command rusage runs a command and reports its resource usage as wait4
// gives it: peak resident memory, user and system time, as one JSON line on
// file descriptor 3.
//
// The benchmark starts every measured command through this small program.
// Linux counts in a child's peak RSS the memory of the process that forked
// it (the address space is shared until exec), so a command forked straight
// from the benchmark, which holds the Kubernetes scheme and its data, would
// report the benchmark's size instead of its own.
//
// SIGTERM and SIGINT are passed on to the command, and its death by them
// is not a failure: the benchmark stops a watch, which does not end by
// itself, once it has printed what is measured.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rusage COMMAND [ARG...]  (report on fd 3)")
		os.Exit(2)
	}
	// Caught, not ignored: an ignored signal would stay ignored in the
	// command.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stopped atomic.Bool
	err := cmd.Start()
	if err == nil {
		go func() {
			for s := range sigs {
				stopped.Store(true)
				_ = cmd.Process.Signal(s)
			}
		}()
		err = cmd.Wait()
	}
	code := 0
	if err != nil {
		code = 1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && stopped.Load() &&
				(ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGINT) {
				code = 0
			}
		} else {
			fmt.Fprintln(os.Stderr, "rusage:", err)
			os.Exit(127)
		}
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	report := os.NewFile(3, "report")
	json.NewEncoder(report).Encode(map[string]int64{
		"maxRSSKiB": ru.Maxrss,
		"userNs":    ru.Utime.Nano(),
		"sysNs":     ru.Stime.Nano(),
	})
	os.Exit(code)
}
