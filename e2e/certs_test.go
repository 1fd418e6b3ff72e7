package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

const restartLock = "/kubectl-etcd/locks/etcd-restart"

// renewArgs renews every etcd certificate of n and restarts its etcd.
func (n *bootNode) renewArgs(extra ...string) []string {
	return append([]string{"certs", "renew", "all", "--restart", "--timeout", "1m", "--lock-timeout", "2m",
		"--pki-dir", filepath.Join(n.dir, "pki"), "--manifests-dir", filepath.Join(n.dir, "manifests")}, extra...)
}

// servedNotBefore is the NotBefore of the server certificate n's etcd
// presents to a new client connection, read as a client sees it.
func servedNotBefore(t *testing.T, n *bootNode) time.Time {
	t.Helper()
	cfg := n.config(t, n).TLS()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(n.ip, n.client), cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", n.name, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].NotBefore
}

// writer puts a new key every 50ms through a client balanced over every
// endpoint, as the kube-apiserver does with --etcd-servers, and records
// each write that fails.
type writer struct {
	stop     chan struct{}
	done     chan struct{}
	ok       int
	failures []string
}

func startWriter(t *testing.T, cfg *connect.Config, prefix string) *writer {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cli.Close()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			_, err := cli.Put(ctx, fmt.Sprintf("%s%06d", prefix, i), "v")
			cancel()
			if err != nil {
				w.failures = append(w.failures, fmt.Sprintf("%s put %d after %s: %v", start.Format("15:04:05.000"), i, time.Since(start).Round(time.Millisecond), err))
			} else {
				w.ok++
			}
		}
	}()
	return w
}

func (w *writer) finish() {
	close(w.stop)
	<-w.done
}

// downWatch samples which nodes' etcd processes run and keeps the most
// that were down at the same time.
type downWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	maxDown int
	when    string
}

func watchDown(nodes []*bootNode) *downWatch {
	d := &downWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for {
			select {
			case <-d.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var down []string
			for _, n := range nodes {
				if !n.kubelet.Running() {
					down = append(down, n.name)
				}
			}
			d.mu.Lock()
			if len(down) > d.maxDown {
				d.maxDown = len(down)
				d.when = time.Now().Format("15:04:05.000") + ": " + strings.Join(down, ",")
			}
			d.mu.Unlock()
		}
	}()
	return d
}

func (d *downWatch) finish() (int, string) {
	close(d.stop)
	<-d.done
	return d.maxDown, d.when
}

