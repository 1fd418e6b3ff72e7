package storage

// KV is one key with its value at a revision, as every source (a live
// cluster, a backend file) hands it over and every printer takes it.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
}
