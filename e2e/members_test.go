package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/member"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/members"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// refusedAfterPreflight checks a refused or failed change: the preflight
// on stderr, then one "error: " line naming the cause, exit 1.
func refusedAfterPreflight(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || !strings.HasPrefix(r.stderr, "Preflight: ") || !strings.HasPrefix(last, "error: ") || !strings.Contains(last, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1, the preflight, then an error line containing %q", r.code, r.stderr, want)
	}
}

// memberList runs member list -o json and decodes it.
func memberList(t *testing.T, conn []string) []member.MemberInfo {
	t.Helper()
	r := plugin(t, nil, append(append([]string{}, conn...), "member", "list", "-o", "json")...)
	if r.code != 0 {
		t.Fatalf("member list: exit %d\n%s", r.code, r.stderr)
	}
	var ms []member.MemberInfo
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil {
		t.Fatalf("member list -o json: %v\n%s", err, r.stdout)
	}
	return ms
}

// endpointsArgs reaches the cluster through the given members only.
func endpointsArgs(c *etcdtest.Process, idx ...int) []string {
	var eps []string
	for _, i := range idx {
		eps = append(eps, c.State.Members[i].ClientURL)
	}
	return []string{"--endpoints=" + strings.Join(eps, ","), "--cacert=" + c.State.CACert, "--cert=" + c.State.ClientCert, "--key=" + c.State.ClientKey}
}

// put writes n keys, so a new member has something to catch up on.
func putMany(t *testing.T, c *etcdtest.Process, prefix string, n int) {
	t.Helper()
	cli := c.Client()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("/%s/%04d", prefix, i), strings.Repeat("x", 512))
		cancel()
		if err != nil {
			t.Fatalf("put: %v", err)
		}
	}
}

func TestMemberAddPromoteRemoveAgainstRealEtcd(t *testing.T) {
	etcdtest.ForEachVersion(t, testMemberAddPromoteRemove)
}

