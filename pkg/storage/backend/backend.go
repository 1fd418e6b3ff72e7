// Package backend reads the key bucket of an etcd backend file (a bbolt
// database: a snapshot saved with `etcdctl snapshot save`, or a member's
// member/snap/db) in place. Bucket and key names are etcd's own (schema,
// mvcc); each entry is one revision of one key, its value an
// mvccpb.KeyValue record read without a copy. It knows nothing of
// Kubernetes.
package backend

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"google.golang.org/protobuf/encoding/protowire"
)

// revBytesLen is the length of a key bucket key: 8-byte main revision,
// '_', 8-byte sub revision (mvcc keeps its own constant unexported). A
// deletion adds a trailing 't' (mvcc.IsTombstone).
const revBytesLen = 8 + 1 + 8

// Open opens path read-only as an etcd backend file, with errors that say
// what to do: a directory, a file a running etcd holds locked, a file that
// is not a bbolt database.
func Open(path string) (*bolt.DB, error) {
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
	return db, nil
}

// KeyBucket returns the bucket of every revision of every key, or an error
// naming path when the file has none.
func KeyBucket(tx *bolt.Tx, path string) (*bolt.Bucket, error) {
	b := tx.Bucket(schema.Key.Name())
	if b == nil {
		return nil, fmt.Errorf("%s is a bbolt file without the bucket %q: not an etcd database", path, schema.Key.Name())
	}
	return b, nil
}

// CompactRevision is the revision the file was compacted at (0: never).
func CompactRevision(tx *bolt.Tx) int64 {
	meta := tx.Bucket(schema.Meta.Name())
	if meta == nil {
		return 0
	}
	if v := meta.Get(schema.FinishedCompactKeyName); len(v) == revBytesLen {
		return mvcc.BytesToRev(v).Main
	}
	return 0
}

// Entry is one entry of the key bucket: one revision of one key.
type Entry struct {
	// Revision is the entry's bucket key.
	Revision mvcc.Revision
	// Tombstone marks a deletion: KeyValue holds only the key.
	Tombstone bool
	KeyValue  KeyValue
}

// KeyValue is an mvccpb.KeyValue record read in place: Key and Value alias
// the bytes it was read from (the file's memory map), valid only inside
// the transaction.
type KeyValue struct {
	Key, Value     []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
}

// ParseEntry reads one key bucket entry: k its revision key, v its record,
// which must name a key.
func ParseEntry(k, v []byte) (Entry, error) {
	rev, tombstone, err := ParseRevision(k)
	if err != nil {
		return Entry{}, err
	}
	kv, err := ParseKeyValue(v)
	if err == nil && len(kv.Key) == 0 {
		err = errors.New("record without a key")
	}
	if err != nil {
		return Entry{}, fmt.Errorf("revision %d: bad key-value record: %w", rev.Main, err)
	}
	return Entry{Revision: rev, Tombstone: tombstone, KeyValue: kv}, nil
}

// ParseRevision reads a key bucket key.
func ParseRevision(k []byte) (rev mvcc.Revision, tombstone bool, err error) {
	if len(k) != revBytesLen && len(k) != revBytesLen+1 || k[8] != '_' {
		return rev, false, fmt.Errorf("key bucket entry %x is not an etcd revision", k)
	}
	return mvcc.BytesToRev(k), mvcc.IsTombstone(k), nil
}

// ForEach calls fn for every entry of the key bucket b in revision order,
// with the raw bucket key and value beside the parsed entry (for a hash
// over the file). An entry that does not parse stops it with an error; so
// does fn's error, except ErrStop, which ends it with nil.
func ForEach(b *bolt.Bucket, fn func(k, v []byte, e Entry) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e, err := ParseEntry(k, v)
		if err != nil {
			return err
		}
		if err := fn(k, v, e); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// ErrStop, returned by ForEach's fn, ends the pass early without an error.
var ErrStop = errors.New("stop")

// LastRevision is the main revision of the newest entry of the key bucket
// b, 0 when it is empty.
func LastRevision(b *bolt.Bucket) int64 {
	k, _ := b.Cursor().Last()
	if rev, _, err := ParseRevision(k); err == nil {
		return rev.Main
	}
	return 0
}

// ParseKeyValue reads an mvccpb.KeyValue record in place: key 1,
// create_revision 2, mod_revision 3, version 4, value 5, lease 6 (a field
// given twice keeps its last value, as a protobuf decoder does).
func ParseKeyValue(b []byte) (KeyValue, error) {
	var kv KeyValue
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return kv, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 5) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return kv, protowire.ParseError(n)
			}
			if num == 1 {
				kv.Key = v
			} else {
				kv.Value = v
			}
			b = b[n:]
		case num >= 2 && num <= 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return kv, protowire.ParseError(n)
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
				return kv, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return kv, nil
}
