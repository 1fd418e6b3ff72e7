package upgrade

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/storage/schema"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/backend"
)

// BucketMembers lists the member IDs (hex) of the v3 members bucket of an
// etcd database file, such as a snapshot taken just before the upgrade:
// the membership etcd 3.6 will trust when the member starts.
func BucketMembers(dbPath string) ([]string, error) {
	db, err := backend.Open(dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var ids []string
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Members.Name())
		if b == nil {
			return fmt.Errorf("%s has no members bucket", dbPath)
		}
		return b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}
