package maintenance

import "time"

// SetHashRetryInterval makes CheckConsistency wait d between two hashes
// for the rest of the test, so a test can catch it waiting.
func SetHashRetryInterval(t interface{ Cleanup(func()) }, d time.Duration) {
	old := hashRetryInterval
	hashRetryInterval = d
	t.Cleanup(func() { hashRetryInterval = old })
}
