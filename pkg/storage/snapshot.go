package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// KV is one key with its value at a revision.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
}

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
	KVs             []KV
	// OldBytes is, per key, the bytes of the values the file still holds
	// for revisions before the one read (older versions and deleted keys,
	// kept until compaction).
	OldBytes map[string]int64
}

const revBytesLen = 17 // 8-byte main revision, '_', 8-byte sub revision

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
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory: give the db file (member/snap/db) or a snapshot file", path)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("%s is locked, probably by a running etcd: copy it, or save a snapshot, and read that", path)
		}
		return nil, fmt.Errorf("%s is not an etcd database file: %w", path, err)
	}
	defer db.Close()
	s := &Snapshot{OldBytes: map[string]int64{}}
	err = db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte("meta")); meta != nil {
			if v := meta.Get([]byte("finishedCompactRev")); len(v) >= 8 {
				s.CompactRevision = int64(binary.BigEndian.Uint64(v))
			}
		}
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return fmt.Errorf("%s is a bbolt file without the bucket \"key\": not an etcd database", path)
		}
		// Values are copied out of the memory map as the pass reads them,
		// in file order, and the pages read are let go of as it goes on:
		// memory holds the range's values, not the file.
		resident := residentLimit{db: db, size: st.Size(), every: 64 << 20}
		var values valueArena
		live := map[string]KV{}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			resident.read(len(k) + len(v))
			if len(k) != revBytesLen && len(k) != revBytesLen+1 || k[8] != '_' {
				return fmt.Errorf("%s: key bucket entry %x is not an etcd revision", path, k)
			}
			main := int64(binary.BigEndian.Uint64(k[:8]))
			s.LastRevision = main
			if rev > 0 && main > rev {
				// Revisions are in order: later entries are all newer.
				for k2, _ := c.Last(); k2 != nil; k2, _ = c.Prev() {
					if len(k2) >= 8 {
						s.LastRevision = int64(binary.BigEndian.Uint64(k2[:8]))
						break
					}
				}
				break
			}
			key, kv, err := parseRecord(v)
			if err != nil {
				return fmt.Errorf("%s: revision %d: bad key-value record: %w", path, main, err)
			}
			if string(key) < start || end != "" && string(key) >= end {
				continue
			}
			prev, seen := live[string(key)]
			if seen {
				s.OldBytes[prev.Key] += int64(len(prev.Value))
				values.garbage += len(prev.Value)
				kv.Key = prev.Key
			} else {
				kv.Key = string(key)
			}
			if len(k) == revBytesLen+1 && k[revBytesLen] == 't' {
				delete(live, kv.Key)
				continue
			}
			kv.Value = values.copy(kv.Value)
			live[kv.Key] = kv
			values.compactIfWasteful(live)
		}
		s.KVs = make([]KV, 0, len(live))
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
		releaseMapped(r.db, r.size)
		r.n = 0
	}
}

// Range returns the keys in [start, end); end "" means the key start
// alone, end "\x00" every key from start.
func (s *Snapshot) Range(start, end string) []KV {
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

func (a *valueArena) compactIfWasteful(live map[string]KV) {
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

// parseKeyValue reads an mvccpb.KeyValue record: key 1, create_revision 2,
// mod_revision 3, version 4, value 5, lease 6. Value aliases b.
func parseKeyValue(b []byte) (KV, error) {
	key, kv, err := parseRecord(b)
	kv.Key = string(key)
	return kv, err
}

// parseRecord is parseKeyValue with the key left in b, not copied.
func parseRecord(b []byte) ([]byte, KV, error) {
	var kv KV
	var key []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, kv, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 5) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, kv, protowire.ParseError(n)
			}
			if num == 1 {
				key = v
			} else {
				kv.Value = v
			}
			b = b[n:]
		case num >= 2 && num <= 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, kv, protowire.ParseError(n)
			}
			switch num {
			case 2:
				kv.CreateRevision = int64(v)
			case 3:
				kv.ModRevision = int64(v)
			case 4:
				kv.Version = int64(v)
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, kv, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	if len(key) == 0 {
		return nil, kv, errors.New("record without a key")
	}
	return key, kv, nil
}
