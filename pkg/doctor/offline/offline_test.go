package offline

import (
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
)

func TestImageVersion(t *testing.T) {
	for image, want := range map[string]string{
		"registry.k8s.io/etcd:3.6.16-0": "3.6.16",
		"registry.k8s.io/etcd:v3.7.3":   "3.7.3",
		"localhost:5000/etcd":           "",
		"etcd:latest":                   "",
	} {
		got := ""
		if v := imageVersion(image); v != nil {
			got = v.String()
		}
		if got != want {
			t.Errorf("imageVersion(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestGateOn(t *testing.T) {
	tests := []struct {
		flags map[string]string
		want  bool
	}{
		{map[string]string{"feature-gates": "InitialCorruptCheck=true,CompactHashCheck=true"}, true},
		{map[string]string{"feature-gates": "InitialCorruptCheck=true"}, false},
		{map[string]string{"feature-gates": "CompactHashCheck=false"}, false},
		{map[string]string{"experimental-compact-hash-check-enabled": "true"}, true},
		{map[string]string{}, false},
	}
	for _, tt := range tests {
		if got := gateOn(tt.flags, "CompactHashCheck", "experimental-compact-hash-check-enabled"); got != tt.want {
			t.Errorf("gateOn(%v) = %v, want %v", tt.flags, got, tt.want)
		}
	}
}

func TestDiagnoseFacts(t *testing.T) {
	healthy := func() *datadir.Inspection {
		return &datadir.Inspection{DataDir: "/var/lib/etcd",
			WAL:        &datadir.WAL{Dir: "/var/lib/etcd/member/wal", Files: []string{"a.wal"}, Tail: datadir.TailClean, Term: 3, Commit: 100, LastIndex: 102, MemberID: "a"},
			Snapshot:   &datadir.Snapshot{},
			WALMembers: []datadir.Member{{ID: "a", Name: "cp-1"}},
			DB:         &datadir.DB{Path: "/var/lib/etcd/member/snap/db", Size: 1 << 20, ConsistentIndex: 100, StorageVersion: "3.6.0", Members: []datadir.Member{{ID: "a", Name: "cp-1"}}},
		}
	}
	t.Run("a running etcd holds the db", func(t *testing.T) {
		ins := healthy()
		ins.DB = &datadir.DB{Path: ins.DB.Path, Locked: true, OpenError: "locked: a running etcd holds it"}
		r := Diagnose(&Facts{Inspection: ins})
		if f := r.Find(doctor.Error, "db"); f == nil || !strings.Contains(f.Fix, "without --offline") {
			t.Errorf("locked db: %+v", r.Findings)
		}
		if r.Find(doctor.OK, "membership") != nil {
			t.Error("membership judged without the db")
		}
	})
	t.Run("entries past the commit and membership changes pending", func(t *testing.T) {
		ins := healthy()
		ins.PendingConfChanges = 1
		r := Diagnose(&Facts{Inspection: ins})
		if f := r.Find(doctor.OK, "raft"); f == nil || !strings.Contains(f.Message, "2 entries not known to be committed") {
			t.Errorf("raft: %+v", f)
		}
		if f := r.Find(doctor.OK, "membership"); f == nil || !strings.Contains(f.Message, "applied at start") {
			t.Errorf("membership: %+v", f)
		}
		if r.Findings[0].Member != "cp-1" {
			t.Errorf("member %q", r.Findings[0].Member)
		}
	})
	t.Run("the backend is ahead of the WAL", func(t *testing.T) {
		ins := healthy()
		ins.DB.ConsistentIndex = 150
		r := Diagnose(&Facts{Inspection: ins})
		if f := r.Find(doctor.Error, "db"); f == nil || !strings.Contains(f.Message, "past the WAL's committed index 100") {
			t.Errorf("db ahead: %+v", r.Findings)
		}
	})
	t.Run("v2 requests of etcd 3.5 in the WAL", func(t *testing.T) {
		ins := healthy()
		ins.WAL.V2Entries, ins.WAL.LastV2Index = 2, 4
		m := &Manifest{Path: "etcd.yaml", Image: "registry.k8s.io/etcd:3.7.3-0", Flags: map[string]string{}}
		r := Diagnose(&Facts{Inspection: ins, Manifest: m})
		if f := r.Find(doctor.Error, "v2-entries"); f == nil || !strings.Contains(f.Message, "2 entries etcd 3.5 wrote as v2 requests") || !strings.Contains(f.Message, "panics") || !strings.Contains(f.Fix, "etcd 3.6") {
			t.Errorf("v2 entries on a 3.7 image: %+v", r.Findings)
		}
		m.Image = "registry.k8s.io/etcd:3.6.16-0"
		if r := Diagnose(&Facts{Inspection: ins, Manifest: m}); r.Find(doctor.Error, "v2-entries") != nil {
			t.Errorf("v2 entries judged an error on a 3.6 image, which replays them: %+v", r.Findings)
		}
	})
	t.Run("a member missing from the backend", func(t *testing.T) {
		ins := healthy()
		ins.WALMembers = append(ins.WALMembers, datadir.Member{ID: "b", Name: "cp-2"})
		r := Diagnose(&Facts{Inspection: ins})
		if f := r.Find(doctor.Error, "membership"); f == nil || !strings.Contains(f.Message, "b (cp-2): in raft's membership but not in the v3 store") {
			t.Errorf("missing: %+v", r.Findings)
		}
	})
}
