package emit

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestAppendJSONEscapedEveryByte puts every byte value at every position
// of strings of lengths around the word size appendJSONText tests at a
// time, and as the byte before a multi-byte character and an escaped one,
// and checks the result against encoding/json.
func TestAppendJSONEscapedEveryByte(t *testing.T) {
	fillers := []string{"a", "Z9-_./:", "é", "<", "\u2028"}
	for _, filler := range fillers {
		for n := 1; n <= 19; n++ {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					s := []byte(repeatTo(filler, n))
					s[pos] = byte(c)
					want, err := json.Marshal(string(s))
					if err != nil {
						t.Fatal(err)
					}
					if got := appendJSONEscaped(nil, s); !bytes.Equal(got, want) {
						t.Fatalf("appendJSONEscaped(%q) = %s, encoding/json writes %s", s, got, want)
					}
				}
			}
		}
	}
}

// repeatTo repeats s until it is n bytes long, cutting the last copy.
func repeatTo(s string, n int) string {
	var b []byte
	for len(b) < n {
		b = append(b, s...)
	}
	return string(b[:n])
}
