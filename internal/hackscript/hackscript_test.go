package hackscript

import "testing"

// TestMemoBuildsOnce checks that every test after the first gets the first
// build's result without building again.
func TestMemoBuildsOnce(t *testing.T) {
	builds := 0
	get := Memo(func() (string, error) {
		builds++
		return "/cache/bin", nil
	})
	for range 3 {
		if got := get(t); got != "/cache/bin" {
			t.Fatalf("got %q, want /cache/bin", got)
		}
	}
	if builds != 1 {
		t.Errorf("built %d times, want once", builds)
	}
}
