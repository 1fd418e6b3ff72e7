package etcdtest

import (
	"errors"
	"sync"
	"testing"
)

// TestAtOnce checks that every call runs before any returns and that the
// results and errors keep the order of the items.
func TestAtOnce(t *testing.T) {
	var started sync.WaitGroup
	started.Add(3)
	results, errs := AtOnce([]int{1, 2, 3}, func(i int) (int, error) {
		started.Done()
		started.Wait()
		if i == 2 {
			return 0, errors.New("two")
		}
		return i * 10, nil
	})
	if results[0] != 10 || results[2] != 30 || errs[0] != nil || errs[2] != nil {
		t.Errorf("results %v, errors %v", results, errs)
	}
	if errs[1] == nil || errs[1].Error() != "two" {
		t.Errorf("second error %v, want two", errs[1])
	}
}
