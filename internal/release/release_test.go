package release

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestReleaseArchiveAndManifest builds the archive of this platform, fills
// krew.yaml as the release bot would, and checks the result by krew's
// rules, archive contents and sha256 included.
func TestReleaseArchiveAndManifest(t *testing.T) {
	root := repoRoot()
	out := t.TempDir()
	host := Platform{runtime.GOOS, runtime.GOARCH}
	archive, err := Build(root, out, "v0.0.1", host)
	if err != nil {
		t.Fatal(err)
	}
	names, err := tarGzNames(archive)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{BinaryName(host), "LICENSE", "README.md"} {
		if !names[want] {
			t.Errorf("archive %s lacks %s (has %v)", archive, want, names)
		}
	}

	template, err := os.ReadFile(filepath.Join(root, "krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := SHA256File(archive)
	if err != nil {
		t.Fatal(err)
	}
	// Only this platform was built; the others get a stand-in sum and are
	// checked for shape only.
	filled, err := FillTemplate(template, "v0.0.1", func(name string) (string, error) {
		if name == filepath.Base(archive) {
			return sum, nil
		}
		return strings.Repeat("0", 63) + "f", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(filled), "{{") {
		t.Fatalf("template placeholders left:\n%s", filled)
	}
	manifest := filepath.Join(t.TempDir(), "etcd.yaml")
	if err := os.WriteFile(manifest, filled, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Validate(manifest, nil); err != nil {
		t.Fatal(err)
	}
	// With the archive present, its platform is checked end to end; the
	// stand-in sums of the others must be caught.
	err = Validate(manifest, map[string]string{filepath.Base(archive): archive})
	if err == nil || strings.Contains(err.Error(), "platform "+host.String()+":") {
		t.Errorf("Validate with the host archive: %v; want failures for the unbuilt platforms only", err)
	}
}

// TestCommittedManifestIsValid checks the manifest this repository serves
// as a custom krew index by krew's rules (the archives are not here, so not
// their sums).
func TestCommittedManifestIsValid(t *testing.T) {
	if err := Validate(filepath.Join(repoRoot(), "plugins", "etcd.yaml"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestValidateCatchesKrewRuleBreaks(t *testing.T) {
	good := `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: etcd
spec:
  version: v1.0.0
  shortDescription: short
  platforms:
  - selector: {matchLabels: {os: linux, arch: amd64}}
    uri: https://example.invalid/a.tar.gz
    sha256: ` + strings.Repeat("a", 64) + `
    bin: kubectl-etcd
`
	tests := []struct {
		name, file, manifest, want string
	}{
		{"name differs from file", "other.yaml", good, `does not match the file name "other"`},
		{"not semver", "etcd.yaml", strings.Replace(good, "v1.0.0", "1.0", 1), "is not semantic"},
		{"http uri", "etcd.yaml", strings.Replace(good, "https://", "http://", 1), "is not https"},
		{"bad sha", "etcd.yaml", strings.Replace(good, strings.Repeat("a", 64), "abc", 1), "is not 64 lowercase hex"},
		{"duplicate platform", "etcd.yaml", good + `  - selector: {matchLabels: {os: linux, arch: amd64}}
    uri: https://example.invalid/b.tar.gz
    sha256: ` + strings.Repeat("b", 64) + `
    bin: kubectl-etcd
`, "two platforms select linux/amd64"},
		{"windows bin without exe", "etcd.yaml", strings.Replace(good, "os: linux", "os: windows", 1), "end in .exe"},
		{"unknown field", "etcd.yaml", strings.Replace(good, "  version:", "  versoin: x\n  version:", 1), "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(file, []byte(tt.manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Validate(file, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "etcd.yaml")
	os.WriteFile(file, []byte(good), 0o644)
	if err := Validate(file, nil); err != nil {
		t.Errorf("a good manifest is refused: %v", err)
	}
}
