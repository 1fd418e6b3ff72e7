// Package release builds the plugin's release archives, fills the krew
// manifest template (krew.yaml) with their URLs and sha256 sums, and checks
// a krew manifest by the rules krew applies when it installs a plugin.
package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Platform is an os/arch pair a release is built for.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Platforms are every platform a release ships.
var Platforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// ParsePlatform reads "os/arch".
func ParsePlatform(s string) (Platform, error) {
	os, arch, ok := strings.Cut(s, "/")
	if !ok || os == "" || arch == "" {
		return Platform{}, fmt.Errorf("platform %q is not os/arch", s)
	}
	return Platform{os, arch}, nil
}

// ArchiveName is the file name of the archive of one platform.
func ArchiveName(version string, p Platform) string {
	return fmt.Sprintf("kubectl-etcd_%s_%s_%s.tar.gz", version, p.OS, p.Arch)
}

// BinaryName is the plugin binary's name on a platform.
func BinaryName(p Platform) string {
	if p.OS == "windows" {
		return "kubectl-etcd.exe"
	}
	return "kubectl-etcd"
}

// Build compiles the plugin for p from the module in repo and packs it with
// LICENSE, README.md and, outside Windows, the completion helper into
// outDir. It returns the archive's path.
func Build(repo, outDir, version string, p Platform) (string, error) {
	work, err := os.MkdirTemp("", "kubectl-etcd-release")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, BinaryName(p))
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/kubectl-etcd/kubectl-etcd/pkg/version.Version="+version,
		"-o", bin, "./cmd/kubectl-etcd")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOOS="+p.OS, "GOARCH="+p.Arch, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building for %s: %w", p, err)
	}
	files := map[string]string{
		BinaryName(p): bin,
		"LICENSE":     filepath.Join(repo, "LICENSE"),
		"README.md":   filepath.Join(repo, "README.md"),
	}
	if p.OS != "windows" {
		files["kubectl_complete-etcd"] = filepath.Join(repo, "hack", "kubectl_complete-etcd")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	archive := filepath.Join(outDir, ArchiveName(version, p))
	return archive, writeTarGz(archive, files)
}

func writeTarGz(archive string, files map[string]string) error {
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := os.ReadFile(files[name])
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if strings.HasPrefix(name, "kubectl") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

// SHA256File returns the hex sha256 of a file.
func SHA256File(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

var addURIAndSha = regexp.MustCompile(`\{\{\s*addURIAndSha\s+"([^"]+)"\s+\.TagName\s*\}\}`)
var tagName = regexp.MustCompile(`\{\{\s*\.TagName\s*\}\}`)

// FillTemplate does what krew-release-bot does to krew.yaml: puts the
// version in, and turns each addURIAndSha into uri and sha256 lines, with
// the sum of the archive sha256Of returns for the URL's file name.
func FillTemplate(template []byte, version string, sha256Of func(fileName string) (string, error)) ([]byte, error) {
	var firstErr error
	out := addURIAndSha.ReplaceAllFunc(template, func(m []byte) []byte {
		url := tagName.ReplaceAllString(string(addURIAndSha.FindSubmatch(m)[1]), version)
		sum, err := sha256Of(path.Base(url))
		if err != nil && firstErr == nil {
			firstErr = err
		}
		// Quoted: a sum of digits and one "e" would read as a number.
		return []byte("uri: " + url + "\n    sha256: \"" + sum + "\"")
	})
	if firstErr != nil {
		return nil, firstErr
	}
	// The template's opening comment speaks of the template; say instead
	// where the filled manifest comes from.
	for bytes.HasPrefix(out, []byte("#")) {
		_, out, _ = bytes.Cut(out, []byte("\n"))
	}
	out = append([]byte("# Generated by `make release` from krew.yaml: edit that, not this file.\n"), out...)
	return tagName.ReplaceAll(out, []byte(version)), nil
}

// Manifest is the part of a krew plugin manifest that krew checks.
type Manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string         `json:"version"`
		Homepage         string         `json:"homepage"`
		ShortDescription string         `json:"shortDescription"`
		Description      string         `json:"description"`
		Caveats          string         `json:"caveats"`
		Platforms        []PlatformSpec `json:"platforms"`
	} `json:"spec"`
}

// PlatformSpec is one platform entry of a krew manifest.
type PlatformSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bin    string `json:"bin"`
}

var (
	semver   = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	nameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Validate checks the manifest at file by krew's rules: the plugin name
// matches the file name, the version is semantic with a v, every platform
// has an https URI, a sha256 and a bin, no two platforms select the same
// os/arch, and Windows bins end in .exe. When archives is not nil it maps
// archive file names to local paths, and each platform's archive must be
// there, match its sha256 and contain its bin.
func Validate(file string, archives map[string]string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	m := &Manifest{}
	if err := yaml.UnmarshalStrict(data, m); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" {
		bad("apiVersion/kind are %s/%s, want krew.googlecontainertools.github.com/v1alpha2/Plugin", m.APIVersion, m.Kind)
	}
	if want := strings.TrimSuffix(filepath.Base(file), ".yaml"); m.Metadata.Name != want {
		bad("plugin name %q does not match the file name %q", m.Metadata.Name, want)
	}
	if !nameRe.MatchString(m.Metadata.Name) {
		bad("plugin name %q is not lowercase letters, digits and dashes", m.Metadata.Name)
	}
	if !semver.MatchString(m.Spec.Version) {
		bad("version %q is not semantic (v1.2.3)", m.Spec.Version)
	}
	if m.Spec.ShortDescription == "" || len(m.Spec.ShortDescription) > 50 {
		bad("shortDescription must be 1 to 50 characters, is %d", len(m.Spec.ShortDescription))
	}
	if len(m.Spec.Platforms) == 0 {
		bad("no platforms")
	}
	seen := map[string]bool{}
	for i, p := range m.Spec.Platforms {
		labels := p.Selector.MatchLabels
		key := labels["os"] + "/" + labels["arch"]
		if labels["os"] == "" || labels["arch"] == "" {
			bad("platform %d selects no os and arch", i)
		}
		if seen[key] {
			bad("two platforms select %s", key)
		}
		seen[key] = true
		if !strings.HasPrefix(p.URI, "https://") {
			bad("platform %s: uri %q is not https", key, p.URI)
		}
		if !sha256Re.MatchString(p.SHA256) {
			bad("platform %s: sha256 %q is not 64 lowercase hex digits", key, p.SHA256)
		}
		if p.Bin == "" || (labels["os"] == "windows") != strings.HasSuffix(p.Bin, ".exe") {
			bad("platform %s: bin %q (Windows bins, and only they, end in .exe)", key, p.Bin)
		}
		if archives == nil {
			continue
		}
		local, ok := archives[path.Base(p.URI)]
		if !ok {
			bad("platform %s: archive %s not found", key, path.Base(p.URI))
			continue
		}
		if sum, err := SHA256File(local); err != nil || sum != p.SHA256 {
			bad("platform %s: sha256 of %s is %s, manifest says %s", key, local, sum, p.SHA256)
		}
		names, err := tarGzNames(local)
		if err != nil {
			bad("platform %s: reading %s: %v", key, local, err)
		} else if !names[p.Bin] || !names["LICENSE"] {
			bad("platform %s: %s lacks %s or LICENSE", key, local, p.Bin)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s is not a valid krew manifest:\n  %s", file, strings.Join(problems, "\n  "))
	}
	return nil
}

func tarGzNames(archive string) (map[string]bool, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		names[h.Name] = true
	}
}
