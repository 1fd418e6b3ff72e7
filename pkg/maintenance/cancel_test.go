package maintenance_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/pkg/v3/traceutil"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

// promptly bounds how long a call may take to return after Ctrl-C; every
// wait it interrupts here would otherwise last 30 seconds.
const promptly = time.Second

func TestRollingDefragStopsAtOnceWhenInterruptedBetweenMembers(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled time.Time
	d := &maintenance.Defragmenter{Config: c.Config(), Client: c.Client(), Wait: 30 * time.Second}
	d.Progress = func(line string) {
		if strings.HasPrefix(line, "waiting 30s before the next member") && cancelled.IsZero() {
			t.Log("Ctrl-C while waiting 30s between two members")
			cancelled = time.Now()
			cancel()
		}
	}
	plan, err := d.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Run(ctx, plan)
	if cancelled.IsZero() {
		t.Fatalf("the defragmentation never waited between members: %+v, %v", r, err)
	}
	if took := time.Since(cancelled); took > promptly {
		t.Errorf("returned %s after the interrupt, want at once", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if r == nil || r.Defragmented != 1 {
		t.Errorf("report %+v: want the first member defragmented and no other", r)
	}
}

func TestCheckConsistencyStopsAtOnceWhenInterruptedWhileAskingAgain(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cfg, cli := c.Config(), c.Client()
	churn(t, cli, 20, 100)

	t.Log("Compact member-3 alone, behind raft's back: the members disagree on the compaction revision, so the check asks again")
	kv := c.Server(2).Server.KV()
	done, err := kv.Compact(traceutil.TODO(), kv.Rev())
	if err != nil {
		t.Fatal(err)
	}
	<-done
	// A hash at exactly the compacted revision is the one kept from the
	// compaction, which names the compaction before it: hash beyond.
	if _, err := cli.Put(context.Background(), "/after-compaction", "v"); err != nil {
		t.Fatal(err)
	}
	// The check hashes at the lowest revision every member has applied:
	// a follower yet to apply the put (on a loaded machine) would bring
	// it back to the compacted revision, where member-3 agrees.
	waitApplied(t, c, "/after-compaction")
	maintenance.SetHashRetryInterval(t, 30*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan error, 1)
	go func() {
		_, err := maintenance.CheckConsistency(ctx, cfg, cli)
		returned <- err
	}()
	select {
	case err := <-returned:
		t.Fatalf("CheckConsistency returned (%v) instead of asking again after 30s", err)
	case <-time.After(3 * time.Second):
	}
	t.Log("Ctrl-C while it waits 30s to ask again")
	cancel()
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(promptly):
		t.Errorf("CheckConsistency still waits %s after the interrupt", promptly)
	}
}
