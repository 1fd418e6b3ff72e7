// Package etcdtest starts real etcd clusters for tests: in-process through
// etcd's embed package (fast), or as processes of real etcd binaries of a
// given release (built once from the Go module proxy and cached). Both use
// the sandbox layout: kubeadm-style TLS on 127.0.0.x addresses. Every member
// is stopped when the test ends, pass or fail.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubectl-etcd/kubectl-etcd/internal/hackscript"
	"github.com/kubectl-etcd/kubectl-etcd/internal/proc"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
)

// Options shape a test cluster.
type Options struct {
	Members int
	// QuotaBackendBytes is each member's database quota, 0 for etcd's default.
	QuotaBackendBytes int64
	// FeatureGates is etcd's --feature-gates, for etcd processes.
	FeatureGates string
}

// Option changes Options.
type Option func(*Options)

// WithClusterSize sets the number of members (default 3).
func WithClusterSize(n int) Option { return func(o *Options) { o.Members = n } }

// WithQuotaBackendBytes sets each member's database quota, so a test can
// fill it and raise the NOSPACE alarm with a few megabytes.
func WithQuotaBackendBytes(n int64) Option { return func(o *Options) { o.QuotaBackendBytes = n } }

// WithFeatureGates starts etcd processes with --feature-gates=gates.
func WithFeatureGates(gates string) Option { return func(o *Options) { o.FeatureGates = gates } }

func options(opts []Option) Options {
	o := Options{Members: 3}
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// prepare lays out a cluster in a temporary directory on random free ports,
// so parallel test packages do not collide.
func prepare(t testing.TB, o Options) *sandbox.State {
	t.Helper()
	s, err := sandbox.Prepare(sandbox.Spec{
		Dir:        t.TempDir(),
		Members:    o.Members,
		ClientPort: 20000 + rand.IntN(30000),
		Token:      fmt.Sprintf("test-%d", rand.Int()),

		QuotaBackendBytes: o.QuotaBackendBytes,
		FeatureGates:      o.FeatureGates,
	})
	if err != nil {
		t.Fatalf("preparing cluster: %v", err)
	}
	return s
}

// Cluster is what tests need of any running cluster.
type Cluster struct {
	T     testing.TB
	State *sandbox.State
}

// Config returns a connection to every member.
func (c *Cluster) Config() *connect.Config {
	c.T.Helper()
	cfg, err := c.State.Config()
	if err != nil {
		c.T.Fatalf("connection config: %v", err)
	}
	return cfg
}

// Client returns a client balanced over every member, closed at cleanup.
func (c *Cluster) Client() *clientv3.Client {
	c.T.Helper()
	cli, err := c.Config().Client()
	if err != nil {
		c.T.Fatalf("client: %v", err)
	}
	c.T.Cleanup(func() { cli.Close() })
	return cli
}

// ConnectArgs are the kubectl-etcd flags that reach the cluster.
func (c *Cluster) ConnectArgs() []string { return c.State.ConnectArgs() }

// WaitHealthy waits until every member answers a quorum read.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.T.Helper()
	cfg := c.Config()
	cli, err := cfg.Client()
	if err != nil {
		c.T.Fatalf("client: %v", err)
	}
	defer cli.Close()
	err = poll.Until(context.Background(), fmt.Sprintf("%d healthy members", len(c.State.Members)), 100*time.Millisecond, timeout, func(ctx context.Context) error {
		hs, err := cluster.CheckHealth(ctx, cfg, cli)
		if err != nil {
			return err
		}
		var unhealthy []string
		for _, h := range hs {
			if !h.Healthy {
				unhealthy = append(unhealthy, h.Name+": "+h.Error)
			}
		}
		if len(unhealthy) > 0 {
			return errors.New(strings.Join(unhealthy, "; "))
		}
		if len(hs) != len(c.State.Members) {
			return fmt.Errorf("%d members listed", len(hs))
		}
		return nil
	})
	if err != nil {
		c.T.Fatalf("cluster not healthy: %v", err)
	}
}

