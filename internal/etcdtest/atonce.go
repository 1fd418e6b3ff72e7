package etcdtest

import "sync"

// AtOnce calls run for every item at the same moment, each on a goroutine
// of its own, as a script run on every control-plane node at once would,
// and returns the results and errors in the order of items once every call
// has returned.
func AtOnce[I, R any](items []I, run func(I) (R, error)) ([]R, []error) {
	results := make([]R, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = run(item)
		}()
	}
	wg.Wait()
	return results, errs
}
