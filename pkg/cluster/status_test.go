package cluster_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

func TestCollectAndHealthWithAMemberDown(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()

	statuses, err := cluster.Collect(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 3 {
		t.Fatalf("got %d statuses, want 3", len(statuses))
	}
	leaders := 0
	for i, s := range statuses {
		if s.Name != c.State.Members[i].Name || s.Endpoint != c.State.Members[i].ClientURL {
			t.Errorf("row %d is %s at %s, want %s at %s (sorted by name)", i, s.Name, s.Endpoint, c.State.Members[i].Name, c.State.Members[i].ClientURL)
		}
		if !s.Healthy() || s.Version == "" || s.DBSize == 0 || s.RaftTerm == 0 {
			t.Errorf("member %s: %+v, want a healthy answer with version, size and term", s.Name, s)
		}
		if s.Leader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders, want exactly 1", leaders)
	}

	c.Stop(2)
	statuses, err = cluster.Collect(ctx, cfg, cli)
	if err != nil {
		t.Fatalf("a cluster with quorum must still report: %v", err)
	}
	down := statuses[2]
	if down.Healthy() || !strings.Contains(strings.Join(down.Errors, ";"), "connection refused") {
		t.Errorf("stopped member reported as %+v, want a connection refused error", down)
	}
	for _, s := range statuses[:2] {
		if !s.Healthy() {
			t.Errorf("member %s should stay healthy: %v", s.Name, s.Errors)
		}
	}

	health, err := cluster.CheckHealth(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range health {
		if want := i != 2; h.Healthy != want {
			t.Errorf("member %s healthy=%v (%s), want %v", h.Name, h.Healthy, h.Error, want)
		}
	}

	members, err := cluster.ListMembers(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if !m.Started || m.Learner || len(m.PeerURLs) != 1 {
			t.Errorf("member %+v, want a started voter with one peer URL", m)
		}
	}
}
