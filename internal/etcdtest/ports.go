package etcdtest

import (
	"net"
	"testing"
)

// FreePorts returns n TCP ports free on the loopback network. Each stays
// taken until all are chosen, so no port is given twice.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
