package upgrade_test

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

func TestDowngradeTarget(t *testing.T) {
	for in, want := range map[string]string{"3.6": "3.6", "3.6.16": "3.6", "v3.5.35": "3.5"} {
		if got, err := upgrade.DowngradeTarget(in); err != nil || got != want {
			t.Errorf("DowngradeTarget(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "three", "3"} {
		if _, err := upgrade.DowngradeTarget(in); err == nil {
			t.Errorf("DowngradeTarget(%q) accepted", in)
		}
	}
}

// TestDowngradeAndMembersBucketWithRealEtcd drives etcd's own downgrade
// API on a 3-member cluster (in-process etcd 3.7) and reads the members
// bucket of a real snapshot.
func TestDowngradeAndMembersBucketWithRealEtcd(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(3))
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()

	t.Log("the v3 members bucket of a snapshot agrees with the member list")
	path := filepath.Join(t.TempDir(), "snap.db")
	if _, err := (&snapshot.Saver{Config: cfg, Client: cli, Path: path, NoMetadata: true}).Save(ctx); err != nil {
		t.Fatal(err)
	}
	bucket, err := upgrade.BucketMembers(path)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cluster.ListMembers(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	var raft []string
	for _, m := range list {
		raft = append(raft, m.ID)
	}
	sort.Strings(bucket)
	if len(bucket) != 3 || upgrade.MembershipMismatch(raft, bucket) != "" {
		t.Fatalf("members bucket %v, member list %v: %s", bucket, raft, upgrade.MembershipMismatch(raft, bucket))
	}

	d := &upgrade.Downgrader{Config: cfg, Client: cli, Log: &strings.Builder{}}
	if _, err := d.Do(ctx, upgrade.Validate, "3.5"); err == nil {
		t.Fatal("validating a downgrade two minors down was accepted")
	}
	if _, err := d.Do(ctx, upgrade.Validate, "3.6"); err != nil {
		t.Fatalf("validate 3.6: %v", err)
	}
	if _, err := d.Do(ctx, upgrade.Enable, "3.6"); err != nil {
		t.Fatalf("enable 3.6: %v", err)
	}
	if err := d.WaitStorageVersion(ctx, "3.6", time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, d.Log)
	}
	log := d.Log.(*strings.Builder).String()
	if !strings.Contains(log, "storage version 3.6") || !strings.Contains(log, "every member stores version 3.6") {
		t.Errorf("progress lacks the storage versions:\n%s", log)
	}
	if got := DowngradeTargetOf(t, c); got != "3.6" {
		t.Errorf("downgrade target reported %q", got)
	}
	if _, err := d.Do(ctx, upgrade.Cancel, "3.6"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
}

// DowngradeTargetOf is the downgrade the first member reports enabled.
func DowngradeTargetOf(tb *testing.T, c *etcdtest.Embedded) string {
	resp, err := c.Client().Status(context.Background(), c.Config().Endpoints[0])
	if err != nil {
		tb.Fatal(err)
	}
	if resp.DowngradeInfo == nil || !resp.DowngradeInfo.Enabled {
		return ""
	}
	t := resp.DowngradeInfo.TargetVersion
	return t[:strings.LastIndex(t, ".")]
}
