//go:build !linux

package source

import bolt "go.etcd.io/bbolt"

// releaseMapped does nothing where madvise is not at hand.
func releaseMapped(*bolt.DB, int64) {}
