package source

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/backend"
	bolt "go.etcd.io/bbolt"
)

// Snapshot is the key space of an etcd backend file (a snapshot saved with
// `etcdctl snapshot save`, or a member's member/snap/db) at one revision,
// sorted by key.
type Snapshot struct {
	// Revision is the revision read: the one asked for, or the file's last.
	Revision int64
	// LastRevision is the newest revision in the file.
	LastRevision int64
	// CompactRevision is the revision the file was compacted at.
	CompactRevision int64
	KVs             []storage.KV
	// OldBytes is, per key, the bytes of the values the file still holds
	// for revisions before the one read (older versions and deleted keys,
	// kept until compaction).
	OldBytes map[string]int64

	// db and tx hold the file open and mapped for a Snapshot opened by
	// OpenSnapshotRange, whose values point into the map; resident lets go
	// of the pages a Range read.
	db       *bolt.DB
	tx       *bolt.Tx
	resident *residentLimit
}

// Close lets go of the file of a Snapshot opened by OpenSnapshotRange;
// its values are gone after it. It does nothing for one read by
// ReadSnapshotRange.
func (s *Snapshot) Close() error {
	if s.db == nil {
		return nil
	}
	s.tx.Rollback()
	err := s.db.Close()
	s.db, s.tx, s.resident, s.KVs = nil, nil, nil, nil
	return err
}

// ReadSnapshot reads the etcd backend file at path in one pass over its
// `key` bucket and returns every live key at rev (0: the newest): for each
// key the latest value at or below rev; keys deleted by then are gone.
func ReadSnapshot(path string, rev int64) (*Snapshot, error) {
	return ReadSnapshotRange(path, rev, "", "")
}

// ReadSnapshotRange is ReadSnapshot keeping only the keys in [start, end)
// (end "": no upper bound), and their old revisions' bytes: the pass over
// the file is the same, memory holds only what the caller reads.
func ReadSnapshotRange(path string, rev int64, start, end string) (*Snapshot, error) {
	return readSnapshotRange(path, rev, start, end, false)
}

// OpenSnapshotRange is ReadSnapshotRange for a caller that reads the keys
// once, in order, and then closes the Snapshot: their values are not
// copied but stay in the file's memory map, which the Snapshot keeps until
// Close, and SnapshotSource lets go of the pages it read every 16 MiB. Memory
// holds the keys, not the values: listing 430 MiB of pods from a 1 GiB
// file stays small.
func OpenSnapshotRange(path string, rev int64, start, end string) (*Snapshot, error) {
	return readSnapshotRange(path, rev, start, end, true)
}

