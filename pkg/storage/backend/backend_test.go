package backend

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"google.golang.org/protobuf/proto"
)

var smallDB = filepath.Join("..", "..", "..", "testdata", "bolt", "small.db")

// TestEntriesMatchEtcdsOwnDecoding reads every entry of a real backend
// file and checks each against etcd's own types: the revision as mvcc
// reads it, the record as mvccpb.KeyValue unmarshals it.
func TestEntriesMatchEtcdsOwnDecoding(t *testing.T) {
	db, err := Open(smallDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, tombstones int
	var last int64
	err = db.View(func(tx *bolt.Tx) error {
		b, err := KeyBucket(tx, smallDB)
		if err != nil {
			return err
		}
		err = ForEach(b, func(k, v []byte, e Entry) error {
			n++
			if e.Revision != mvcc.BytesToRev(k) || e.Tombstone != mvcc.IsTombstone(k) {
				t.Errorf("entry %x: revision %+v tombstone %v", k, e.Revision, e.Tombstone)
			}
			if e.Tombstone {
				tombstones++
			}
			if e.Revision.Main < last {
				t.Errorf("entry %x out of order after revision %d", k, last)
			}
			last = e.Revision.Main
			var want mvccpb.KeyValue
			if err := proto.Unmarshal(v, &want); err != nil {
				t.Fatal(err)
			}
			got := e.KeyValue
			if !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) || got.CreateRevision != want.CreateRevision ||
				got.ModRevision != want.ModRevision || got.Version != want.Version {
				t.Errorf("entry %x: %+v, etcd reads %v", k, got, &want)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if lr := LastRevision(b); lr != last {
			t.Errorf("last revision %d, the pass ended at %d", lr, last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The file was compacted: one entry per live key.
	if keys := strings.Fields(string(mustRead(t, filepath.Join("..", "..", "..", "testdata", "bolt", "small-keys.txt")))); n != len(keys) {
		t.Errorf("%d entries read, the file holds %d keys", n, len(keys))
	}
	t.Logf("%d entries, %d deletions, last revision %d", n, tombstones, last)
}

// TestForEachStops checks ErrStop ends a pass early without an error.
func TestForEachStops(t *testing.T) {
	db, err := Open(smallDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		b, err := KeyBucket(tx, smallDB)
		if err != nil {
			return err
		}
		return ForEach(b, func(_, _ []byte, _ Entry) error {
			if n++; n == 3 {
				return ErrStop
			}
			return nil
		})
	})
	if err != nil || n != 3 {
		t.Errorf("stopped after %d entries with %v, want 3 and no error", n, err)
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	if _, _, err := ParseRevision([]byte("not a revision")); err == nil || !strings.Contains(err.Error(), "is not an etcd revision") {
		t.Errorf("short key: %v", err)
	}
	if _, err := ParseEntry(mvcc.RevToBytes(mvcc.Revision{Main: 5}, mvcc.NewRevBytes()), []byte{0x10, 0x01}); err == nil || !strings.Contains(err.Error(), "record without a key") {
		t.Errorf("record without a key: %v", err)
	}
	if _, err := ParseKeyValue([]byte{0x0a, 0x05, 'a'}); err == nil {
		t.Error("a truncated record parsed")
	}
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
	if _, err := Open(filepath.Join("..", "..", "..", "testdata", "bolt", "small-keys.txt")); err == nil || !strings.Contains(err.Error(), "is not an etcd database file") {
		t.Errorf("a text file: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