// startAll starts every member of the state with start and waits until the
// cluster is healthy. It first registers stop for every member, those that
// NewMember adds later included, so that no member outlives the test, pass,
// fail or a start that failed half-way.
func (c *Cluster) startAll(start, stop func(i int), healthyWithin time.Duration) {
	c.T.Helper()
	c.T.Cleanup(func() {
		for i := range c.State.Members {
			stop(i)
		}
	})
	for i := range c.State.Members {
		start(i)
	}
	c.WaitHealthy(healthyWithin)
}

// Embedded is a cluster whose members run inside the test process.
type Embedded struct {
	Cluster
	members []*embed.Etcd
}

// StartEmbedded starts an in-process cluster and waits until it is healthy.
func StartEmbedded(t testing.TB, opts ...Option) *Embedded {
	t.Helper()
	o := options(opts)
	c := &Embedded{Cluster: Cluster{T: t, State: prepare(t, o)}, members: make([]*embed.Etcd, o.Members)}
	c.startAll(c.Start, c.Stop, 30*time.Second)
	return c
}

// Start starts (or restarts, on its data) member i.
func (c *Embedded) Start(i int) {
	c.T.Helper()
	if c.members[i] != nil {
		return
	}
	m := c.State.Members[i]
	e, err := sandbox.StartEmbedded(m.ConfigFile, m.LogFile)
	if err != nil {
		c.T.Fatalf("starting %s: %v", c.State.Members[i].Name, err)
	}
	c.members[i] = e
}

// Stop stops member i; its data stays for Start.
func (c *Embedded) Stop(i int) {
	if c.members[i] == nil {
		return
	}
	c.members[i].Close()
	c.members[i] = nil
}

// Server returns the embedded server of member i, nil when stopped.
func (c *Embedded) Server(i int) *embed.Etcd { return c.members[i] }

// Process is a cluster of real etcd binaries, one process per member.
type Process struct {
	Cluster
	Binary string
	procs  []*exec.Cmd
}

// StartProcesses starts a cluster of the given etcd release (for example
// "3.6.16"), building the binary first when it is not cached.
func StartProcesses(t testing.TB, version string, opts ...Option) *Process {
	t.Helper()
	o := options(opts)
	bin := EtcdBinaries(t, version)
	c := &Process{Cluster: Cluster{T: t, State: prepare(t, o)}, Binary: filepath.Join(bin, "etcd"), procs: make([]*exec.Cmd, o.Members)}
	c.startAll(c.Start, c.Kill, 60*time.Second)
	return c
}

// Start starts (or restarts, on its data) member i.
func (c *Process) Start(i int) {
	c.T.Helper()
	if c.procs[i] != nil {
		return
	}
	m := c.State.Members[i]
	log, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.T.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(c.Binary, "--config-file", m.ConfigFile)
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		c.T.Fatalf("starting %s: %v", m.Name, err)
	}
	c.procs[i] = cmd
}

// Stop stops member i gracefully (SIGTERM), killing it after 10 seconds.
func (c *Process) Stop(i int) {
	c.T.Helper()
	cmd := c.procs[i]
	if cmd == nil {
		return
	}
	resume(cmd.Process)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	proc.Stop(cmd.Process, done)
	c.procs[i] = nil
}

// Kill kills member i at once, as a crash would.
func (c *Process) Kill(i int) {
	cmd := c.procs[i]
	if cmd == nil {
		return
	}
	resume(cmd.Process)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	c.procs[i] = nil
}

// Pause stops member i with SIGSTOP: it keeps its sockets but answers
// nothing, like a hung machine.
func (c *Process) Pause(i int) {
	c.T.Helper()
	if c.procs[i] == nil {
		c.T.Fatalf("pausing %s: not running", c.State.Members[i].Name)
	}
	pause(c.procs[i].Process)
}

// Resume continues a paused member.
func (c *Process) Resume(i int) {
	if c.procs[i] != nil {
		resume(c.procs[i].Process)
	}
}

// Restart stops and starts member i.
func (c *Process) Restart(i int) {
	c.T.Helper()
	c.Stop(i)
	c.Start(i)
}

