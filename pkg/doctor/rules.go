package doctor

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcdflags"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

// Diagnose applies every rule to the facts. Each check that finds nothing
// wrong says so in one OK finding, so the report shows what was checked.
func Diagnose(f *Facts) *Report {
	var out []Finding
	if f.ListError != "" {
		out = append(out, Finding{Severity: Error, Check: "members",
			Message: "cannot read the member list: " + f.ListError,
			Fix:     "start the members that are down (on each node: is the etcd static pod running?); if most are lost for good, restore one from a snapshot: kubectl etcd snapshot restore FILE --manifest"})
	} else {
		for _, rule := range []func(*Facts) []Finding{checkMembers, checkQuorum, checkLeader, checkLearners, checkRaft, checkAlarms, checkQuota, checkFragmentation, checkVersions, checkConsistency, checkManifest, checkDisk, checkLeaderChanges, checkRaftTiming} {
			out = append(out, rule(f)...)
		}
	}
	out = append(out, checkPlaintext(f)...)
	out = append(out, checkCerts(f)...)
	out = append(out, checkLeftovers(f)...)
	if f.ParkedManifest != nil {
		out = append(out, ParkedManifestFinding(*f.ParkedManifest))
	}
	return NewReport(out)
}

// ParkedManifestFinding is the error of a node whose etcd manifest a
// restart moved aside (staticpod.Parked) and never put back: the kubelet
// runs no etcd there until it is back. The offline doctor reports it too.
func ParkedManifestFinding(p ParkedManifest) Finding {
	what, fix := staticpod.ParkedAdvice(p.Path, p.Parked)
	return Finding{Severity: Error, Check: "manifest", Message: what, Fix: fix}
}

// answered reports whether a member answered the Status call.
func answered(s cluster.MemberStatus) bool { return s.Version != "" }

// problems are a member's errors other than alarms, which checkAlarms
// reports.
func problems(s cluster.MemberStatus) []string {
	var out []string
	for _, e := range s.Errors {
		if !strings.HasPrefix(e, "alarm: ") {
			out = append(out, e)
		}
	}
	return out
}

func healthOf(f *Facts, id string) *cluster.Health {
	for i := range f.Health {
		if f.Health[i].ID == id {
			return &f.Health[i]
		}
	}
	return nil
}

// healthyMember: it answered, reports no error but alarms, and serves
// quorum reads (or was refused one only for an alarm).
func healthyMember(f *Facts, s cluster.MemberStatus) bool {
	if !answered(s) || len(problems(s)) > 0 {
		return false
	}
	h := healthOf(f, s.ID)
	return h == nil || h.Healthy || strings.HasPrefix(h.Error, "alarm: ")
}

