package source

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

func TestReadSnapshotSmallDB(t *testing.T) {
	s, err := ReadSnapshot(testdataPath("bolt", "small.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range s.KVs {
		keys = append(keys, kv.Key)
	}
	want := strings.Fields(string(etcdtest.ReadFile(t, testdataPath("bolt", "small-keys.txt"))))
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if s.Revision != 232274 || s.LastRevision != 232274 {
		t.Errorf("revision %d (last %d), want 232274", s.Revision, s.LastRevision)
	}
	var d storage.Decoder
	for _, kv := range s.Range("/registry/", storage.PrefixEnd("/registry/")) {
		o, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := storage.ParseKey(storage.DefaultPrefix, kv.Key)
		m, err := storage.ToMap(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		meta := m["metadata"].(map[string]any)
		if meta["name"] != k.Name || o.Partial != nil || kv.ModRevision <= 0 || kv.ModRevision > s.Revision {
			t.Errorf("%s decoded as %v %v (mod revision %d)", kv.Key, meta["name"], o.Partial, kv.ModRevision)
		}
	}
	if got := s.Range("/registry/jobs/default/pi", ""); len(got) != 1 {
		t.Errorf("single key range: %d", len(got))
	}
	if !s.HasPrefix("/registry/pods/") || s.HasPrefix("/registry/secrets/") {
		t.Error("HasPrefix")
	}

	// The past: at the pod's mod revision minus one, the pod's value (if it
	// existed) is an older one.
	pod := s.Range("/registry/pods/default/pi-dqtsw", "")[0]
	if pod.ModRevision > s.CompactRevision && pod.ModRevision-1 >= s.CompactRevision {
		old, err := ReadSnapshot(testdataPath("bolt", "small.db"), pod.ModRevision-1)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range old.Range("/registry/pods/default/pi-dqtsw", "") {
			if kv.ModRevision >= pod.ModRevision {
				t.Errorf("revision %d read a value of revision %d", pod.ModRevision-1, kv.ModRevision)
			}
		}
	}
	if _, err := ReadSnapshot(testdataPath("bolt", "small.db"), s.LastRevision+1); err == nil {
		t.Error("a revision after the last was accepted")
	}
}

func TestReadSnapshotRejectsOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "not.db")
	if err := os.WriteFile(p, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSnapshot(p, 0); err == nil || !strings.Contains(err.Error(), "not an etcd database file") {
		t.Errorf("error %v", err)
	}
	if _, err := ReadSnapshot(t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("error %v", err)
	}
}

// TestOpenSnapshotRangeReadsWhatReadSnapshotRangeReads: the open snapshot
// (values left in the file's map) lists the same keys, values and
// revisions through SnapshotSource,
// and lets go of the file on Close.
func TestOpenSnapshotRangeReadsWhatReadSnapshotRangeReads(t *testing.T) {
	path := testdataPath("bolt", "small.db")
	for _, rev := range []int64{0} {
		want, err := ReadSnapshotRange(path, rev, "/registry/", "")
		if err != nil {
			t.Fatal(err)
		}
		s, err := OpenSnapshotRange(path, rev, "/registry/", "")
		if err != nil {
			t.Fatal(err)
		}
		s.resident.every = 1 // let go of the pages after every value
		var got []storage.KV
		_, err = (&SnapshotSource{Snapshot: s}).Range(context.Background(), "/registry/", "\x00", 0, 0, func(kv storage.KV) error {
			kv.Value = append([]byte(nil), kv.Value...)
			got = append(got, kv)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.Revision != want.Revision || !reflect.DeepEqual(got, want.KVs) {
			t.Errorf("revision %d: %d keys read from the open file differ from the %d copied", rev, len(got), len(want.KVs))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if len(s.KVs) != 0 {
			t.Error("the keys outlive Close")
		}
	}
}