// rollingRenewal renews the certificates of every node and restarts its
// etcd with `certs renew all --restart`: the first node alone, then two
// nodes at once, as a script run on every node would. A writer writes
// through every endpoint all along. Every write must succeed, no two
// members may be down at once, each member must serve its renewed
// certificate afterwards, and all must hold the same data.
func rollingRenewal(t *testing.T, nodes []*bootNode) {
	all := nodes[0].config(t, nodes...)
	before := map[string]time.Time{}
	starts := map[string]int{}
	for _, n := range nodes {
		before[n.name] = servedNotBefore(t, n)
		starts[n.name] = n.kubelet.Starts()
	}
	// Certificates carry whole seconds: make sure the renewed ones are later.
	time.Sleep(time.Until(latest(before).Add(time.Second)))

	w := startWriter(t, all, "/rolling/")
	down := watchDown(nodes)
	began := time.Now()

	t.Logf("renew and restart %s alone", nodes[0].name)
	r := mustPlugin(t, nodes[0].renewArgs()...)
	for _, want := range []string{
		"Preflight: restart member " + nodes[0].name,
		"quorum: 2 -> 2 (healthy voters: 3 -> 2)",
		"verdict: safe",
		"Took lock " + restartLock,
		"Released lock " + restartLock,
		"Every member serves",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("%s: stderr lacks %q:\n%s", nodes[0].name, want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "etcd-server renewed") || !strings.Contains(r.stdout, "etcd restarted") {
		t.Errorf("%s: stdout:\n%s", nodes[0].name, r.stdout)
	}

	t.Logf("renew and restart %s and %s at the same time: the lock makes them take turns", nodes[1].name, nodes[2].name)
	pair := nodes[1:3]
	results := make([]result, len(pair))
	errs := make([]error, len(pair))
	var wg sync.WaitGroup
	for i, n := range pair {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = runPlugin(t, nil, n.renewArgs()...)
		}()
	}
	wg.Wait()
	waiters := 0
	for i, n := range pair {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].code != 0 {
			t.Errorf("%s: exit %d\n%s", n.name, results[i].code, results[i].stderr)
		}
		if strings.Contains(results[i].stderr, "Waiting for lock "+restartLock) {
			waiters++
			other := pair[1-i]
			if !strings.Contains(results[i].stderr, "member "+other.name+" on host") {
				t.Errorf("%s waited without naming %s, which held the lock:\n%s", n.name, other.name, results[i].stderr)
			}
		}
	}
	if waiters != 1 {
		t.Errorf("%d of the two concurrent restarts waited for the lock, want exactly 1:\n%s\n---\n%s", waiters, results[0].stderr, results[1].stderr)
	}

	maxDown, when := down.finish()
	w.finish()
	t.Logf("%d writes during the %s of rolling restarts, %d failed; at most %d member(s) down at once (%s)",
		w.ok, time.Since(began).Round(100*time.Millisecond), len(w.failures), maxDown, when)
	if maxDown > 1 {
		t.Errorf("%d members were down at the same time (%s)", maxDown, when)
	}
	if maxDown == 0 {
		t.Error("no member was ever seen down: did the restarts happen?")
	}
	for _, f := range w.failures {
		t.Errorf("write failed: %s", f)
	}
	if w.ok < 40 {
		t.Errorf("only %d writes succeeded", w.ok)
	}

	for _, n := range nodes {
		if got := n.kubelet.Starts() - starts[n.name]; got != 1 {
			t.Errorf("%s's etcd was started %d times, want 1", n.name, got)
		}
		after := servedNotBefore(t, n)
		if !after.After(before[n.name]) {
			t.Errorf("%s serves a certificate from %s, not later than the one before renewal (%s)", n.name, after, before[n.name])
		}
	}
	cli, err := all.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/rolling/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.Count) != w.ok {
		t.Errorf("%d keys stored, %d writes succeeded", resp.Count, w.ok)
	}
	sameData(t, all)
}

func latest(times map[string]time.Time) time.Time {
	var l time.Time
	for _, t := range times {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// restartRefusedWhileDown hangs the etcd of down and checks that a
// restart on n is refused with one error line naming it, leaving n's etcd
// running, then lets down continue.
func restartRefusedWhileDown(t *testing.T, n, down *bootNode, all *connect.Config) {
	starts := n.kubelet.Starts()
	down.kubelet.Pause()
	r := plugin(t, nil, n.renewArgs()...)
	down.kubelet.Resume()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code == 0 || !strings.HasPrefix(last, "error: refusing to restart member "+n.name) ||
		!strings.Contains(last, "member "+down.name+" (") || !strings.Contains(last, "--force") {
		t.Errorf("restart with %s hung: exit %d, stderr:\n%s", down.name, r.code, r.stderr)
	}
	if strings.Count(r.stderr, "error: ") != 1 {
		t.Errorf("want one error line:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "REFUSED: member "+down.name) {
		t.Errorf("the preflight does not name %s:\n%s", down.name, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(n.dir, "manifests", "etcd.yaml")); err != nil {
		t.Errorf("manifest after a refused restart: %v", err)
	}
	if n.kubelet.Starts() != starts || !n.kubelet.Running() {
		t.Errorf("%s's etcd was restarted although the preflight refused", n.name)
	}
	sameData(t, all)
}
