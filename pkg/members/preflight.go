// Package members changes the membership of an etcd cluster with quorum
// safety: every change (add, promote, remove, update, move-leader) is first
// checked by a preflight, a pure function of what each member reports, which
// says how many voters and how much quorum the cluster has before and after,
// which members are down, and refuses what would break the cluster unless
// forced. The operations then talk to etcd; they know nothing of cobra.
package members

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Kind names a membership change.
type Kind string

// The membership changes.
const (
	Add        Kind = "add"
	Promote    Kind = "promote"
	Remove     Kind = "remove"
	Update     Kind = "update"
	MoveLeader Kind = "move-leader"
	// Restart stops a member for a while and starts it again (a static
	// pod restart after a certificate renewal): the membership stays, but
	// the member does not vote while it is down.
	Restart Kind = "restart"
)

// View is what the preflight knows of one member.
type View struct {
	ID      string
	Name    string
	Learner bool
	// Started is false for a member added but never joined.
	Started bool
	// Healthy is true when the member answered its status without error.
	Healthy bool
	Leader  bool
	// AppliedIndex ranks healthy members when one must be chosen to lead.
	AppliedIndex uint64
	// Reason says why the member is not healthy.
	Reason string
	// Endpoint is the client URL the member is reached by.
	Endpoint string
}

// Label names a member for messages: "name (id)", or the ID alone for a
// member that has not started and so has no name yet.
func (v View) Label() string {
	if v.Name == "" {
		return "<unstarted> (" + v.ID + ")"
	}
	return v.Name + " (" + v.ID + ")"
}

// Change is one membership change to check.
type Change struct {
	Kind Kind
	// Target is the ID of the member changed; for Add, empty.
	Target string
	// Name is the new member's name (Add).
	Name string
	// Voter adds a voting member instead of a learner (Add).
	Voter bool
	// PeerURLs of the new member (Add) or the member's new ones (Update).
	PeerURLs []string
}

// Preflight is the verdict on a change: the cluster before and after, and
// what would go wrong. For a Restart, "after" is while the member is
// stopped.
type Preflight struct {
	Change Change
	// Target is the member changed (zero for Add).
	Target View
	// VotersBefore and VotersAfter count voting members.
	VotersBefore, VotersAfter int
	// QuorumBefore and QuorumAfter are the voters needed to commit.
	QuorumBefore, QuorumAfter int
	// HealthyVotersBefore and HealthyVotersAfter count voters that answer;
	// after a change they must still reach QuorumAfter.
	HealthyVotersBefore, HealthyVotersAfter int
	// Down lists members that do not answer, with why.
	Down []string
	// Transferee is the member that takes over leadership first, when the
	// change removes the leader (empty otherwise).
	Transferee *View
	// Refusals are reasons not to proceed without --force.
	Refusals []string
	// Notes are things the user should know that do not block the change.
	Notes []string
}

// Quorum is the number of voters needed to commit: a majority.
func Quorum(voters int) int {
	if voters == 0 {
		return 0
	}
	return voters/2 + 1
}

// Check runs the preflight of ch against the members as they are now. It
// reads nothing and changes nothing: it is the one place the safety rules
// live, so they can be tested without a cluster.
func Check(members []View, ch Change) Preflight {
	p := Preflight{Change: ch}
	var target *View
	for i := range members {
		if ch.Target != "" && members[i].ID == ch.Target {
			target = &members[i]
		}
	}
	if target != nil {
		p.Target = *target
	}
	healthyMembers := 0
	for _, m := range members {
		if m.Healthy {
			healthyMembers++
		} else {
			reason := m.Reason
			if reason == "" {
				reason = "not healthy"
			}
			p.Down = append(p.Down, m.Label()+": "+reason)
		}
		if m.Learner {
			continue
		}
		p.VotersBefore++
		if m.Healthy {
			p.HealthyVotersBefore++
		}
	}
	sort.Strings(p.Down)
	p.QuorumBefore = Quorum(p.VotersBefore)
	p.VotersAfter, p.HealthyVotersAfter = p.VotersBefore, p.HealthyVotersBefore

	refuse := func(format string, args ...any) { p.Refusals = append(p.Refusals, fmt.Sprintf(format, args...)) }
	note := func(format string, args ...any) { p.Notes = append(p.Notes, fmt.Sprintf(format, args...)) }

	if ch.Kind != Add && target == nil {
		refuse("no member with ID %s", ch.Target)
	}
	switch ch.Kind {
	case Add:
		for _, m := range members {
			if !m.Started {
				refuse("member %s was added but has not started: start it, or remove it, before adding another", m.Label())
			}
		}
		if ch.Voter {
			// The new member counts toward quorum at once but answers only
			// once it has started and caught up.
			p.VotersAfter++
		} else {
			note("the new member joins as a learner: it does not vote until promoted (kubectl etcd member promote %s)", ch.Name)
		}
	case Promote:
		if target == nil {
			break
		}
		if !target.Learner {
			refuse("member %s is already a voter", target.Label())
			break
		}
		// Promotion only succeeds once the learner is running and in sync,
		// so it counts as healthy afterwards.
		p.VotersAfter++
		p.HealthyVotersAfter++
		if !target.Started {
			note("learner %s has not started yet: promotion waits for it to start and catch up", target.Label())
		}
	case Remove:
		if target == nil {
			break
		}
		if !target.Learner {
			p.VotersAfter--
			if target.Healthy {
				p.HealthyVotersAfter--
			}
			if p.VotersAfter == 0 {
				refuse("member %s is the last voter: removing it destroys the cluster", target.Label())
			}
		}
		if target.Healthy && healthyMembers == 1 {
			refuse("member %s is the only healthy member", target.Label())
		}
		if target.Leader {
			if t := Healthiest(members, target.ID); t != nil {
				p.Transferee = t
				note("member %s leads: leadership moves to %s first", target.Label(), t.Label())
			} else if p.VotersAfter > 0 {
				note("member %s leads and no other voter is healthy to take over: the cluster elects a new leader after the removal", target.Label())
			}
		}
	case Update:
		if target != nil && !target.Healthy {
			note("member %s is down: restart it with the new peer URLs after the update", target.Label())
		}
	case Restart:
		if target == nil {
			break
		}
		// Any other member down, and this restart makes two: refuse, so an
		// operator restarting node after node (or a script on every node
		// at once) never stops a second member before the first is back.
		for _, m := range members {
			if m.ID != target.ID && !m.Healthy {
				reason := m.Reason
				if reason == "" {
					reason = "not healthy"
				}
				refuse("member %s is not healthy (%s): restart %s only once every other member serves", m.Label(), reason, target.Label())
			}
		}
		if !target.Learner && target.Healthy {
			p.HealthyVotersAfter--
		}
		if target.Leader {
			if t := Healthiest(members, target.ID); t != nil {
				p.Transferee = t
				note("member %s leads: leadership moves to %s before it stops", target.Label(), t.Label())
			}
		}
	case MoveLeader:
		if target == nil {
			break
		}
		switch {
		case target.Learner:
			refuse("member %s is a learner: a learner cannot lead", target.Label())
		case target.Leader:
			note("member %s already leads: nothing to do", target.Label())
		case !target.Healthy:
			refuse("member %s is down: it cannot take over leadership", target.Label())
		}
	}
	p.QuorumAfter = Quorum(p.VotersAfter)

	if p.HealthyVotersBefore < p.QuorumBefore {
		refuse("the cluster has no quorum now: %d of %d voters healthy, %d needed", p.HealthyVotersBefore, p.VotersBefore, p.QuorumBefore)
	} else if p.VotersAfter > 0 && p.HealthyVotersAfter < p.QuorumAfter {
		if ch.Kind == Restart {
			refuse("the cluster would stop serving: %d of %d voters healthy while %s is stopped, %d needed", p.HealthyVotersAfter, p.VotersAfter, p.Target.Label(), p.QuorumAfter)
		} else {
			refuse("the change would lose quorum: %d healthy of %d voters after it, %d needed", p.HealthyVotersAfter, p.VotersAfter, p.QuorumAfter)
		}
	} else if ch.Kind == Restart && target != nil {
		note("while %s is stopped, %d of %d voters serve (quorum %d)", target.Label(), p.HealthyVotersAfter, p.VotersAfter, p.QuorumAfter)
	}
	return p
}

