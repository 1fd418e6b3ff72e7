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

func TestElectedLog(t *testing.T) {
	members := []datadir.Member{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d", IsLearner: true}}
	// A log of entries up to commit in term 5 or earlier, then tail.
	data := func(id string, commit uint64, tail ...uint64) *datadir.Inspection {
		last := uint64(5)
		if len(tail) > 0 {
			last = tail[len(tail)-1]
		}
		return &datadir.Inspection{WALMembers: members, WAL: &datadir.WAL{MemberID: id, Term: 5, Commit: commit, LastIndex: commit + uint64(len(tail)), LastTerm: last, TailTerms: tail}}
	}
	tests := []struct {
		name string
		data []*datadir.Inspection
		want int
	}{
		{"a alone is no majority", []*datadir.Inspection{data("a", 10, 5, 5)}, -1},
		// The leader died; b alone held the last write past every
		// committed index. b and c elect b, which commits it.
		{"the write only a follower held", []*datadir.Inspection{data("c", 10), data("b", 10, 5)}, 1},
		{"the longer log of the same last term", []*datadir.Inspection{data("a", 10, 5, 5), data("b", 9, 5, 5, 5, 5)}, 1},
		{"the newer last term wins over the longer log", []*datadir.Inspection{data("a", 10, 4, 4, 4), data("b", 10, 6)}, 1},
		{"equal logs: the higher commit", []*datadir.Inspection{data("a", 10, 5, 5), data("b", 11, 5)}, 1},
		{"equal logs and commits: this member's", []*datadir.Inspection{data("a", 11, 5), data("b", 11, 5)}, 0},
		{"every log committed: the one committed furthest", []*datadir.Inspection{data("a", 10), data("b", 12)}, 1},
		{"a log ending at its commit, longer than one with a tail", []*datadir.Inspection{data("c", 12), data("b", 10, 5)}, 0},
		{"a log ending at its commit, of an older term than another's tail", []*datadir.Inspection{data("c", 12), data("b", 10, 6)}, 1},
		{"a learner's newer log: the voters' newest", []*datadir.Inspection{data("a", 10, 5), data("b", 10, 6), data("d", 10, 7)}, 1},
		{"a member of no known membership", []*datadir.Inspection{data("e", 10, 5), data("a", 10)}, -1},
		{"two copies of one member count once", []*datadir.Inspection{data("a", 10, 5), data("a", 10, 5)}, -1},
		{"a learner does not vote", []*datadir.Inspection{data("a", 10, 5), data("d", 10)}, -1},
		{"a learner's longer log is passed over", []*datadir.Inspection{data("d", 10, 5, 5), data("a", 10), data("b", 10)}, 1},
		{"an unusable copy does not vote", []*datadir.Inspection{data("a", 10, 5), nil}, -1},
		// The leader, c, is not compared: a heard of a later commit than
		// b, but b was sent more entries.
		{"a longer log than the most advanced commit's", []*datadir.Inspection{data("a", 12, 5), data("b", 10, 5, 5, 5, 5)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := electedLog(tt.data); got != tt.want {
				t.Errorf("electedLog = %d, want %d", got, tt.want)
			}
		})
	}
}
