// Package version holds the version of this build, set by the release
// build through -ldflags "-X .../pkg/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is the release this binary was built from.
var Version = ""

// Get returns Version, or the module version Go recorded, or "dev".
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
