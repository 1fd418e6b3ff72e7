// Package upgrade holds the rules for changing the etcd version of a
// running cluster one member at a time: which version may follow which,
// what the cluster must look like first, and how an etcd image tag names
// its release. Everything here is a pure function of what the cluster
// reported, so the rules are tested without a cluster.
package upgrade

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// SafeFrom35 is the oldest 3.5 release that may be upgraded to 3.6: older
// 3.5 releases may carry a v3 members bucket that disagrees with the raft
// membership (learners promoted on them, etcd-io/etcd#19557), which 3.6
// reads and trusts.
var SafeFrom35 = version.MustParseGeneric("3.5.26")

// Image is an etcd container image split into the repository and the etcd
// release its tag names.
type Image struct {
	// Repository is everything before the tag: registry.k8s.io/etcd.
	Repository string
	// Tag is the tag as written: 3.6.16-0.
	Tag string
	// Version is the etcd release of the tag: 3.6.16.
	Version *version.Version
}

// ParseImage reads an etcd image reference the way kubeadm tags its
// images: REPOSITORY:VERSION-N (registry.k8s.io/etcd:3.6.16-0), the -N
// being the image's own revision; a leading v and a missing -N are
// accepted (gcr.io/etcd-development/etcd:v3.6.16). A digest after the tag
// is kept out of the version.
func ParseImage(ref string) (Image, error) {
	name := ref
	if at := strings.Index(name, "@"); at >= 0 {
		name = name[:at]
	}
	colon := strings.LastIndex(name, ":")
	if colon < 0 || strings.Contains(name[colon:], "/") {
		return Image{}, fmt.Errorf("image %q has no tag: want REPOSITORY:VERSION such as registry.k8s.io/etcd:3.6.16-0", ref)
	}
	repo, tag := name[:colon], name[colon+1:]
	if repo == "" {
		return Image{}, fmt.Errorf("image %q has no repository", ref)
	}
	v, err := TagVersion(tag)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %w", ref, err)
	}
	return Image{Repository: repo, Tag: tag, Version: v}, nil
}

