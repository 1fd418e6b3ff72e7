package members

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

// views builds views from a compact spec, one letter per member:
// L leader, V healthy voter, D down voter, l healthy learner, d down
// learner, u unstarted learner. Member i is named m<i+1> with ID <i+1>.
func views(spec string) []View {
	var out []View
	for i, c := range spec {
		v := View{ID: fmt.Sprintf("%x", i+1), Name: fmt.Sprintf("m%d", i+1), Started: true, Healthy: true, AppliedIndex: 100}
		switch c {
		case 'L':
			v.Leader = true
		case 'D':
			v.Healthy, v.Reason = false, "connection refused"
		case 'l':
			v.Learner = true
		case 'd':
			v.Learner, v.Healthy, v.Reason = true, false, "connection refused"
		case 'u':
			v.Learner, v.Started, v.Healthy, v.Name, v.Reason = true, false, false, "", "not started"
		}
		out = append(out, v)
	}
	return out
}

func TestQuorum(t *testing.T) {
	for voters, want := range map[int]int{0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 7: 4} {
		if got := Quorum(voters); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", voters, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		change  Change
		// voters and quorum before -> after
		voters, quorum [2]int
		refuse         string // "" when the change is safe
		note           string
		transferee     string
	}{
		{"remove the only member", "L", Change{Kind: Remove, Target: "1"}, [2]int{1, 0}, [2]int{1, 0}, "last voter", "", ""},
		{"remove a follower of 2", "LV", Change{Kind: Remove, Target: "2"}, [2]int{2, 1}, [2]int{2, 1}, "", "", ""},
		{"remove the leader of 2 moves leadership", "LV", Change{Kind: Remove, Target: "1"}, [2]int{2, 1}, [2]int{2, 1}, "", "leadership moves to m2", "m2"},
		{"remove the healthy member of 2 with the other down", "LD", Change{Kind: Remove, Target: "1"}, [2]int{2, 1}, [2]int{2, 1}, "no quorum now", "", ""},
		{"remove a healthy follower of 3", "LVV", Change{Kind: Remove, Target: "3"}, [2]int{3, 2}, [2]int{2, 2}, "", "", ""},
		{"remove the down member of 3", "LVD", Change{Kind: Remove, Target: "3"}, [2]int{3, 2}, [2]int{2, 2}, "", "", ""},
		{"remove a healthy member of 3 with one down loses quorum", "LVD", Change{Kind: Remove, Target: "2"}, [2]int{3, 2}, [2]int{2, 2}, "would lose quorum: 1 healthy of 2 voters", "", ""},
		{"remove from 3 with two down", "LDD", Change{Kind: Remove, Target: "2"}, [2]int{3, 2}, [2]int{2, 2}, "no quorum now: 1 of 3", "", ""},
		{"remove the only healthy member", "LDDl", Change{Kind: Remove, Target: "1"}, [2]int{3, 2}, [2]int{2, 2}, "no quorum now", "", ""},
		{"remove from 5 with two down", "LVVDD", Change{Kind: Remove, Target: "2"}, [2]int{5, 4}, [2]int{3, 3}, "would lose quorum: 2 healthy of 4 voters after it, 3 needed", "", ""},
		{"remove a down member of 5 with two down", "LVVDD", Change{Kind: Remove, Target: "5"}, [2]int{5, 4}, [2]int{3, 3}, "", "", ""},
		{"remove a learner", "LVVl", Change{Kind: Remove, Target: "4"}, [2]int{3, 3}, [2]int{2, 2}, "", "", ""},
		{"remove an unstarted learner", "LVVu", Change{Kind: Remove, Target: "4"}, [2]int{3, 3}, [2]int{2, 2}, "", "", ""},
		{"remove the leader of 3 moves leadership to a follower", "LVV", Change{Kind: Remove, Target: "1"}, [2]int{3, 2}, [2]int{2, 2}, "", "leadership moves", "m2"},
		{"remove an unknown ID", "LVV", Change{Kind: Remove, Target: "ff"}, [2]int{3, 3}, [2]int{2, 2}, "no member with ID ff", "", ""},

		{"add a learner to 1", "L", Change{Kind: Add, Name: "m2"}, [2]int{1, 1}, [2]int{1, 1}, "", "joins as a learner", ""},
		{"add a voter to 1", "L", Change{Kind: Add, Name: "m2", Voter: true}, [2]int{1, 2}, [2]int{1, 2}, "would lose quorum: 1 healthy of 2 voters", "", ""},
		{"add a voter to 3", "LVV", Change{Kind: Add, Name: "m4", Voter: true}, [2]int{3, 4}, [2]int{2, 3}, "", "", ""},
		{"add a voter to 3 with one down", "LVD", Change{Kind: Add, Name: "m4", Voter: true}, [2]int{3, 4}, [2]int{2, 3}, "would lose quorum", "", ""},
		{"add a learner to 3 with one down", "LVD", Change{Kind: Add, Name: "m4"}, [2]int{3, 3}, [2]int{2, 2}, "", "", ""},
		{"add while a learner is pending", "LVVu", Change{Kind: Add, Name: "m5"}, [2]int{3, 3}, [2]int{2, 2}, "has not started", "", ""},
		{"add with a started learner", "LVVl", Change{Kind: Add, Name: "m5", Voter: true}, [2]int{3, 4}, [2]int{2, 3}, "", "", ""},

		{"promote a learner of 1", "Ll", Change{Kind: Promote, Target: "2"}, [2]int{1, 2}, [2]int{1, 2}, "", "", ""},
		{"promote a learner of 3", "LVVl", Change{Kind: Promote, Target: "4"}, [2]int{3, 4}, [2]int{2, 3}, "", "", ""},
		{"promote an unstarted learner waits", "LVVu", Change{Kind: Promote, Target: "4"}, [2]int{3, 4}, [2]int{2, 3}, "", "has not started yet", ""},
		{"promote with two of 3 down", "LDDl", Change{Kind: Promote, Target: "4"}, [2]int{3, 4}, [2]int{2, 3}, "no quorum now", "", ""},
		{"promote with one of 3 down", "LVDl", Change{Kind: Promote, Target: "4"}, [2]int{3, 4}, [2]int{2, 3}, "", "", ""},
		{"promote a voter", "LVV", Change{Kind: Promote, Target: "2"}, [2]int{3, 3}, [2]int{2, 2}, "already a voter", "", ""},

		{"move leadership to a follower", "LVV", Change{Kind: MoveLeader, Target: "2"}, [2]int{3, 3}, [2]int{2, 2}, "", "", ""},
		{"move leadership to a down member", "LVD", Change{Kind: MoveLeader, Target: "3"}, [2]int{3, 3}, [2]int{2, 2}, "is down", "", ""},
		{"move leadership to a learner", "LVl", Change{Kind: MoveLeader, Target: "3"}, [2]int{2, 2}, [2]int{2, 2}, "a learner cannot lead", "", ""},
		{"move leadership to the leader", "LVV", Change{Kind: MoveLeader, Target: "1"}, [2]int{3, 3}, [2]int{2, 2}, "", "already leads", ""},

		{"update a down member", "LVD", Change{Kind: Update, Target: "3"}, [2]int{3, 3}, [2]int{2, 2}, "", "restart it with the new peer URLs", ""},
		{"update without quorum", "LDD", Change{Kind: Update, Target: "3"}, [2]int{3, 3}, [2]int{2, 2}, "no quorum now", "", ""},

		{"restart a follower of 3", "LVV", Change{Kind: Restart, Target: "2"}, [2]int{3, 3}, [2]int{2, 2}, "", "while m2 (2) is stopped, 2 of 3 voters serve (quorum 2)", ""},
		{"restart the leader of 3 moves leadership", "LVV", Change{Kind: Restart, Target: "1"}, [2]int{3, 3}, [2]int{2, 2}, "", "leadership moves to m2 (2) before it stops", "m2"},
		{"restart with another member down", "LVD", Change{Kind: Restart, Target: "2"}, [2]int{3, 3}, [2]int{2, 2}, "member m3 (3) is not healthy (connection refused): restart m2 (2) only once every other member serves", "", ""},
		{"restart with a learner down", "LVVd", Change{Kind: Restart, Target: "2"}, [2]int{3, 3}, [2]int{2, 2}, "member m4 (4) is not healthy", "", ""},
		{"restart with a learner pending", "LVVu", Change{Kind: Restart, Target: "2"}, [2]int{3, 3}, [2]int{2, 2}, "<unstarted> (4) is not healthy (not started)", "", ""},
		{"restart the down member itself", "LVD", Change{Kind: Restart, Target: "3"}, [2]int{3, 3}, [2]int{2, 2}, "", "2 of 3 voters serve", ""},
		{"restart the only member", "L", Change{Kind: Restart, Target: "1"}, [2]int{1, 1}, [2]int{1, 1}, "the cluster would stop serving: 0 of 1 voters healthy while m1 (1) is stopped, 1 needed", "", ""},
		{"restart one of 2", "LV", Change{Kind: Restart, Target: "2"}, [2]int{2, 2}, [2]int{2, 2}, "would stop serving: 1 of 2 voters healthy", "", ""},
		{"restart a learner", "LVl", Change{Kind: Restart, Target: "3"}, [2]int{2, 2}, [2]int{2, 2}, "", "2 of 2 voters serve", ""},
		{"restart an unknown ID", "LVV", Change{Kind: Restart, Target: "ff"}, [2]int{3, 3}, [2]int{2, 2}, "no member with ID ff", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Check(views(tt.cluster), tt.change)
			if got := [2]int{p.VotersBefore, p.VotersAfter}; got != tt.voters {
				t.Errorf("voters %v, want %v", got, tt.voters)
			}
			if got := [2]int{p.QuorumBefore, p.QuorumAfter}; got != tt.quorum {
				t.Errorf("quorum %v, want %v", got, tt.quorum)
			}
			refusals := strings.Join(p.Refusals, "; ")
			if tt.refuse == "" && p.Refused() {
				t.Errorf("refused (%s), want safe", refusals)
			}
			if tt.refuse != "" && !strings.Contains(refusals, tt.refuse) {
				t.Errorf("refusals %q, want one containing %q", refusals, tt.refuse)
			}
			if notes := strings.Join(p.Notes, "; "); !strings.Contains(notes, tt.note) {
				t.Errorf("notes %q, want one containing %q", notes, tt.note)
			}
			got := ""
			if p.Transferee != nil {
				got = p.Transferee.Name
			}
			if got != tt.transferee {
				t.Errorf("transferee %q, want %q", got, tt.transferee)
			}
		})
	}
}

