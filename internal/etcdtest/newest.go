package etcdtest

import "testing"

// NewestVersion is the newest etcd release the tests run against, the
// last of Versions.
func NewestVersion(t testing.TB) string {
	t.Helper()
	versions := Versions(t)
	return versions[len(versions)-1]
}