// TagVersion is the etcd release an image tag names: 3.6.16-0 and v3.6.16
// are 3.6.16.
func TagVersion(tag string) (*version.Version, error) {
	s := strings.TrimPrefix(tag, "v")
	if i := strings.LastIndex(s, "-"); i > 0 && isDigits(s[i+1:]) {
		s = s[:i]
	}
	v, err := version.ParseGeneric(s)
	if err != nil || len(v.Components()) != 3 {
		return nil, fmt.Errorf("tag %q does not name an etcd release (want MAJOR.MINOR.PATCH-N such as 3.6.16-0)", tag)
	}
	return v, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// WithVersion is the image of the same repository for release v, tagged
// as kubeadm tags it (3.7.3-0).
func (i Image) WithVersion(v *version.Version) string {
	return fmt.Sprintf("%s:%s-0", i.Repository, v.String())
}

// Member is what the rules need to know of one member.
type Member struct {
	Name string
	// Version is the server version it reports (3.6.16); empty when it
	// did not answer.
	Version string
	// StorageVersion is the version of its data (3.6.0); empty before 3.6.
	StorageVersion string
	Learner        bool
}

// Plan is the change the rules are asked about: the member of this node
// goes from its running version to Target.
type Plan struct {
	// Self is the name of the member being changed.
	Self string
	// Members is every member, Self included.
	Members []Member
	// Target is the release of the new image.
	Target *version.Version
	// DowngradeTarget is the version the cluster's downgrade (etcd's
	// downgrade API) is enabled for, as MAJOR.MINOR; empty when none.
	DowngradeTarget string
}

// Finding is one verdict of the rules: a refusal, or a note that lets the
// change go ahead.
type Finding struct {
	Refused bool
	Message string
}

func (f Finding) String() string {
	if f.Refused {
		return "refused: " + f.Message
	}
	return "ok: " + f.Message
}

// Check applies the version rules to a plan. Its findings come in a fixed
// order: the member's own step, then every other member, then learners.
func Check(p Plan) []Finding {
	var out []Finding
	refuse := func(format string, args ...any) {
		out = append(out, Finding{Refused: true, Message: fmt.Sprintf(format, args...)})
	}
	note := func(format string, args ...any) {
		out = append(out, Finding{Message: fmt.Sprintf(format, args...)})
	}
	if p.Target == nil {
		refuse("no target version")
		return out
	}
	target := p.Target
	var self *Member
	for i := range p.Members {
		if p.Members[i].Name == p.Self {
			self = &p.Members[i]
		}
	}
	if self == nil {
		refuse("member %s is not in the cluster", p.Self)
		return out
	}
	from, err := version.ParseGeneric(self.Version)
	if err != nil {
		refuse("member %s reports no version it can be upgraded from (%q)", self.Name, self.Version)
		return out
	}
	out = append(out, step(self.Name, from, target, p.DowngradeTarget))

	// The others: the cluster may span two adjacent minors during a
	// rolling change, never three, and a 3.5 member below SafeFrom35 must
	// be upgraded within 3.5 before any member runs 3.6.
	var versions []string
	for _, m := range p.Members {
		versions = append(versions, m.Name+"="+orUnknown(m.Version))
		if m.Name == p.Self {
			continue
		}
		v, err := version.ParseGeneric(m.Version)
		if err != nil {
			refuse("member %s reports no version; every member must answer before an upgrade", m.Name)
			continue
		}
		if d := minorDistance(v, target); d > 1 || d < -1 {
			refuse("member %s runs %s: %s would be two minors away from it; upgrade every member one minor at a time", m.Name, v, target)
		}
		if crosses35to36(v, target) && v.LessThan(SafeFrom35) {
			refuse("member %s runs %s: upgrade every 3.5 member to %s or later before any runs 3.6 (etcd-io/etcd#19557)", m.Name, v, SafeFrom35)
		}
	}
	sort.Strings(versions)
	note("member versions: %s", strings.Join(versions, ", "))
	for _, m := range p.Members {
		if m.Learner {
			refuse("member %s is a learner: promote or remove it before changing versions", m.Name)
		}
	}
	if !anyRefused(out) {
		note("no pending learners")
	}
	return out
}

// step is the verdict on one member going from one release to another.
func step(name string, from, to *version.Version, downgradeTarget string) Finding {
	d := minorDistance(from, to)
	switch {
	case from.Major() != to.Major():
		return Finding{true, fmt.Sprintf("%s runs %s: changing the major version to %s is not supported", name, from, to)}
	case d > 1:
		return Finding{true, fmt.Sprintf("%s runs %s: %s skips a minor; upgrade to %d.%d first", name, from, to, from.Major(), from.Minor()+1)}
	case d == 1 && from.Major() == 3 && from.Minor() == 5 && from.LessThan(SafeFrom35):
		return Finding{true, fmt.Sprintf("%s runs %s: 3.5 -> 3.6 needs %s or later first (etcd-io/etcd#19557)", name, from, SafeFrom35)}
	case d == 1:
		return Finding{false, fmt.Sprintf("%s: %s -> %s, one minor up", name, from, to)}
	case d == 0:
		return Finding{false, fmt.Sprintf("%s: %s -> %s, the same minor", name, from, to)}
	case d == -1 && downgradeTarget == fmt.Sprintf("%d.%d", to.Major(), to.Minor()):
		return Finding{false, fmt.Sprintf("%s: %s -> %s, the downgrade enabled for %s", name, from, to, downgradeTarget)}
	case d == -1:
		return Finding{true, fmt.Sprintf("%s runs %s: going down to %s needs the downgrade API first: kubectl etcd downgrade enable %d.%d", name, from, to, to.Major(), to.Minor())}
	default:
		return Finding{true, fmt.Sprintf("%s runs %s: %s is more than one minor down", name, from, to)}
	}
}

func minorDistance(from, to *version.Version) int {
	if from.Major() != to.Major() {
		return 100
	}
	return int(to.Minor()) - int(from.Minor())
}

func crosses35to36(from, to *version.Version) bool {
	return from.Major() == 3 && from.Minor() == 5 && to.Major() == 3 && to.Minor() >= 6
}

func anyRefused(fs []Finding) bool {
	for _, f := range fs {
		if f.Refused {
			return true
		}
	}
	return false
}

// Refused reports whether any finding refuses the change.
func Refused(fs []Finding) bool { return anyRefused(fs) }

// Err is the refusals as one error, nil when none.
func Err(fs []Finding) error {
	var msgs []string
	for _, f := range fs {
		if f.Refused {
			msgs = append(msgs, f.Message)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("upgrade refused: %s", strings.Join(msgs, "; "))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// MembershipMismatch compares the members raft knows (the member list)
// with the members the v3 members bucket of the data holds, both as hex
// IDs. 3.5 releases before SafeFrom35 could leave them apart after a
// learner was promoted; 3.6 reads the bucket, so a member missing or extra
// there makes the upgraded member disagree with the cluster. Empty when
// they agree.
func MembershipMismatch(raft, bucket []string) string {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, id := range list {
			m[strings.ToLower(id)] = true
		}
		return m
	}
	r, b := in(raft), in(bucket)
	var missing, extra []string
	for id := range r {
		if !b[id] {
			missing = append(missing, id)
		}
	}
	for id := range b {
		if !r[id] {
			extra = append(extra, id)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing from the v3 members bucket: "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "in the v3 members bucket but not in raft: "+strings.Join(extra, ", "))
	}
	return strings.Join(parts, "; ") + " (etcd-io/etcd#19557: upgrade within 3.5 to " + SafeFrom35.String() + " or later, which repairs the bucket, then retry)"
}