func checkMembers(f *Facts) []Finding {
	var out []Finding
	for _, s := range f.Members {
		name := memberName(s.Member)
		switch {
		case !s.Started && s.Learner:
			// checkLearners reports it.
		case !s.Started:
			out = append(out, Finding{Severity: Error, Check: "reachable", Member: name,
				Message: fmt.Sprintf("member %s was added but never started: it counts toward quorum without voting", name),
				Fix:     fmt.Sprintf("start etcd on its node (kubectl etcd join there), or remove it: kubectl etcd member remove %s", name)})
		case !answered(s):
			out = append(out, Finding{Severity: Error, Check: "reachable", Member: name,
				Message: fmt.Sprintf("%s (%s) does not answer: %s", name, s.Endpoint, strings.Join(problems(s), "; ")),
				Fix:     fmt.Sprintf("on its node, check the etcd static pod (crictl ps -a, crictl logs, the kubelet log); if the node is lost: kubectl etcd member remove %s, then join a replacement", name)})
		case len(problems(s)) > 0:
			out = append(out, Finding{Severity: Error, Check: "health", Member: name,
				Message: fmt.Sprintf("member %s reports: %s", name, strings.Join(problems(s), "; ")),
				Fix:     "kubectl etcd status; check the network between the members and their logs"})
		default:
			if h := healthOf(f, s.ID); h != nil && !h.Healthy && !strings.HasPrefix(h.Error, "alarm: ") {
				out = append(out, Finding{Severity: Error, Check: "health", Member: name,
					Message: fmt.Sprintf("member %s answers but does not serve a quorum read: %s", name, h.Error),
					Fix:     "kubectl etcd health; a member without a leader is cut off from the others (network, peer certificates)"})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, Finding{Severity: OK, Check: "reachable", Message: fmt.Sprintf("all %d members answer and serve quorum reads", len(f.Members))})
	}
	return out
}

func checkQuorum(f *Facts) []Finding {
	voters, healthy := 0, 0
	var down []string
	for _, s := range f.Members {
		if s.Learner {
			continue
		}
		voters++
		if healthyMember(f, s) {
			healthy++
		} else {
			down = append(down, memberName(s.Member))
		}
	}
	quorum := voters/2 + 1
	switch {
	case voters == 0:
		return []Finding{{Severity: Error, Check: "quorum", Message: "the cluster has no voting member", Fix: "kubectl etcd member list"}}
	case healthy < quorum:
		return []Finding{{Severity: Error, Check: "quorum",
			Message: fmt.Sprintf("quorum lost: %d of %d voters healthy, %d needed (down: %s); the cluster cannot accept writes", healthy, voters, quorum, strings.Join(down, ", ")),
			Fix:     "bring the down members back; if they are lost for good, restore from a snapshot: kubectl etcd snapshot restore FILE --manifest"}}
	case healthy == quorum && voters > 1:
		return []Finding{{Severity: Warning, Check: "quorum",
			Message: fmt.Sprintf("%d of %d voters healthy: one more failure loses quorum (down: %s)", healthy, voters, strings.Join(down, ", ")),
			Fix:     "bring the down members back before any maintenance"}}
	}
	return []Finding{{Severity: OK, Check: "quorum", Message: fmt.Sprintf("%d of %d voters healthy, quorum is %d", healthy, voters, quorum)}}
}

func checkLeader(f *Facts) []Finding {
	var leaders []string
	term := uint64(0)
	anyAnswered := false
	for _, s := range f.Members {
		if !answered(s) {
			continue
		}
		anyAnswered = true
		if s.Leader {
			leaders = append(leaders, memberName(s.Member))
			term = s.RaftTerm
		}
	}
	switch {
	case !anyAnswered:
		return nil // checkMembers says every member is down
	case len(leaders) == 0:
		return []Finding{{Severity: Error, Check: "leader", Message: "no reachable member is the leader: the cluster cannot serve writes or quorum reads",
			Fix: "kubectl etcd status; a cluster without quorum elects none: start the down members"}}
	case len(leaders) > 1:
		return []Finding{{Severity: Warning, Check: "leader", Message: fmt.Sprintf("several members say they lead (%s): an election is under way or the network is split", strings.Join(leaders, ", ")),
			Fix: "run kubectl etcd doctor again in a few seconds; if it stays, check the network between the members"}}
	}
	return []Finding{{Severity: OK, Check: "leader", Member: leaders[0], Message: fmt.Sprintf("%s leads (raft term %d)", leaders[0], term)}}
}

func leaderStatus(f *Facts) *cluster.MemberStatus {
	for i := range f.Members {
		if f.Members[i].Leader && answered(f.Members[i]) {
			return &f.Members[i]
		}
	}
	return nil
}

func checkLearners(f *Facts) []Finding {
	var out []Finding
	leader := leaderStatus(f)
	for _, s := range f.Members {
		if !s.Learner {
			continue
		}
		name := memberName(s.Member)
		switch {
		case !s.Started:
			out = append(out, Finding{Severity: Warning, Check: "learners", Member: name,
				Message: fmt.Sprintf("learner %s was added but has not started", name),
				Fix:     fmt.Sprintf("start etcd on its node (kubectl etcd join there), or remove it: kubectl etcd member remove %s", name)})
		case !answered(s):
			// checkMembers reports it.
		case leader != nil && leader.RaftIndex > s.RaftAppliedIndex+RaftLag:
			out = append(out, Finding{Severity: Warning, Check: "learners", Member: name,
				Message: fmt.Sprintf("learner %s is catching up: %d raft entries behind the leader", name, leader.RaftIndex-s.RaftAppliedIndex),
				Fix:     fmt.Sprintf("wait, then kubectl etcd member promote %s", name)})
		default:
			out = append(out, Finding{Severity: Warning, Check: "learners", Member: name,
				Message: fmt.Sprintf("learner %s has caught up but is not promoted: it does not vote", name),
				Fix:     fmt.Sprintf("kubectl etcd member promote %s", name)})
		}
	}
	return out
}

func checkRaft(f *Facts) []Finding {
	var out []Finding
	var ss []cluster.MemberStatus
	for _, s := range f.Members {
		if answered(s) {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		return nil
	}
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].RaftIndex > ss[j].RaftIndex })
	top := ss[0]
	for _, s := range ss[1:] {
		if s.Learner {
			continue // checkLearners reports learners catching up
		}
		if lag := top.RaftIndex - s.RaftIndex; lag > RaftLag {
			out = append(out, Finding{Severity: Warning, Check: "raft", Member: memberName(s.Member),
				Message: fmt.Sprintf("%s is %d raft entries behind %s (index %d vs %d)", memberName(s.Member), lag, memberName(top.Member), s.RaftIndex, top.RaftIndex),
				Fix:     "check that member's disk (fsync latency) and its network to the leader; kubectl etcd status shows whether it catches up"})
		}
	}
	for _, s := range ss {
		if s.RaftIndex > s.RaftAppliedIndex+ApplyLag {
			out = append(out, Finding{Severity: Warning, Check: "raft", Member: memberName(s.Member),
				Message: fmt.Sprintf("%s has %d committed entries not yet applied: it is overloaded or its disk is slow", memberName(s.Member), s.RaftIndex-s.RaftAppliedIndex),
				Fix:     "check the member's disk and CPU; large requests (big lists, compaction) make it worse"})
		}
	}
	if len(out) == 0 {
		spread := top.RaftIndex - ss[len(ss)-1].RaftIndex
		out = append(out, Finding{Severity: OK, Check: "raft", Message: fmt.Sprintf("raft indexes of %d members within %d entries", len(ss), spread)})
	}
	return out
}

