package snapshot

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/backend"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/storage/schema"
)

// dbStatus is what `etcdutl snapshot status` reports of a database file.
type dbStatus struct {
	Hash      uint32
	Revision  int64
	TotalKeys int
	TotalSize int64
	Version   string
	// Members are the members bucket's, by name.
	Members []Member
}

// readDBStatus computes etcdutl's snapshot status, the same numbers, in
// two passes that run at once: bbolt's integrity check, and the CRC-32C of
// every bucket's name, keys and values with the newest revision and the
// number of live keys. etcdutl does both in one goroutine and decodes
// every stored value into a fresh copy to read its key; this reads the key
// in place, which on a 1 GiB database takes a fraction of the time.
func readDBStatus(path string) (ds dbStatus, err error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return ds, err
	}
	defer db.Close()
	checked := make(chan error, 1)
	go func() {
		checked <- db.View(func(tx *bolt.Tx) error {
			var problems []string
			for err := range tx.Check() {
				problems = append(problems, err.Error())
			}
			if len(problems) > 0 {
				return fmt.Errorf("snapshot file integrity check failed. %d errors found.\n%s", len(problems), strings.Join(problems, "\n"))
			}
			return nil
		})
	}()
	err = db.View(func(tx *bolt.Tx) error {
		ds.TotalSize = tx.Size()
		if v := schema.ReadStorageVersionFromSnapshot(tx); v != nil {
			ds.Version = v.String()
		}
		var err error
		if ds.Members, err = readMembers(tx); err != nil {
			return err
		}
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		// The live keys by a 128-bit hash of the key: no copy of a million
		// keys, and two keys would have to collide in 128 bits to be
		// counted as one.
		seeds := [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
		live := map[[2]uint64]struct{}{}
		c := tx.Cursor()
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			b := tx.Bucket(name)
			if b == nil {
				return fmt.Errorf("nil bucket: %q", string(name))
			}
			h.Write(name)
			isKeys := bytes.Equal(name, schema.Key.Name())
			if isKeys {
				// Every revision of every key: room for the live keys at
				// once, instead of growing the map a million keys long.
				live = make(map[[2]uint64]struct{}, b.Stats().KeyN)
			}
			err := b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if !isKeys {
					return nil
				}
				rev, tombstone, err := backend.ParseRevision(k)
				if err != nil {
					return fmt.Errorf("cannot parse revision key: %q err: %w", k, err)
				}
				ds.Revision = rev.Main
				kv, err := backend.ParseKeyValue(v)
				if err != nil {
					return fmt.Errorf("cannot unmarshal value, key: %q err: %w", k, err)
				}
				key := kv.Key
				id := [2]uint64{maphash.Bytes(seeds[0], key), maphash.Bytes(seeds[1], key)}
				if tombstone {
					delete(live, id)
				} else {
					live[id] = struct{}{}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("error during bucket key iteration, name: %q err: %w", string(name), err)
			}
		}
		ds.Hash = h.Sum32()
		ds.TotalKeys = len(live)
		return nil
	})
	if cerr := <-checked; cerr != nil {
		return ds, cerr
	}
	return ds, err
}
