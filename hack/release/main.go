// Command release builds the release archives for every platform, writes
// their sha256 sums, and fills plugins/etcd.yaml from krew.yaml.
//
//	go run ./hack/release --version v0.1.0 [--platforms linux/amd64,...] [--out dist]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/internal/release"
)

func main() {
	version := flag.String("version", "", "release version, v1.2.3")
	platforms := flag.String("platforms", "", "comma-separated os/arch list (default: every platform)")
	out := flag.String("out", "dist", "directory for the archives")
	manifest := flag.String("manifest", "plugins/etcd.yaml", "krew manifest to write")
	flag.Parse()
	if err := run(*version, *platforms, *out, *manifest); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(version, platformList, out, manifest string) error {
	if version == "" {
		return fmt.Errorf("--version is required")
	}
	targets := release.Platforms
	if platformList != "" {
		targets = nil
		for _, s := range strings.Split(platformList, ",") {
			p, err := release.ParsePlatform(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			targets = append(targets, p)
		}
	}
	archives := map[string]string{}
	var sums strings.Builder
	for _, p := range targets {
		fmt.Fprintf(os.Stderr, "building %s\n", p)
		archive, err := release.Build(".", out, version, p)
		if err != nil {
			return err
		}
		sum, err := release.SHA256File(archive)
		if err != nil {
			return err
		}
		archives[filepath.Base(archive)] = archive
		fmt.Fprintf(&sums, "%s  %s\n", sum, filepath.Base(archive))
	}
	if err := os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		return err
	}
	if len(targets) != len(release.Platforms) {
		fmt.Fprintf(os.Stderr, "built %d of %d platforms: %s not rewritten\n", len(targets), len(release.Platforms), manifest)
		return nil
	}
	template, err := os.ReadFile("krew.yaml")
	if err != nil {
		return err
	}
	filled, err := release.FillTemplate(template, version, func(name string) (string, error) {
		a, ok := archives[name]
		if !ok {
			return "", fmt.Errorf("krew.yaml names %s, which was not built", name)
		}
		return release.SHA256File(a)
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(manifest, filled, 0o644); err != nil {
		return err
	}
	if err := release.Validate(manifest, archives); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", manifest, filepath.Join(out, "SHA256SUMS"))
	return nil
}
