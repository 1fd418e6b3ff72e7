package upgrade

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/version"
)

func TestParseImage(t *testing.T) {
	for _, tc := range []struct {
		ref, repo, version, err string
	}{
		{ref: "registry.k8s.io/etcd:3.6.16-0", repo: "registry.k8s.io/etcd", version: "3.6.16"},
		{ref: "registry.k8s.io/etcd:3.5.35-0", repo: "registry.k8s.io/etcd", version: "3.5.35"},
		{ref: "gcr.io/etcd-development/etcd:v3.7.3", repo: "gcr.io/etcd-development/etcd", version: "3.7.3"},
		{ref: "localhost:5000/etcd:3.7.3-1@sha256:abcd", repo: "localhost:5000/etcd", version: "3.7.3"},
		{ref: "registry.k8s.io/etcd", err: "has no tag"},
		{ref: "localhost:5000/etcd", err: "has no tag"},
		{ref: "registry.k8s.io/etcd:latest", err: `tag "latest" does not name an etcd release`},
		{ref: "registry.k8s.io/etcd:3.6", err: "does not name an etcd release"},
		{ref: ":3.6.16-0", err: "has no repository"},
	} {
		img, err := ParseImage(tc.ref)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseImage(%q) = %v, want error containing %q", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseImage(%q): %v", tc.ref, err)
			continue
		}
		if img.Repository != tc.repo || img.Version.String() != tc.version {
			t.Errorf("ParseImage(%q) = %s %s, want %s %s", tc.ref, img.Repository, img.Version, tc.repo, tc.version)
		}
	}
	img, _ := ParseImage("registry.k8s.io/etcd:3.6.16-0")
	if got := img.WithVersion(version.MustParseGeneric("3.7.3")); got != "registry.k8s.io/etcd:3.7.3-0" {
		t.Errorf("WithVersion = %s", got)
	}
}

func members(versions ...string) []Member {
	var out []Member
	for i, v := range versions {
		out = append(out, Member{Name: string(rune('a' + i)), Version: v})
	}
	return out
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		members   []Member
		target    string
		downgrade string
		refused   string // substring of the refusal; empty: allowed
	}{
		{name: "one minor up", members: members("3.6.16", "3.6.16", "3.6.16"), target: "3.7.3"},
		{name: "second node of a rolling upgrade", members: members("3.6.16", "3.7.3", "3.6.16"), target: "3.7.3"},
		{name: "patch within a minor", members: members("3.6.13", "3.6.13", "3.6.13"), target: "3.6.16"},
		{name: "patch down within a minor", members: members("3.6.16", "3.6.16"), target: "3.6.13"},
		{name: "safe 3.5 to 3.6", members: members("3.5.26", "3.5.35", "3.5.35"), target: "3.6.16"},
		{name: "skip a minor", members: members("3.5.35", "3.5.35", "3.5.35"), target: "3.7.3", refused: "3.7.3 skips a minor; upgrade to 3.6 first"},
		{name: "old 3.5 to 3.6", members: members("3.5.21", "3.5.21", "3.5.21"), target: "3.6.16", refused: "3.5 -> 3.6 needs 3.5.26 or later first"},
		{name: "another member on old 3.5", members: members("3.5.35", "3.5.20", "3.5.35"), target: "3.6.16", refused: "member b runs 3.5.20: upgrade every 3.5 member to 3.5.26"},
		{name: "three minors at once", members: members("3.6.16", "3.5.35", "3.6.16"), target: "3.7.3", refused: "member b runs 3.5.35: 3.7.3 would be two minors away"},
		{name: "downgrade without the API", members: members("3.7.3", "3.7.3", "3.7.3"), target: "3.6.16", refused: "kubectl etcd downgrade enable 3.6"},
		{name: "downgrade enabled", members: members("3.7.3", "3.7.3", "3.7.3"), target: "3.6.16", downgrade: "3.6"},
		{name: "downgrade enabled for another minor", members: members("3.7.3", "3.7.3"), target: "3.6.16", downgrade: "3.5", refused: "downgrade enable 3.6"},
		{name: "two minors down", members: members("3.7.3", "3.7.3"), target: "3.5.35", refused: "more than one minor down"},
		{name: "major", members: members("3.7.3"), target: "4.0.0", refused: "changing the major version"},
		{name: "member down", members: members("3.6.16", "", "3.6.16"), target: "3.7.3", refused: "member b reports no version"},
		{name: "pending learner", members: append(members("3.6.16", "3.6.16"), Member{Name: "c", Version: "3.6.16", Learner: true}), target: "3.7.3", refused: "member c is a learner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := Check(Plan{Self: "a", Members: tc.members, Target: version.MustParseGeneric(tc.target), DowngradeTarget: tc.downgrade})
			err := Err(fs)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("got %v, want a refusal containing %q (findings %v)", err, tc.refused, fs)
			}
		})
	}
}

func TestCheckSelfMissing(t *testing.T) {
	err := Err(Check(Plan{Self: "z", Members: members("3.6.16"), Target: version.MustParseGeneric("3.7.3")}))
	if err == nil || !strings.Contains(err.Error(), "member z is not in the cluster") {
		t.Fatalf("got %v", err)
	}
}

func TestMembershipMismatch(t *testing.T) {
	if got := MembershipMismatch([]string{"a1", "B2"}, []string{"b2", "a1"}); got != "" {
		t.Errorf("agreeing membership reported %q", got)
	}
	got := MembershipMismatch([]string{"a1", "b2", "c3"}, []string{"a1", "b2", "d4"})
	for _, want := range []string{"missing from the v3 members bucket: c3", "in the v3 members bucket but not in raft: d4", "#19557"} {
		if !strings.Contains(got, want) {
			t.Errorf("mismatch %q lacks %q", got, want)
		}
	}
}
