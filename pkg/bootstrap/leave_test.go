package bootstrap

import (
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestRemovalCheck(t *testing.T) {
	m := func(id uint64, learner bool) *etcdserverpb.Member {
		return &etcdserverpb.Member{ID: id, Name: string(rune('a' + id - 1)), IsLearner: learner}
	}
	a, b, c, l := m(1, false), m(2, false), m(3, false), m(4, true)
	tests := []struct {
		name       string
		members    []*etcdserverpb.Member
		self       *etcdserverpb.Member
		healthy    map[uint64]bool
		force      bool
		wantErr    string
		wantTarget uint64
	}{
		{"three healthy", []*etcdserverpb.Member{a, b, c}, a, map[uint64]bool{1: true, 2: true, 3: true}, false, "", 2},
		{"one other down: 1 of 2 remaining is no quorum", []*etcdserverpb.Member{a, b, c}, a, map[uint64]bool{1: true, 3: true}, false, "leaves 2 voters of which 1 are healthy, fewer than the quorum of 2", 0},
		{"forced", []*etcdserverpb.Member{a, b, c}, a, map[uint64]bool{1: true, 3: true}, true, "", 3},
		{"two members, other healthy", []*etcdserverpb.Member{a, b}, b, map[uint64]bool{1: true, 2: true}, false, "", 1},
		{"two members, other down", []*etcdserverpb.Member{a, b}, b, map[uint64]bool{2: true}, false, "fewer than the quorum of 1", 0},
		{"last voter with a learner", []*etcdserverpb.Member{a, l}, a, map[uint64]bool{1: true, 4: true}, false, "last voting member", 0},
		{"a learner may always go", []*etcdserverpb.Member{a, l}, l, map[uint64]bool{}, false, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := removalCheck(tt.members, tt.self, tt.healthy, tt.force)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got uint64
			if target != nil {
				got = target.ID
			}
			if got != tt.wantTarget {
				t.Errorf("target %d, want %d", got, tt.wantTarget)
			}
		})
	}
}