func readSnapshotRange(path string, rev int64, start, end string, keepOpen bool) (_ *Snapshot, err error) {
	db, err := backend.Open(path)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{OldBytes: map[string]int64{}}
	var tx *bolt.Tx
	if keepOpen {
		if tx, err = db.Begin(false); err != nil {
			db.Close()
			return nil, err
		}
		s.db, s.tx = db, tx
		defer func() {
			if err != nil {
				s.Close()
			}
		}()
	} else {
		defer db.Close()
	}
	view := db.View
	if keepOpen {
		view = func(fn func(*bolt.Tx) error) error { return fn(tx) }
	}
	err = view(func(tx *bolt.Tx) error {
		s.CompactRevision = backend.CompactRevision(tx)
		b, err := backend.KeyBucket(tx, path)
		if err != nil {
			return err
		}
		// Values are copied out of the memory map as the pass reads them,
		// in file order, and the pages read are let go of as it goes on:
		// memory holds the range's values, not the file.
		// An open snapshot lets go more often: its listing keeps the
		// process small (under 150 MiB with 100,000 pods of a 1 GiB file).
		every := 64 << 20
		if keepOpen {
			every = 16 << 20
		}
		resident := &residentLimit{db: db, size: tx.Size(), every: every}
		if keepOpen {
			s.resident = resident
		}
		var values valueArena
		live := map[string]storage.KV{}
		err = backend.ForEach(b, func(k, v []byte, e backend.Entry) error {
			resident.read(len(k) + len(v))
			s.LastRevision = e.Revision.Main
			if rev > 0 && e.Revision.Main > rev {
				// Revisions are in order: later entries are all newer.
				s.LastRevision = backend.LastRevision(b)
				return backend.ErrStop
			}
			key := e.KeyValue.Key
			if string(key) < start || end != "" && string(key) >= end {
				return nil
			}
			kv := storage.KV{CreateRevision: e.KeyValue.CreateRevision, ModRevision: e.KeyValue.ModRevision, Version: e.KeyValue.Version}
			prev, seen := live[string(key)]
			if seen {
				s.OldBytes[prev.Key] += int64(len(prev.Value))
				values.garbage += len(prev.Value)
				kv.Key = prev.Key
			} else {
				kv.Key = string(key)
			}
			if e.Tombstone {
				delete(live, kv.Key)
				return nil
			}
			if keepOpen {
				kv.Value = e.KeyValue.Value
				live[kv.Key] = kv
				return nil
			}
			kv.Value = values.copy(e.KeyValue.Value)
			live[kv.Key] = kv
			values.compactIfWasteful(live)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		s.KVs = make([]storage.KV, 0, len(live))
		for _, kv := range live {
			s.KVs = append(s.KVs, kv)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rev > s.LastRevision {
		return nil, fmt.Errorf("revision %d is newer than the file's last revision %d", rev, s.LastRevision)
	}
	if rev > 0 && rev < s.CompactRevision {
		return nil, fmt.Errorf("revision %d is compacted: the file keeps revisions from %d", rev, s.CompactRevision)
	}
	s.Revision = rev
	if rev == 0 {
		s.Revision = s.LastRevision
	}
	sort.Slice(s.KVs, func(i, j int) bool { return s.KVs[i].Key < s.KVs[j].Key })
	if s.resident != nil {
		s.resident.release()
	}
	return s, nil
}

// residentLimit lets go of the database file's pages mapped into memory
// every so many bytes read: they stay in the page cache, and a later read
// maps them back. Without it, reading a file makes all of it resident.
type residentLimit struct {
	db    *bolt.DB
	size  int64
	every int
	n     int
}

func (r *residentLimit) read(n int) {
	if r.n += n; r.n >= r.every {
		r.release()
	}
}

func (r *residentLimit) release() {
	releaseMapped(r.db, r.size)
	r.n = 0
}

// Range returns the keys in [start, end); end "" means the key start
// alone, end "\x00" every key from start.
func (s *Snapshot) Range(start, end string) []storage.KV {
	i := sort.Search(len(s.KVs), func(i int) bool { return s.KVs[i].Key >= start })
	if end == "" {
		if i < len(s.KVs) && s.KVs[i].Key == start {
			return s.KVs[i : i+1]
		}
		return nil
	}
	j := len(s.KVs)
	if end != "\x00" {
		j = sort.Search(len(s.KVs), func(j int) bool { return s.KVs[j].Key >= end })
	}
	if j < i {
		return nil
	}
	return s.KVs[i:j]
}

// HasPrefix reports whether any key starts with prefix.
func (s *Snapshot) HasPrefix(prefix string) bool {
	i := sort.Search(len(s.KVs), func(i int) bool { return s.KVs[i].Key >= prefix })
	return i < len(s.KVs) && strings.HasPrefix(s.KVs[i].Key, prefix)
}

// valueArena holds copies of values in large chunks. A value that a newer
// revision replaces stays behind as garbage until the live ones are moved
// to a new arena, which happens when the garbage outgrows them.
type valueArena struct {
	chunk         []byte
	used, garbage int
}

const arenaChunk = 8 << 20

func (a *valueArena) copy(v []byte) []byte {
	if cap(a.chunk)-len(a.chunk) < len(v) {
		a.chunk = make([]byte, 0, max(arenaChunk, len(v)))
	}
	a.chunk = append(a.chunk, v...)
	a.used += len(v)
	return a.chunk[len(a.chunk)-len(v) : len(a.chunk) : len(a.chunk)]
}

func (a *valueArena) compactIfWasteful(live map[string]storage.KV) {
	if a.garbage < 64<<20 || a.garbage < a.used-a.garbage {
		return
	}
	var fresh valueArena
	for key, kv := range live {
		kv.Value = fresh.copy(kv.Value)
		live[key] = kv
	}
	*a = fresh
}