func checkAlarms(f *Facts) []Finding {
	if f.AlarmError != "" {
		return []Finding{{Severity: Warning, Check: "alarms", Message: "could not list alarms: " + f.AlarmError, Fix: "kubectl etcd alarm list"}}
	}
	var out []Finding
	for _, a := range f.Alarms {
		name := a.Member
		if name == "" {
			name = a.MemberID
		}
		fd := Finding{Severity: Error, Check: "alarms", Member: name}
		switch a.Alarm {
		case maintenance.AlarmNoSpace:
			fd.Message = fmt.Sprintf("NOSPACE alarm on %s: the database reached its quota, the cluster accepts only reads and deletes", name)
			fd.Fix = "kubectl etcd alarm recover (compact, defragment, disarm)"
		case maintenance.AlarmCorrupt:
			fd.Message = fmt.Sprintf("CORRUPT alarm on %s: its data differs from the other members", name)
			fd.Fix = fmt.Sprintf("kubectl etcd check consistency; then replace the member: kubectl etcd member remove %s and join it again with empty data", name)
		default:
			fd.Message = fmt.Sprintf("%s alarm on %s", a.Alarm, name)
			fd.Fix = "kubectl etcd alarm list"
		}
		out = append(out, fd)
	}
	if len(out) == 0 {
		out = append(out, Finding{Severity: OK, Check: "alarms", Message: "no active alarm"})
	}
	return out
}

func checkQuota(f *Facts) []Finding {
	var out []Finding
	for _, s := range f.Members {
		if !answered(s) || s.DBQuota <= 0 {
			continue
		}
		usage := float64(s.DBSize) / float64(s.DBQuota)
		if usage <= QuotaWarn {
			continue
		}
		fd := Finding{Severity: Warning, Check: "quota", Member: memberName(s.Member),
			Message: fmt.Sprintf("database of %s is %s, %.0f%% of its quota %s (%s in use)", memberName(s.Member), bytes(s.DBSize), usage*100, bytes(s.DBQuota), bytes(s.DBSizeInUse)),
			Fix:     "kubectl etcd defrag (gives back the free pages)"}
		if float64(s.DBSizeInUse)/float64(s.DBQuota) > QuotaWarn {
			fd.Fix = "kubectl etcd compact, then kubectl etcd defrag; if it stays full, delete what is not needed or raise --quota-backend-bytes on every member"
		}
		out = append(out, fd)
	}
	if len(out) == 0 {
		out = append(out, Finding{Severity: OK, Check: "quota", Message: fmt.Sprintf("every database is under %.0f%% of its quota", QuotaWarn*100)})
	}
	return out
}

