package bootstrap

import (
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
)

func TestCommittedByMajority(t *testing.T) {
	members := []datadir.Member{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d", IsLearner: true}}
	data := func(id string, term, commit uint64, tail ...uint64) *datadir.Inspection {
		return &datadir.Inspection{WALMembers: members, WAL: &datadir.WAL{MemberID: id, Term: term, Commit: commit, LastIndex: commit + uint64(len(tail)), TailTerms: tail}}
	}
	// a committed to 10 and holds 11 to 13 of term 5.
	source := data("a", 5, 10, 5, 5, 5)
	tests := []struct {
		name  string
		other []*datadir.Inspection
		want  uint64
	}{
		{"no other copy: a alone is no majority", nil, 0},
		{"b holds them all in term 5", []*datadir.Inspection{data("b", 5, 9, 5, 5, 5, 5)}, 13},
		{"b holds up to 12", []*datadir.Inspection{data("b", 5, 9, 5, 5, 5)}, 12},
		{"b holds 12 of an older term: the logs part there", []*datadir.Inspection{data("b", 5, 9, 5, 5, 4, 4)}, 11},
		{"b saw a newer term: a newer leader may have replaced them", []*datadir.Inspection{data("b", 6, 9, 5, 5, 5, 5)}, 0},
		{"a second copy of a's own data counts once", []*datadir.Inspection{data("a", 5, 10, 5, 5, 5)}, 0},
		{"a learner's copy does not count", []*datadir.Inspection{data("d", 5, 9, 5, 5, 5, 5)}, 0},
		{"c holds them, b does not", []*datadir.Inspection{data("b", 5, 10), data("c", 5, 8, 5, 5, 5, 5, 5)}, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := committedByMajority(source, append([]*datadir.Inspection{source}, tt.other...)); got != tt.want {
				t.Errorf("committedByMajority = %d, want %d", got, tt.want)
			}
		})
	}
}