func testMemberAddPromoteRemove(t *testing.T, version string) {
	c := etcdtest.StartProcesses(t, version)
	conn := endpointsArgs(c, 0, 1, 2)
	putMany(t, c, "before", 200)

	t.Log("Add member-4 as a learner on 127.0.0.4")
	i4 := c.NewMember("member-4")
	r := plugin(t, nil, append(conn, "member", "add", "member-4", "--peer-urls", c.State.Members[i4].PeerURL, "-o", "json", "--yes")...)
	if r.code != 0 {
		t.Fatalf("member add: exit %d\n%s", r.code, r.stderr)
	}
	var added members.AddResult
	if err := json.Unmarshal([]byte(r.stdout), &added); err != nil || !added.Learner {
		t.Fatalf("member add -o json: %v %+v\n%s", err, added, r.stdout)
	}
	if !strings.Contains(r.stderr, "voters: 3 -> 3") {
		t.Errorf("member add printed no preflight:\n%s", r.stderr)
	}

	t.Log("Start the real etcd binary for member-4 and promote it once it has caught up")
	c.StartJoining(i4)
	r = plugin(t, nil, append(conn, "member", "promote", added.ID, "--timeout", "90s", "--yes")...)
	if r.code != 0 || !strings.Contains(r.stdout, "promoted to a voter") {
		t.Fatalf("member promote: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ms := memberList(t, conn)
	if len(ms) != 4 {
		t.Fatalf("%d members after promotion, want 4: %+v", len(ms), ms)
	}
	for _, m := range ms {
		if m.Learner || !m.Started {
			t.Errorf("member %s (%s): learner %v, started %v; want a started voter", m.Name, m.ID, m.Learner, m.Started)
		}
	}

	t.Log("Make member-2 the leader, then remove it: leadership moves away first, four voters become three")
	if r := plugin(t, nil, append(conn, "member", "move-leader", "member-2", "--yes")...); r.code != 0 || !(strings.Contains(r.stdout, "Leadership moved to member member-2") || strings.Contains(r.stdout, "member-2 (") && strings.Contains(r.stdout, "already leads")) {
		t.Fatalf("move-leader member-2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = plugin(t, nil, append(conn, "member", "remove", "member-2", "--yes")...)
	if r.code != 0 || !strings.Contains(r.stderr, "voters: 4 -> 3") || !strings.Contains(r.stderr, "quorum: 3 -> 2") || !strings.Contains(r.stderr, "Moving leadership from member-2") {
		t.Fatalf("member remove: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.Kill(1)
	remaining := endpointsArgs(c, 0, 2, i4)
	if ms := memberList(t, remaining); len(ms) != 3 {
		t.Errorf("%d members after removal, want 3", len(ms))
	}
	// The new voter may be slow to answer for a moment on a loaded machine.
	if err := poll.Until(context.Background(), "health to pass after the removal", time.Second, 20*time.Second, func(context.Context) error {
		if r := plugin(t, nil, append(remaining, "health")...); r.code != 0 {
			return fmt.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	t.Log("Pause member-1: removing another voter would leave 1 of 2 healthy, refused")
	c.Pause(0)
	r = plugin(t, nil, append(remaining, "member", "remove", "member-3", "--yes", "--dial-timeout", "1s")...)
	refusedAfterPreflight(t, r, "would lose quorum")
	if !strings.Contains(r.stderr, "member-1 (") || !strings.Contains(r.stderr, "did not answer") {
		t.Errorf("the preflight should name member-1 as hung:\n%s", r.stderr)
	}
	c.Resume(0)
}

func TestMemberKilledMidPromotionAgainstRealEtcd(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))
	conn := endpointsArgs(c, 0, 1, 2)

	t.Log("Add member-4 as a learner, start it, then hang it and write on: it falls behind")
	i4 := c.NewMember("member-4")
	r := plugin(t, nil, append(conn, "member", "add", "member-4", "--peer-urls", c.State.Members[i4].PeerURL, "-o", "json", "--yes")...)
	var added members.AddResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &added) != nil {
		t.Fatalf("member add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.StartJoining(i4)
	if err := poll.Until(context.Background(), "member-4 to start", 500*time.Millisecond, 30*time.Second, func(context.Context) error {
		started := 0
		for _, m := range memberList(t, conn) {
			if m.Started {
				started++
			}
		}
		if started != 4 {
			return fmt.Errorf("%d of 4 members started", started)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.Pause(i4)
	putMany(t, c, "behind", 300)

	t.Log("Promote it, and kill member-4 while promote waits for it")
	promote := startPlugin(t, append(conn, "member", "promote", added.ID, "--timeout", "15s", "--yes", "--dial-timeout", "1s")...)
	promote.waitStderr("Waiting for learner member-4", 15*time.Second)
	c.Kill(i4)
	r = promote.wait()
	refusedAfterPreflight(t, r, "not in sync with the leader after 15s")
	for _, want := range []string{"the learner does not answer (connection refused", "the cluster is unchanged", "member remove " + added.ID, "the cluster now: 3 of 3 voters healthy (quorum 2), down: member-4"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("promote output lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "Waiting for learner member-4") {
		t.Errorf("promote should report the lag while it waits:\n%s", r.stderr)
	}

	t.Log("The voters are healthy and the dead learner can be removed")
	r = plugin(t, nil, append(conn, "health", "-o", "json")...)
	var health []cluster.Health
	if err := json.Unmarshal([]byte(r.stdout), &health); err != nil || len(health) != 4 {
		t.Fatalf("health -o json: %v\n%s", err, r.stdout)
	}
	for _, h := range health {
		if h.Healthy != (h.Name != "member-4") {
			t.Errorf("after the failed promotion %s healthy=%v (%s)", h.Name, h.Healthy, h.Error)
		}
	}
	if r := plugin(t, nil, append(conn, "member", "remove", added.ID, "--yes")...); r.code != 0 || !strings.Contains(r.stderr, "voters: 3 -> 3") {
		t.Errorf("remove the dead learner: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if ms := memberList(t, conn); len(ms) != 3 {
		t.Errorf("%d members after removing the learner, want 3", len(ms))
	}
}