func TestCheckOnlyHealthyMember(t *testing.T) {
	// A voter and a learner; the voter is down, and the learner is the
	// only member that answers: removing it leaves nothing that works.
	members := views("Ll")
	members[0].Healthy, members[0].Reason = false, "hung"
	p := Check(members, Change{Kind: Remove, Target: "2"})
	if !strings.Contains(strings.Join(p.Refusals, ";"), "only healthy member") {
		t.Errorf("refusals %q, want the only-healthy-member rule", p.Refusals)
	}
}

func TestHealthiestPrefersFurthestApplied(t *testing.T) {
	members := views("LVVl")
	members[1].AppliedIndex = 90
	members[3].AppliedIndex = 500 // a learner never leads
	if got := Healthiest(members, "1"); got == nil || got.Name != "m3" {
		t.Errorf("Healthiest = %+v, want m3", got)
	}
	if got := Healthiest(views("LDl"), "1"); got != nil {
		t.Errorf("Healthiest with no healthy voter = %+v, want nil", got)
	}
}

func TestWriteAndErr(t *testing.T) {
	p := Check(views("LVD"), Change{Kind: Remove, Target: "2"})
	var buf bytes.Buffer
	p.Write(&buf, false)
	out := buf.String()
	for _, want := range []string{"Preflight: remove member m2 (2)", "voters: 3 -> 2", "quorum: 2 -> 2 (healthy voters: 2 -> 1)", "m3 (3): connection refused", "REFUSED: the change would lose quorum"} {
		if !strings.Contains(out, want) {
			t.Errorf("preflight output lacks %q:\n%s", want, out)
		}
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "refusing to remove member m2 (2): the change would lose quorum") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("Err() = %v", err)
	}
	buf.Reset()
	p.Write(&buf, true)
	if !strings.Contains(buf.String(), "overridden by --force") {
		t.Errorf("forced preflight output:\n%s", buf.String())
	}
	if err := Check(views("LVV"), Change{Kind: Remove, Target: "2"}).Err(); err != nil {
		t.Errorf("safe change Err() = %v", err)
	}
}

