package cmd_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/members"
)

// memberIDs maps member names to IDs and says which leads, from the
// cluster itself.
func memberState(t *testing.T, c *etcdtest.Embedded) (ids map[string]string, leader string, learners map[string]bool) {
	t.Helper()
	cfg := c.Config()
	cli := c.Client()
	ms, err := cluster.ListMembers(context.Background(), cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	ids, learners = map[string]string{}, map[string]bool{}
	for _, m := range ms {
		ids[m.Name] = m.ID
		learners[m.Name] = m.Learner
	}
	leaderID := cluster.LeaderID(context.Background(), cfg, cli)
	for name, id := range ids {
		if id == leaderID {
			leader = name
		}
	}
	return ids, leader, learners
}

func TestMemberMoveLeaderAndRemove(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	conn := c.ConnectArgs()
	member := func(args ...string) (string, string, int, error) {
		return cmdtest.Run(t, append(append([]string{}, conn...), append([]string{"member"}, args...)...)...)
	}

	t.Log("member list -o wide shows version, raft and applied index")
	out, _, code, err := member("list", "-o", "wide")
	if code != 0 || !strings.Contains(out, "APPLIED") || strings.Count(out, "3.7.3") != 3 {
		t.Fatalf("member list -o wide: exit %d, %v\n%s", code, err, out)
	}

	t.Log("move-leader with no argument hands leadership to another voter")
	_, before, _ := memberState(t, c)
	out, errOut, code, err := member("move-leader", "--yes")
	if code != 0 {
		t.Fatalf("move-leader: exit %d, %v\n%s", code, err, errOut)
	}
	_, after, _ := memberState(t, c)
	if after == before || !strings.Contains(out, "Leadership moved to member "+after) {
		t.Fatalf("leader %s before, %s after; output %q", before, after, out)
	}
	if !strings.Contains(errOut, "Preflight: move leadership to member "+after) || !strings.Contains(errOut, "voters: 3 -> 3") {
		t.Errorf("preflight not printed on stderr:\n%s", errOut)
	}

	t.Log("move-leader to a named member")
	target := "member-1"
	if after == target {
		target = "member-2"
	}
	if _, errOut, code, err := member("move-leader", target, "-y"); code != 0 {
		t.Fatalf("move-leader %s: exit %d, %v\n%s", target, code, err, errOut)
	}
	if _, leader, _ := memberState(t, c); leader != target {
		t.Fatalf("leader is %s, want %s", leader, target)
	}
	out, _, code, _ = member("move-leader", target, "-y")
	if code != 0 || !strings.Contains(out, "already leads") {
		t.Errorf("move-leader to the leader: exit %d, %q", code, out)
	}

	t.Log("without --yes and without a terminal a change is refused")
	_, _, code, err = member("remove", "member-3")
	if code != 1 || err == nil || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("remove without --yes: exit %d, %v", code, err)
	}

	t.Log("--dry-run prints the preflight and the change, and changes nothing")
	out, errOut, code, err = member("remove", "member-3", "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run: would remove member member-3") || !strings.Contains(errOut, "quorum: 2 -> 2") {
		t.Errorf("dry run: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if ids, _, _ := memberState(t, c); len(ids) != 3 {
		t.Fatalf("dry run changed the cluster: %v", ids)
	}

	t.Log("an unknown name is an error listing the members")
	_, _, code, err = member("remove", "member-9", "-y")
	if code != 1 || err == nil || !strings.Contains(err.Error(), `no member named or with ID "member-9"`) || !strings.Contains(err.Error(), "member-2 (") {
		t.Errorf("unknown member: exit %d, %v", code, err)
	}

	t.Log("with member-2 down, removing member-3 would lose quorum: refused")
	c.Stop(1)
	_, errOut, code, err = member("remove", "member-3", "-y")
	var refused *members.RefusedError
	if code != 1 || !errors.As(err, &refused) || !strings.Contains(err.Error(), "would lose quorum: 1 healthy of 2 voters after it, 2 needed") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("remove breaking quorum: exit %d, %v", code, err)
	}
	if !strings.Contains(errOut, "down:") || !strings.Contains(errOut, "member-2 (") || !strings.Contains(errOut, "REFUSED") {
		t.Errorf("preflight should list member-2 as down:\n%s", errOut)
	}

	t.Log("update gives the down member-2 new peer URLs, as for a node whose address changed")
	newPeer := strings.Replace(c.State.Members[1].PeerURL, "127.0.0.2", "localhost", 1)
	out, errOut, code, err = member("update", "member-2", "--peer-urls", newPeer, "-y")
	if code != 0 || !strings.Contains(out, "now has peer URLs "+newPeer) || !strings.Contains(errOut, "restart it with the new peer URLs") {
		t.Fatalf("update: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if out, _, _, _ := member("list"); !strings.Contains(out, newPeer) {
		t.Errorf("member list does not show the new peer URL %s:\n%s", newPeer, out)
	}

	t.Log("removing the down member is safe")
	if _, errOut, code, err := member("remove", "member-2", "-y"); code != 0 {
		t.Fatalf("remove member-2: exit %d, %v\n%s", code, err, errOut)
	}

	t.Log("removing the leader moves leadership first")
	_, leader, _ := memberState(t, c)
	other := map[string]string{"member-1": "member-3", "member-3": "member-1"}[leader]
	out, errOut, code, err = member("remove", leader, "-y")
	if code != 0 || !strings.Contains(errOut, "leadership moves to "+other) || !strings.Contains(errOut, "Moving leadership from "+leader) {
		t.Fatalf("remove the leader %s: exit %d, %v\n%s%s", leader, code, err, out, errOut)
	}
	// A removed member shuts itself down; an in-process one must be
	// stopped before anything asks it for its status (etcd panics then).
	c.Stop(int(leader[len(leader)-1] - '1'))
	ids, now, _ := memberState(t, c)
	if len(ids) != 1 || now != other {
		t.Fatalf("after removing the leader: members %v, leader %q; want only %s leading", ids, now, other)
	}

	t.Log("the last voter is not removed")
	_, _, code, err = member("remove", other, "-y")
	if code != 1 || err == nil || !strings.Contains(err.Error(), "is the last voter") {
		t.Errorf("remove the last voter: exit %d, %v", code, err)
	}
}

func TestMemberAddRefusesAPendingLearner(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	conn := c.ConnectArgs()
	member := func(args ...string) (string, string, int, error) {
		return cmdtest.Run(t, append(append([]string{}, conn...), append([]string{"member"}, args...)...)...)
	}

	t.Log("peer URLs are checked before anything is asked of etcd")
	_, _, code, err := member("add", "member-4", "--peer-urls", "127.0.0.4:2380", "-y")
	var ue *cmdutil.UsageError
	if code != 1 || !errors.As(err, &ue) || !strings.Contains(err.Error(), "want https://HOST:PORT") {
		t.Errorf("add with a bad peer URL: exit %d, %v", code, err)
	}

	i := c.NewMember("member-4")
	m4 := c.State.Members[i]
	t.Log("add --dry-run prints the preflight and the change, and adds nothing")
	out, errOut, code, err := member("add", "member-4", "--peer-urls", m4.PeerURL, "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run: would add member member-4 as a learner with peer URLs "+m4.PeerURL) || !strings.Contains(errOut, "voters: 3 -> 3") {
		t.Errorf("add --dry-run: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if ids, _, _ := memberState(t, c); len(ids) != 3 {
		t.Fatalf("dry run changed the cluster: %v", ids)
	}

	t.Log("add a learner: printed as JSON with the initial cluster it must start with")
	out, errOut, code, err = member("add", "member-4", "--peer-urls", m4.PeerURL, "-o", "json", "-y")
	if code != 0 {
		t.Fatalf("add: exit %d, %v\n%s", code, err, errOut)
	}
	var added members.AddResult
	if err := json.Unmarshal([]byte(out), &added); err != nil || !added.Learner || !strings.Contains(added.InitialCluster, "member-4="+m4.PeerURL) {
		t.Fatalf("add -o json: %v %+v\n%s", err, added, out)
	}

	t.Log("a second add while member-4 has not started is refused")
	_, _, code, err = member("add", "member-5", "--peer-urls", "https://127.0.0.5:2380", "-y")
	if code != 1 || err == nil || !strings.Contains(err.Error(), "has not started: start it, or remove it") {
		t.Errorf("add with a pending learner: exit %d, %v", code, err)
	}

	t.Log("--force passes the preflight, and etcd's own limit on learners still holds")
	_, errOut, code, err = member("add", "member-5", "--peer-urls", "https://127.0.0.5:2380", "-y", "--force")
	if code != 1 || err == nil || !strings.Contains(errOut, "overridden by --force") || !strings.Contains(err.Error(), "the cluster now: 3 of 3 voters healthy") {
		t.Errorf("add --force with a pending learner: exit %d, %v\n%s", code, err, errOut)
	}

	t.Log("promoting a learner that never starts times out, says why, and changes nothing")
	_, errOut, code, err = member("promote", added.ID, "--timeout", "3s", "-y")
	if code != 1 || err == nil || !strings.Contains(err.Error(), "not in sync with the leader after 3s") || !strings.Contains(err.Error(), "3 of 3 voters healthy") {
		t.Errorf("promote an unstarted learner: exit %d, %v\n%s", code, err, errOut)
	}

	t.Log("start member-4: it joins, catches up and is promoted")
	c.StartJoining(i)
	if _, errOut, code, err := member("promote", "member-4", "--timeout", "60s", "-y"); code != 0 {
		// The name is known only once the member has started: retry by ID.
		if _, errOut2, code2, err2 := member("promote", added.ID, "--timeout", "60s", "-y"); code2 != 0 {
			t.Fatalf("promote: exit %d, %v\n%s\nby ID: exit %d, %v\n%s", code, err, errOut, code2, err2, errOut2)
		}
	}
	if _, _, learners := memberState(t, c); learners["member-4"] {
		t.Errorf("member-4 is still a learner: %v", learners)
	}
}
