package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var entries []Entry
	for i := range 5 {
		// Newest first, one a week.
		entries = append(entries, Entry{Name: string(rune('a' + i)), Taken: now.Add(-time.Duration(i) * 7 * 24 * time.Hour)})
	}
	names := func(es []Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Name)
		}
		return strings.Join(s, "")
	}
	for _, tc := range []struct {
		name          string
		policy        Policy
		kept, removed string
	}{
		{"retain 2", Policy{Retain: 2}, "ab", "cde"},
		{"retain more than there are", Policy{Retain: 9}, "abcde", ""},
		{"older than 10 days", Policy{OlderThan: 10 * 24 * time.Hour, Now: now}, "ab", "cde"},
		{"older than anything: the newest stays", Policy{OlderThan: time.Hour, Now: now.Add(365 * 24 * time.Hour)}, "a", "bcde"},
		{"both: either removes", Policy{Retain: 4, OlderThan: 20 * 24 * time.Hour, Now: now}, "abc", "de"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, removed := Plan(entries, tc.policy)
			if names(kept) != tc.kept || names(removed) != tc.removed {
				t.Errorf("kept %q removed %q, want %q and %q", names(kept), names(removed), tc.kept, tc.removed)
			}
		})
	}
}

func TestParseRecipients(t *testing.T) {
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	file := filepath.Join(t.TempDir(), "recipients.txt")
	os.WriteFile(file, []byte("# ops team\n"+b.Recipient().String()+"\n\n"), 0o600)
	r, err := ParseRecipients([]string{a.Recipient().String(), file})
	if err != nil || len(r.List) != 2 || r.Names[1] != b.Recipient().String() {
		t.Fatalf("ParseRecipients = %+v, %v", r, err)
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, []byte("# age1... one public key a line\n"), 0o600)
	secret := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(secret, []byte(a.String()+"\n"), 0o600)
	for _, tc := range []struct{ in, want string }{
		{"age1notakey", "age public key"},
		{a.String(), "give the public key"},
		{empty, "holds no age public key"},
		{secret, "holds an age secret key"},
		{"/no/such/file", "neither an age public key"},
	} {
		if _, err := ParseRecipients([]string{tc.in}); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "AGE-SECRET-KEY-1") {
			t.Errorf("ParseRecipients(%.20s): %v, want an error with %q that does not print the secret", tc.in, err, tc.want)
		}
	}
}
