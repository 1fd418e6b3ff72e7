package nodetest

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Forward listens on a free port of the host's loopback and copies every
// connection to addr as dialled from inside the node, so a program on the
// host (a kube-apiserver) reaches what listens only in the node's network,
// its etcd for one. The server's certificate names 127.0.0.1, so TLS
// verifies through the forward. It returns host:port and stops when the
// test ends. A connection that cannot be made inside the node (the node's
// etcd is down) is closed at once, as a refused connection would be.
func (n *Node) Forward(t testing.TB, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
		conns  = map[net.Conn]bool{}
	)
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case on && closed:
			c.Close()
		case on:
			conns[c] = true
		default:
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				out, err := n.Dial(ctx, addr)
				cancel()
				if err != nil {
					in.Close()
					return
				}
				track(in, true)
				track(out, true)
				var pipes sync.WaitGroup
				pipes.Add(2)
				go func() { defer pipes.Done(); _, _ = io.Copy(out, in); out.Close() }()
				go func() { defer pipes.Done(); _, _ = io.Copy(in, out); in.Close() }()
				pipes.Wait()
				track(in, false)
				track(out, false)
			}()
		}
	}()
	return l.Addr().String()
}
