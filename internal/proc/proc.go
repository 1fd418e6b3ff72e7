// Package proc stops the processes tests and benchmarks start (etcd,
// kube-apiserver, kwok) the way a service manager would.
package proc

import (
	"os"
	"syscall"
	"time"
)

// Grace is how long Stop waits after SIGTERM before it kills.
const Grace = 10 * time.Second

// Stop sends p SIGTERM and waits until exited is closed (whoever waits
// for the process closes it), killing p when it has not exited within
// Grace.
func Stop(p *os.Process, exited <-chan struct{}) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(Grace):
		_ = p.Kill()
		<-exited
	}
}
