package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

const restartLock = "/kubectl-etcd/locks/etcd-restart"

// renewArgs renews every etcd certificate of n and restarts its etcd.
func (n *bootNode) renewArgs(extra ...string) []string {
	args := append([]string{"certs", "renew", "all", "--restart", "--timeout", "1m", "--lock-timeout", "2m"}, n.manifestFlags()...)
	return append(args, extra...)
}

// servedNotBefore is the NotBefore of the server certificate n's etcd
// presents to a new client connection, read as a client sees it.
func servedNotBefore(t *testing.T, n *bootNode) time.Time {
	t.Helper()
	conn, err := handshake(n, n.config(t, n).TLS(), 5*time.Second)
	if err != nil {
		t.Fatalf("TLS to %s: %v", n.name, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].NotBefore
}

// serveWatch opens a TLS connection to each member's client port every
// 50ms and records the windows in which a member did not complete the
// handshake. etcd completes handshakes only once it is ready to serve
// (before, the kernel queues the connection) and closes its listener as
// soon as it begins to stop, so a handshake says "serving" without the
// reconnect back-off a long-lived client would add to the time a member
// looks down.
type serveWatch struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	down map[string][][2]time.Time
}

func watchServing(t *testing.T, nodes []*bootNode) *serveWatch {
	t.Helper()
	sw := &serveWatch{stop: make(chan struct{}), down: map[string][][2]time.Time{}}
	for _, n := range nodes {
		tlsCfg := n.config(t, n).TLS()
		sw.wg.Add(1)
		go func() {
			defer sw.wg.Done()
			var since time.Time // zero while the member answers
			for {
				select {
				case <-sw.stop:
					if !since.IsZero() {
						sw.record(n.name, since, time.Now())
					}
					return
				case <-time.After(50 * time.Millisecond):
				}
				at := time.Now()
				conn, err := handshake(n, tlsCfg, time.Second)
				ok := err == nil
				if ok {
					conn.Close()
				}
				switch {
				case !ok && since.IsZero():
					since = at
				case ok && !since.IsZero():
					// Back when the handshake completed: a connection
					// queued before etcd was ready completes once it is.
					sw.record(n.name, since, time.Now())
					since = time.Time{}
				}
			}
		}()
	}
	return sw
}

// handshake completes a TLS handshake with n's etcd from inside n (the
// test process lives outside every node's network).
func handshake(n *bootNode, tlsCfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	raw, err := n.node.Dial(ctx, net.JoinHostPort(n.ip, n.client))
	if err != nil {
		return nil, err
	}
	cfg := tlsCfg.Clone()
	cfg.ServerName = n.ip
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

func (sw *serveWatch) record(name string, from, to time.Time) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.down[name] = append(sw.down[name], [2]time.Time{from, to})
}

// finish stops watching and checks that each node was down (its restart
// happened) and no two were down at the same time.
func (sw *serveWatch) finish(t *testing.T, nodes []*bootNode) {
	t.Helper()
	close(sw.stop)
	sw.wg.Wait()
	clock := func(at time.Time) string { return at.Format("15:04:05.000") }
	for _, n := range nodes {
		for _, d := range sw.down[n.name] {
			t.Logf("%s did not answer from %s for %s", n.name, clock(d[0]), d[1].Sub(d[0]).Round(time.Millisecond))
		}
		if len(sw.down[n.name]) == 0 {
			t.Errorf("%s answered throughout: was it restarted?", n.name)
		}
	}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			for _, da := range sw.down[a.name] {
				for _, db := range sw.down[b.name] {
					if da[0].Before(db[1]) && db[0].Before(da[1]) {
						t.Errorf("%s (%s-%s) and %s (%s-%s) were down at the same time", a.name, clock(da[0]), clock(da[1]), b.name, clock(db[0]), clock(db[1]))
					}
				}
			}
		}
	}
}