// RepoRoot is the repository's top directory, found from this file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Versions lists the etcd releases the tests run against
// (hack/etcd-versions.txt), oldest first.
func Versions(t testing.TB) []string {
	t.Helper()
	return readVersions(t, "etcd-versions.txt")
}

// ForEachVersion runs test as a subtest, etcd-VERSION, for every etcd
// release of Versions.
func ForEachVersion(t *testing.T, test func(t *testing.T, version string)) {
	t.Helper()
	for _, version := range Versions(t) {
		t.Run("etcd-"+version, func(t *testing.T) { test(t, version) })
	}
}

// EtcdBinaries returns the directory holding etcd, etcdctl and etcdutl of
// a release, building them with hack/build-etcd.sh when not cached.
func EtcdBinaries(t testing.TB, version string) string {
	t.Helper()
	dir, err := hackscript.Output(hackscript.Path("build-etcd.sh"), version)
	if err != nil {
		t.Fatalf("building etcd %s: %v", version, err)
	}
	return dir
}

// newMember lays out one more member on the next 127.0.0.x address, with
// its certificates, but neither adds it to the cluster nor starts it: a
// test adds it (member add) and then starts it with StartJoining.
func (c *Cluster) newMember(name string) int {
	c.T.Helper()
	if _, err := c.State.AddMember(name); err != nil {
		c.T.Fatalf("preparing member %s: %v", name, err)
	}
	return len(c.State.Members) - 1
}

// writeJoinConfig writes member i's configuration to join the cluster as
// its membership is now: etcd refuses to join with an --initial-cluster
// that differs from the member list, so it is read from the cluster.
func (c *Cluster) writeJoinConfig(i int) {
	c.T.Helper()
	m := c.State.Members[i]
	cfg := c.Config()
	cli, err := cfg.Client()
	if err != nil {
		c.T.Fatalf("client: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		c.T.Fatalf("listing members to join %s: %v", m.Name, err)
	}
	var initial []string
	found := false
	for _, mm := range resp.Members {
		name := mm.Name
		for _, u := range mm.PeerURLs {
			if u == m.PeerURL {
				name, found = m.Name, true
			}
		}
		if name == "" {
			c.T.Fatalf("joining %s: another member (%x) has not started", m.Name, mm.ID)
		}
		for _, u := range mm.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	if !found {
		c.T.Fatalf("joining %s: no member has peer URL %s: add it first", m.Name, m.PeerURL)
	}
	if err := c.State.WriteJoinConfig(i, strings.Join(initial, ",")); err != nil {
		c.T.Fatalf("writing the configuration of %s: %v", m.Name, err)
	}
}

// NewMember prepares one more member, name, on the next 127.0.0.x address
// and returns its index; it is not added to the cluster nor started. Its
// peer URL is c.State.Members[i].PeerURL.
func (c *Embedded) NewMember(name string) int {
	c.T.Helper()
	// The slot comes first: startAll's cleanup stops every member of the
	// state, and preparing may fail after it has added this one.
	c.members = append(c.members, nil)
	return c.newMember(name)
}

// StartJoining starts member i, prepared by NewMember and added to the
// cluster since, with initial-cluster-state existing.
func (c *Embedded) StartJoining(i int) {
	c.T.Helper()
	c.writeJoinConfig(i)
	c.Start(i)
}

// NewMember prepares one more member, name, on the next 127.0.0.x address
// and returns its index; it is not added to the cluster nor started. Its
// peer URL is c.State.Members[i].PeerURL. WaitHealthy expects every member
// of the state to answer: once members come and go, check health through
// the ones that remain.
func (c *Process) NewMember(name string) int {
	c.T.Helper()
	// The slot comes first: startAll's cleanup stops every member of the
	// state, and preparing may fail after it has added this one.
	c.procs = append(c.procs, nil)
	return c.newMember(name)
}

// StartJoining starts member i, prepared by NewMember and added to the
// cluster since, with initial-cluster-state existing.
func (c *Process) StartJoining(i int) {
	c.T.Helper()
	c.writeJoinConfig(i)
	c.Start(i)
}
