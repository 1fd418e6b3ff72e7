package source

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapped drops the first size bytes of the database's memory map
// from this process's resident memory (madvise MADV_DONTNEED). The map is
// read-only and backed by the file: pages read again come back from the
// page cache.
func releaseMapped(db *bolt.DB, size int64) {
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, db.Info().Data, uintptr(size), unix.MADV_DONTNEED)
}