// rollingRenewal renews the certificates of every node and restarts its
// etcd with `certs renew all --restart`: the first node alone, then two
// nodes at once, as a script run on every node would. A writer writes
// through every endpoint all along. Every write must succeed (but for what
// etcd itself loses when leadership moves), no two members may be down at
// once, each member must serve its renewed certificate afterwards, and all
// must hold the same data.
func rollingRenewal(t *testing.T, nodes []*bootNode) {
	all := nodes[0].config(t, nodes...)
	before := map[string]time.Time{}
	starts := map[string]int{}
	for _, n := range nodes {
		before[n.name] = servedNotBefore(t, n)
		starts[n.name] = n.node.EtcdStarts()
	}
	// Certificates carry whole seconds: make sure the renewed ones are later.
	time.Sleep(time.Until(latest(before).Add(time.Second)))

	t.Logf("dry run on %s: the preflight and the steps, nothing renewed or restarted", nodes[0].name)
	r := nodes[0].mustKubectl(t, nodes[0].renewArgs("--dry-run")...)
	for _, want := range []string{
		"Preflight: restart member " + nodes[0].name,
		"verdict: safe",
		"[dry-run] would take lock " + restartLock + " through " + nodes[1].url() + ", " + nodes[2].url() + " (free now)",
		"[dry-run] would move " + nodes[0].node.EtcdManifest() + " away",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("dry run: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if nodes[0].node.EtcdStarts() != starts[nodes[0].name] || !servedNotBefore(t, nodes[0]).Equal(before[nodes[0].name]) {
		t.Error("the dry run restarted etcd or renewed its certificate")
	}

	began := time.Now()
	// A plain client, as the kube-apiserver has with --etcd-servers.
	wcli, err := all.Client()
	if err != nil {
		t.Fatal(err)
	}
	w := etcdtest.StartWriter(t, wcli, "/rolling/", 50*time.Millisecond)
	sw := watchServing(t, nodes)

	t.Logf("renew and restart %s alone", nodes[0].name)
	r = nodes[0].mustKubectl(t, nodes[0].renewArgs()...)
	t.Logf("%s:\n%s", nodes[0].name, r.stderr)
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
	results, errs := etcdtest.AtOnce(pair, func(n *bootNode) (result, error) { return n.kubectl(t, n.renewArgs()...) })
	waiters := 0
	for i, n := range pair {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Logf("%s:\n%s", n.name, results[i].stderr)
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

	ok, failures := w.Finish()
	t.Logf("%d writes during the %s of rolling restarts, %d failed", ok, time.Since(began).Round(100*time.Millisecond), len(failures))
	sw.finish(t, nodes)
	// Restarting the leader needs one leadership move: etcdtest.CheckWrites
	// allows one write lost to each.
	etcdtest.CheckWrites(t, failures, r.stderr+results[0].stderr+results[1].stderr)
	if ok < 40 {
		t.Errorf("only %d writes succeeded", ok)
	}

	for _, n := range nodes {
		if got := n.node.EtcdStarts() - starts[n.name]; got != 1 {
			t.Errorf("%s's etcd was started %d times, want 1", n.name, got)
		}
		after := servedNotBefore(t, n)
		if !after.After(before[n.name]) {
			t.Errorf("%s serves a certificate from %s, not later than the one before renewal (%s)", n.name, after, before[n.name])
		}
	}
	cli := etcdtest.Client(t, all)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/rolling/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.Count) != ok {
		t.Errorf("%d keys stored, %d writes succeeded", resp.Count, ok)
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
	starts := n.node.EtcdStarts()
	down.node.PauseEtcd()
	r, err := n.kubectl(t, n.renewArgs()...)
	down.node.ResumeEtcd()
	if err != nil {
		t.Fatal(err)
	}
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
	if _, err := os.Stat(n.node.EtcdManifest()); err != nil {
		t.Errorf("manifest after a refused restart: %v", err)
	}
	if running, err := n.node.EtcdRunning(); n.node.EtcdStarts() != starts || !running || err != nil {
		t.Errorf("%s's etcd was restarted although the preflight refused", n.name)
	}
	sameData(t, all)
}
