#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the S3-compatible store the backup tests upload
# to) from the Go module proxy, cached outside the repository keyed by
# version.
#
#   hack/build-weed.sh [VERSION]        # prints the directory holding weed
#
# seaweedfs's go.mod replaces github.com/tyler-smith/go-bip39, so
# `go install pkg@version` is refused; a throwaway module requires it with
# the same replace and builds the command.
set -euo pipefail

version="${1:-v0.0.0-20261109003541-7506e5f91cd6}"
cache="${KUBECTL_ETCD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd}"
out="$cache/weed-$version"

if [[ -x "$out/weed" ]]; then echo "$out"; exit 0; fi

# Test packages run in parallel and may ask for the same build: one builds,
# the others wait and then find it cached.
mkdir -p "$cache"
exec 9>"$cache/.weed-$version.lock"
flock 9
if [[ -x "$out/weed" ]]; then echo "$out"; exit 0; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "building SeaweedFS weed $version into $out (several minutes)" >&2
cat > go.mod <<MOD
module reference/weed

go 1.25

require github.com/seaweedfs/seaweedfs $version

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
MOD
cat > tools.go <<GO
//go:build tools

package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
GO
go mod tidy >&2
mkdir -p "$out.tmp"
CGO_ENABLED=0 go build -trimpath -o "$out.tmp/weed" github.com/seaweedfs/seaweedfs/weed >&2
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