func checkFragmentation(f *Facts) []Finding {
	var out []Finding
	for _, s := range f.Members {
		free := s.DBSize - s.DBSizeInUse
		if !answered(s) || free <= FragmentedBytes {
			continue
		}
		out = append(out, Finding{Severity: Warning, Check: "fragmentation", Member: memberName(s.Member),
			Message: fmt.Sprintf("%s holds %s of free pages (%s file, %s in use)", memberName(s.Member), bytes(free), bytes(s.DBSize), bytes(s.DBSizeInUse)),
			Fix:     "kubectl etcd defrag"})
	}
	if len(out) == 0 {
		out = append(out, Finding{Severity: OK, Check: "fragmentation", Message: "no member holds more than 200 MiB of free pages"})
	}
	return out
}

// checkVersions compares the releases the members run. One release is
// fine; patches of one minor want finishing; two adjacent minors mean a
// rolling upgrade or downgrade is under way or stopped halfway; more is
// not supported by etcd. It also names the 3.5 releases that carry the
// membership trap of a 3.6 upgrade, and a manifest whose image is older
// than the data's storage version, which etcd refuses at its next start.
func checkVersions(f *Facts) []Finding {
	byVersion := map[string][]string{}
	var oldest, newest, storage *version.Version
	var trapped []string
	for _, s := range f.Members {
		if !answered(s) {
			continue
		}
		name := memberName(s.Member)
		byVersion[s.Version] = append(byVersion[s.Version], name)
		if v, err := version.ParseGeneric(s.Version); err == nil {
			if oldest == nil || v.LessThan(oldest) {
				oldest = v
			}
			if newest == nil || newest.LessThan(v) {
				newest = v
			}
			if v.Major() == 3 && v.Minor() == 5 && v.LessThan(upgrade.SafeFrom35) {
				trapped = append(trapped, name+" ("+s.Version+")")
			}
		}
		if v, err := version.ParseGeneric(s.StorageVersion); err == nil && (storage == nil || storage.LessThan(v)) {
			storage = v
		}
	}
	if len(byVersion) == 0 {
		return nil
	}
	versions := make([]string, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	var out []Finding
	if len(versions) == 1 {
		out = append(out, Finding{Severity: OK, Check: "versions", Message: "every member runs etcd " + versions[0]})
	} else {
		var parts []string
		for _, v := range versions {
			parts = append(parts, fmt.Sprintf("%s on %s", v, strings.Join(byVersion[v], ", ")))
		}
		running := strings.Join(parts, "; ")
		minors := 0
		if oldest != nil && newest != nil && oldest.Major() == newest.Major() {
			minors = int(newest.Minor()) - int(oldest.Minor())
		}
		switch {
		case oldest == nil || newest == nil || oldest.Major() != newest.Major() || minors > 1:
			out = append(out, Finding{Severity: Error, Check: "versions",
				Message: "members run etcd releases more than one minor apart, which etcd does not support: " + running,
				Fix:     "upgrade the oldest members one minor at a time (kubectl etcd upgrade --version MAJOR.MINOR.PATCH on their nodes); kubectl etcd version shows them"})
		case minors == 1:
			out = append(out, Finding{Severity: Warning, Check: "versions",
				Message: fmt.Sprintf("members run two etcd minors, %d.%d and %d.%d: a rolling upgrade or downgrade is under way or stopped halfway (the cluster keeps %d.%d's cluster version until every member runs %d.%d): %s",
					oldest.Major(), oldest.Minor(), newest.Major(), newest.Minor(), oldest.Major(), oldest.Minor(), newest.Major(), newest.Minor(), running),
				Fix: fmt.Sprintf("finish it: kubectl etcd upgrade --version %s on each node still on %d.%d (or, to go back, kubectl etcd downgrade); kubectl etcd version shows them", newest, oldest.Major(), oldest.Minor())})
		default:
			out = append(out, Finding{Severity: Warning, Check: "versions",
				Message: "members run different etcd versions: " + running,
				Fix:     "finish the rolling upgrade (or downgrade) so every member runs the same version; kubectl etcd version shows them"})
		}
	}
	if len(trapped) > 0 {
		out = append(out, Finding{Severity: Warning, Check: "upgrade-trap",
			Message: fmt.Sprintf("%s %s etcd 3.5 before %s: a learner promoted on such a release can leave the v3 members bucket disagreeing with the raft membership, which etcd 3.6 trusts at start (etcd-io/etcd#19557)", strings.Join(trapped, ", "), runOrRuns(len(trapped)), upgrade.SafeFrom35),
			Fix:     fmt.Sprintf("upgrade every member to %s or a newer 3.5 first (kubectl etcd upgrade --version %s on each node), only then to 3.6", upgrade.SafeFrom35, upgrade.SafeFrom35)})
	}
	if f.Manifest != nil && f.Manifest.Image != "" && storage != nil {
		img, err := upgrade.ParseImage(f.Manifest.Image)
		if err == nil && img.Version.Major() == storage.Major() && img.Version.Minor() < storage.Minor() {
			out = append(out, Finding{Severity: Error, Check: "image",
				Message: fmt.Sprintf("%s runs etcd %s, older than the data's storage version %s: etcd refuses this data when the member restarts", f.Manifest.Path, img.Version, storage),
				Fix: fmt.Sprintf("set the image back to a %d.%d release (kubectl etcd upgrade --version %d.%d.x), or lower the storage version first with kubectl etcd downgrade enable %d.%d and wait until every member reports it",
					storage.Major(), storage.Minor(), storage.Major(), storage.Minor(), img.Version.Major(), img.Version.Minor())})
		}
	}
	return out
}

// checkRaftTiming compares what config set gave the current members of the
// flags that must agree: a change made on some nodes only leaves members
// that call elections their peers never needed.
func checkRaftTiming(f *Facts) []Finding {
	var out []Finding
	for _, flag := range etcdflags.MustAgree {
		given := f.RaftTiming[flag]
		if len(given) == 0 {
			continue
		}
		byValue := map[string][]string{}
		for _, s := range f.Members {
			name := memberName(s.Member)
			byValue[given[s.Name]] = append(byValue[given[s.Name]], name)
		}
		values := make([]string, 0, len(byValue))
		for v := range byValue {
			values = append(values, v)
		}
		sort.Strings(values)
		if len(values) == 1 {
			if values[0] != "" {
				out = append(out, Finding{Severity: OK, Check: "raft-timing", Message: fmt.Sprintf("every member was given --%s=%s", flag, values[0])})
			}
			continue
		}
		// The value config set gave most members is the change under way.
		target := ""
		var parts []string
		for _, v := range values {
			if v != "" && (target == "" || len(byValue[v]) > len(byValue[target])) {
				target = v
			}
			word := "--" + flag + "=" + v
			if v == "" {
				word = "no --" + flag + " from config set (etcd's default unless the manifest sets it)"
			}
			parts = append(parts, word+" on "+strings.Join(byValue[v], ", "))
		}
		var rest []string
		for _, v := range values {
			if v != target {
				rest = append(rest, byValue[v]...)
			}
		}
		out = append(out, Finding{Severity: Warning, Check: "raft-timing",
			Message: fmt.Sprintf("members disagree on --%s, which every member must share: %s", flag, strings.Join(parts, "; ")),
			Fix:     fmt.Sprintf("finish the change: kubectl etcd config set %s=%s on the node of %s", flag, target, strings.Join(rest, ", "))})
	}
	return out
}

func runOrRuns(n int) string {
	if n == 1 {
		return "runs"
	}
	return "run"
}

func checkCerts(f *Facts) []Finding {
	var out []Finding
	for _, e := range f.CertErrors {
		out = append(out, Finding{Severity: Warning, Check: "certificates", Message: "cannot read " + e})
	}
	soonest := time.Duration(-1)
	for _, c := range f.Certs {
		left := c.NotAfter.Sub(f.Now)
		if soonest < 0 || left < soonest {
			soonest = left
		}
		fix := certFix(c)
		switch {
		case left <= 0:
			out = append(out, Finding{Severity: Error, Check: "certificates", Member: c.Member,
				Message: fmt.Sprintf("%s (%s) expired on %s", c.Source, c.Subject, c.NotAfter.UTC().Format(time.DateOnly)), Fix: fix})
		case left < CertWarn:
			out = append(out, Finding{Severity: Warning, Check: "certificates", Member: c.Member,
				Message: fmt.Sprintf("%s (%s) expires in %d days, on %s", c.Source, c.Subject, int(left.Hours()/24), c.NotAfter.UTC().Format(time.DateOnly)), Fix: fix})
		}
	}
	if len(out) == 0 && len(f.Certs) > 0 {
		out = append(out, Finding{Severity: OK, Check: "certificates", Message: fmt.Sprintf("%d certificates seen, the first expires in %d days", len(f.Certs), int(soonest.Hours()/24))})
	}
	return out
}

func certFix(c Cert) string {
	switch {
	case c.Name == "etcd-ca":
		return "the etcd CA cannot be renewed in place: plan a CA rotation"
	case c.Name == "etcd-server" && c.Member != "":
		return fmt.Sprintf("on %s's node: kubectl etcd certs renew etcd-server --restart", c.Member)
	case c.Name != "":
		return fmt.Sprintf("on that node: kubectl etcd certs renew %s --restart", c.Name)
	}
	return "issue a new certificate from the etcd CA"
}

func checkConsistency(f *Facts) []Finding {
	switch {
	case f.ConsistencyError != "":
		return []Finding{{Severity: Warning, Check: "consistency", Message: "could not compare the members' hashes: " + f.ConsistencyError, Fix: "kubectl etcd check consistency"}}
	case f.Consistency == nil:
		return nil
	case f.Consistency.Differences != "":
		return []Finding{{Severity: Error, Check: "consistency",
			Message: fmt.Sprintf("members hold different data at revision %d: %s", f.Consistency.Revision, f.Consistency.Differences),
			Fix:     "kubectl etcd check consistency; replace the member that differs from the majority: kubectl etcd member remove NAME, then join it again with empty data"}}
	case f.Consistency.Consistent:
		return []Finding{{Severity: OK, Check: "consistency", Message: fmt.Sprintf("every voting member has the same hash at revision %d", f.Consistency.Revision)}}
	}
	return nil // members that did not answer are reported by checkMembers
}

// checkManifest compares this node's static pod with the member list: a
// stale --initial-cluster does no harm while the data directory is there,
// but breaks the member as soon as it starts on empty data.
func checkManifest(f *Facts) []Finding {
	if f.Manifest == nil || len(f.Manifest.InitialCluster) == 0 {
		return nil // etcd's default is this member alone, nothing to compare
	}
	pairs := map[string]bool{}
	names := map[string]bool{}
	for _, s := range f.Members {
		if s.Name == "" {
			continue
		}
		names[s.Name] = true
		for _, u := range s.PeerURLs {
			pairs[s.Name+"="+u] = true
		}
	}
	listed := map[string]bool{}
	var stale []string
	for _, pair := range f.Manifest.InitialCluster {
		n, _, _ := strings.Cut(pair, "=")
		listed[n] = true
		if !pairs[pair] {
			stale = append(stale, pair)
		}
	}
	var missing []string
	for n := range names {
		if !listed[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(stale) == 0 && len(missing) == 0 {
		return []Finding{{Severity: OK, Check: "manifest", Message: f.Manifest.Path + ": --initial-cluster agrees with the member list"}}
	}
	var parts []string
	if len(stale) > 0 {
		parts = append(parts, "lists "+strings.Join(stale, ", ")+", not in the member list")
	}
	if len(missing) > 0 {
		parts = append(parts, "lacks "+strings.Join(missing, ", "))
	}
	return []Finding{{Severity: Warning, Check: "manifest",
		Message: fmt.Sprintf("%s: --initial-cluster %s; harmless while the data directory is kept, wrong if etcd starts on empty data", f.Manifest.Path, strings.Join(parts, " and ")),
		Fix:     "kubectl etcd member list; correct --initial-cluster in the manifest on this node"}}
}

// checkLeftovers is LeftoverFindings of what the manifest's data
// directory has beside it.
func checkLeftovers(f *Facts) []Finding { return LeftoverFindings(f.Leftovers) }

// LeftoverFindings warns of the copies interrupted recoveries and
// restores left on this node, and of the member's data directories it
// does not run on (datadir.Leftovers): each may be as large as the
// database, on the disk etcd writes to, and no later run removes them.
// The offline doctor reports them too.
func LeftoverFindings(leftovers []datadir.Leftover) []Finding {
	var out []Finding
	for _, l := range leftovers {
		f := Finding{Severity: Warning, Check: "leftovers", Message: l.String() + "; etcd does not use it", Fix: l.Removal()}
		if l.Data {
			f.Check, f.Message = "unused-data", l.String()
		}
		out = append(out, f)
	}
	return out
}

// checkPlaintext warns of traffic without TLS: anyone who reaches the
// port reads and writes the cluster state.
func checkPlaintext(f *Facts) []Finding {
	var urls []string
	seen := map[string]bool{}
	add := func(list []string) {
		for _, u := range list {
			if strings.HasPrefix(u, "http://") && !seen[u] {
				seen[u] = true
				urls = append(urls, u)
			}
		}
	}
	add(f.Endpoints)
	for _, s := range f.Members {
		add(s.ClientURLs)
		add(s.PeerURLs)
	}
	if f.Manifest != nil {
		add(f.Manifest.ListenClientURLs)
		add(f.Manifest.ListenPeerURLs)
	}
	if len(urls) == 0 {
		return nil
	}
	sort.Strings(urls)
	return []Finding{{Severity: Warning, Check: "plaintext",
		Message: "etcd is reached or listens without TLS on " + strings.Join(urls, ", ") + ": anyone who reaches these ports reads and writes the cluster state",
		Fix:     "serve clients and peers over https with client certificate auth, as kubeadm does (kubectl etcd init writes such a manifest)"}}
}

// diskFix is what to do about a slow disk, whichever operation shows it.
const diskFix = "etcd waits for its disk on every write: give its data directory (/var/lib/etcd) a dedicated SSD or NVMe disk away from other busy I/O, measure it with fio --fdatasync=1, and raise etcd's I/O priority (ionice -c2 -n0 -p PID)"

// checkDisk compares each member's p99 WAL fsync and backend commit
// latencies with etcd's guidance: over the sample window when enough
// writes happened in it, else since the member started.
func checkDisk(f *Facts) []Finding {
	walLimit, commitLimit := orDefault(f.WALFsyncP99, WALFsyncP99), orDefault(f.BackendCommitP99, BackendCommitP99)
	later := map[string]Metrics{}
	for _, m := range f.Resampled {
		later[m.Member] = m
	}
	var out []Finding
	var seen []string
	for _, m := range f.Metrics {
		if m.Error != "" {
			out = append(out, Finding{Severity: Warning, Check: "disk", Member: m.Member,
				Message: fmt.Sprintf("cannot read the metrics of %s: %s", m.Member, m.Error),
				Fix:     fmt.Sprintf("check that %s/metrics answers with the client certificate in use", m.Endpoint)})
			continue
		}
		for _, op := range []struct {
			what, unit   string
			first, again Histogram
			limit        time.Duration
		}{
			{"WAL fsync", "fsyncs", m.WALFsync, later[m.Member].WALFsync, walLimit},
			{"backend commit", "commits", m.BackendCommit, later[m.Member].BackendCommit, commitLimit},
		} {
			h, over := op.first, "since it started"
			if !m.Started.IsZero() {
				over = "since it started " + duration.HumanDuration(m.At.Sub(m.Started)) + " ago"
			}
			if recent, ok := op.again.Since(op.first); ok && recent.Count >= DiskSamples {
				h, over = recent, "over the last "+later[m.Member].At.Sub(m.At).Round(time.Second).String()
			}
			if h.Count < DiskSamples {
				continue
			}
			p99 := h.Quantile(0.99)
			seen = append(seen, fmt.Sprintf("%s %s %s", m.Member, op.what, ms(p99)))
			if p99 > op.limit {
				out = append(out, Finding{Severity: Warning, Check: "disk", Member: m.Member,
					Message: fmt.Sprintf("slow disk on %s: p99 %s is %s %s (%d %s), above %s", m.Member, op.what, ms(p99), over, h.Count, op.unit, ms(op.limit)),
					Fix:     diskFix})
			}
		}
	}
	switch {
	case len(out) == 0 && len(seen) > 0:
		out = append(out, Finding{Severity: OK, Check: "disk",
			Message: fmt.Sprintf("p99 WAL fsync under %s and backend commit under %s (%s)", ms(walLimit), ms(commitLimit), strings.Join(seen, ", "))})
	case len(out) == 0 && len(f.Metrics) > 0:
		out = append(out, Finding{Severity: OK, Check: "disk",
			Message: fmt.Sprintf("too few writes to judge the disks (a p99 needs %d fsyncs or commits)", DiskSamples)})
	}
	return out
}

// checkLeaderChanges reports leadership that moved while the doctor
// watched, or that moves often: every change stalls writes for an
// election, and frequent ones mean missed heartbeats.
func checkLeaderChanges(f *Facts) []Finding {
	const fix = "if nobody restarted a member or moved the leader just now, heartbeats are missed: check the disk (fsync latency), the network between the members and CPU starvation; members far apart need a larger --heartbeat-interval and --election-timeout"
	later := map[string]Metrics{}
	for _, m := range f.Resampled {
		later[m.Member] = m
	}
	var out []Finding
	var window time.Duration
	watched := false
	var changed []string
	for _, m := range f.Metrics {
		again, ok := later[m.Member]
		if m.Error != "" || !ok || again.Error != "" || !again.Started.Equal(m.Started) {
			continue
		}
		watched = true
		window = max(window, again.At.Sub(m.At))
		if d := again.LeaderChanges - m.LeaderChanges; d > 0 {
			changed = append(changed, fmt.Sprintf("%s +%.0f", m.Member, d))
		}
	}
	if len(changed) > 0 {
		out = append(out, Finding{Severity: Warning, Check: "leader-changes",
			Message: fmt.Sprintf("the leader changed during the %s the doctor watched (leader changes seen: %s)", window.Round(time.Second), strings.Join(changed, ", ")),
			Fix:     fix})
	}
	// Since start: the first leader a member sees counts as a change.
	var worst *Metrics
	worstRate := 0.0
	for i, m := range f.Metrics {
		if m.Error != "" || m.Started.IsZero() {
			continue
		}
		extra := m.LeaderChanges - 1
		rate := extra / max(m.At.Sub(m.Started).Hours(), 1.0/60)
		if extra >= LeaderChanges && rate > LeaderChangesPerHour && rate > worstRate {
			worst, worstRate = &f.Metrics[i], rate
		}
	}
	if worst != nil {
		out = append(out, Finding{Severity: Warning, Check: "leader-changes", Member: worst.Member,
			Message: fmt.Sprintf("%s has seen %.0f leader changes in the %s since it started (%.1f an hour)", worst.Member, worst.LeaderChanges, duration.HumanDuration(worst.At.Sub(worst.Started)), worstRate),
			Fix:     fix})
	}
	if len(out) > 0 || len(f.Metrics) == 0 {
		return out
	}
	msg := "no frequent leader changes since the members started"
	if watched {
		msg = fmt.Sprintf("the leader did not change during the %s watched; %s", window.Round(time.Second), msg)
	}
	return []Finding{{Severity: OK, Check: "leader-changes", Message: msg}}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ms prints a latency in milliseconds, as etcd's guidance states them.
func ms(d time.Duration) string {
	if d < 100*time.Microsecond {
		return d.String()
	}
	return strconv.FormatFloat(math.Round(float64(d)/float64(time.Millisecond)*10)/10, 'f', -1, 64) + "ms"
}