// Healthiest picks the voter best placed to lead instead of the member
// with ID except: healthy, started, not a learner, furthest applied; ties
// go to the first name. Nil when there is none.
func Healthiest(members []View, except string) *View {
	var best *View
	for i := range members {
		m := &members[i]
		if m.ID == except || m.Learner || !m.Started || !m.Healthy {
			continue
		}
		if best == nil || m.AppliedIndex > best.AppliedIndex ||
			(m.AppliedIndex == best.AppliedIndex && m.Name < best.Name) {
			best = m
		}
	}
	if best == nil {
		return nil
	}
	v := *best
	return &v
}

// Refused reports whether the preflight found a reason not to proceed.
func (p Preflight) Refused() bool { return len(p.Refusals) > 0 }

// Err returns the refusals as one error telling how to override them, nil
// when there are none.
func (p Preflight) Err() error {
	if !p.Refused() {
		return nil
	}
	return &RefusedError{Action: p.Action(), Reasons: p.Refusals}
}

// RefusedError is a change the preflight refused.
type RefusedError struct {
	Action  string
	Reasons []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing to %s: %s (pass --force to do it anyway)", e.Action, strings.Join(e.Reasons, "; "))
}

// Action describes the change in words: "remove member m2 (8e9e05c52164694d)".
func (p Preflight) Action() string {
	switch p.Change.Kind {
	case Add:
		kind := "learner"
		if p.Change.Voter {
			kind = "voter"
		}
		return fmt.Sprintf("add member %s as a %s with peer URLs %s", p.Change.Name, kind, strings.Join(p.Change.PeerURLs, ","))
	case Update:
		return fmt.Sprintf("update member %s to peer URLs %s", p.targetLabel(), strings.Join(p.Change.PeerURLs, ","))
	case MoveLeader:
		return "move leadership to member " + p.targetLabel()
	default:
		return string(p.Change.Kind) + " member " + p.targetLabel()
	}
}

func (p Preflight) targetLabel() string {
	if p.Target.ID == "" {
		return p.Change.Target
	}
	return p.Target.Label()
}

// Write prints the preflight for a person to read.
func (p Preflight) Write(w io.Writer, forced bool) {
	fmt.Fprintf(w, "Preflight: %s\n", p.Action())
	fmt.Fprintf(w, "  voters: %d -> %d\n", p.VotersBefore, p.VotersAfter)
	fmt.Fprintf(w, "  quorum: %d -> %d (healthy voters: %d -> %d)\n", p.QuorumBefore, p.QuorumAfter, p.HealthyVotersBefore, p.HealthyVotersAfter)
	if len(p.Down) == 0 {
		fmt.Fprintln(w, "  down: none")
	} else {
		fmt.Fprintln(w, "  down:")
		for _, d := range p.Down {
			fmt.Fprintf(w, "    - %s\n", d)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	label := "REFUSED"
	if forced {
		label = "overridden by --force"
	}
	for _, r := range p.Refusals {
		fmt.Fprintf(w, "  %s: %s\n", label, r)
	}
	if !p.Refused() {
		fmt.Fprintln(w, "  verdict: safe")
	}
}
