package nodetest

import (
	"context"
	"io"
	"net"
	"path/filepath"
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
	t.Cleanup(forward(l, func(ctx context.Context) (net.Conn, error) { return n.Dial(ctx, addr) }))
	return l.Addr().String()
}

// Expose makes a server on the host's loopback (addr, host:port)
// reachable from every node: it listens on a free port of the bridge's
// address, which each node routes to, and copies every connection to addr.
// It returns the address the nodes dial and stops when the test ends.
func (c *Cluster) Expose(t testing.TB, addr string) string {
	t.Helper()
	l, err := listenIn(filepath.Join(netnsDir, c.bridge), "tcp", bridgeAddress+":0")
	if err != nil {
		t.Fatalf("exposing %s to the nodes: %v", addr, err)
	}
	t.Cleanup(forward(l, func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}))
	return l.Addr().String()
}

// forward accepts connections on l and copies each, both ways, to a
// connection dial makes, until the returned stop is called: it closes l
// and every connection and waits for the copies to end.
func forward(l net.Listener, dial func(context.Context) (net.Conn, error)) (stop func()) {
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
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, err := dial(ctx)
				cancel()
				if err != nil {
					in.Close()
					return
				}
				track(in, true)
				track(out, true)
				splice(in, out)
				track(in, false)
				track(out, false)
			}()
		}
	}()
	return func() {
		l.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// splice copies between a and b both ways until both directions end,
// closing each side when what it receives ends.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(b, a); b.Close() }()
	go func() { defer wg.Done(); _, _ = io.Copy(a, b); a.Close() }()
	wg.Wait()
}
