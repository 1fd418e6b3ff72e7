// Command pause is the sandbox ("pause") container of the test nodes'
// pods: it holds the pod's namespaces and does nothing until it is told
// to stop. Built static, it is the whole of the image hack/node-prereqs.sh
// tags registry.k8s.io/pause:3.10 so that containerd never pulls one.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