func TestResolve(t *testing.T) {
	ms := []cluster.Member{{Name: "a", ID: "10"}, {Name: "b", ID: "20"}, {Name: "b", ID: "30"}, {Name: "", ID: "40"}, {Name: "20", ID: "50"}}
	tests := []struct {
		ref, wantID, wantErr string
	}{
		{"a", "10", ""},
		{"b", "", `member name "b" is ambiguous: 2 members have it`},
		{"30", "30", ""},
		{"0x40", "40", ""},
		{"20", "50", ""}, // an exact name wins over an ID
		{"A", "", `no member named or with ID "A" (members: 20 (50), <unstarted> (40), a (10), b (20), b (30))`},
		{"c", "", "no member named"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			m, err := Resolve(ms, tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) = %v, %v; want error %q", tt.ref, m, err, tt.wantErr)
				}
				return
			}
			if err != nil || m.ID != tt.wantID {
				t.Fatalf("Resolve(%q) = %v, %v; want ID %s", tt.ref, m, err, tt.wantID)
			}
		})
	}
}

func TestValidatePeerURLs(t *testing.T) {
	for _, ok := range [][]string{{"https://10.0.0.4:2380"}, {"http://node:2380", "https://[::1]:2380"}} {
		if err := ValidatePeerURLs(ok); err != nil {
			t.Errorf("ValidatePeerURLs(%v) = %v", ok, err)
		}
	}
	for _, bad := range [][]string{nil, {"10.0.0.4:2380"}, {"https://10.0.0.4"}, {"ftp://h:1"}, {"https://h:2380/x"}} {
		if err := ValidatePeerURLs(bad); err == nil {
			t.Errorf("ValidatePeerURLs(%v) = nil, want an error", bad)
		}
	}
}

func TestLagString(t *testing.T) {
	if got := (Lag{LeaderIndex: 120, LearnerIndex: 20}).String(); got != "learner at raft index 20, leader at 120: 100 entries behind" {
		t.Errorf("got %q", got)
	}
	if got := (Lag{LeaderIndex: 5, LearnerError: "connection refused"}).String(); !strings.Contains(got, "does not answer (connection refused)") {
		t.Errorf("got %q", got)
	}
}
