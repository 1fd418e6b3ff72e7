#!/usr/bin/env bash
# Builds reference etcd, etcdctl and etcdutl binaries of one release from the
# Go module proxy and caches them outside the repository, keyed by version.
#
#   hack/build-etcd.sh 3.7.3        # prints the directory holding the binaries
#
# etcd's own go.mod carries replace directives, so `go install pkg@version`
# is refused; a throwaway module that requires the three modules builds them.
set -euo pipefail

version="${1:?usage: $0 VERSION (for example 3.7.3)}"
version="${version#v}"
cache="${KUBECTL_ETCD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd}"
out="$cache/etcd-v$version"

if [[ -x "$out/etcd" && -x "$out/etcdctl" && -x "$out/etcdutl" ]]; then
  echo "$out"
  exit 0
fi

# Test packages run in parallel and may ask for the same build: one builds,
# the others wait and then find it cached.
mkdir -p "$cache"
exec 9>"$cache/.etcd-v$version.lock"
flock 9
if [[ -x "$out/etcd" && -x "$out/etcdctl" && -x "$out/etcdutl" ]]; then
  echo "$out"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module reference/etcd

go 1.24
MOD
cat > tools.go <<GO
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/etcdutl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
GO
echo "building etcd v$version into $out" >&2
go get "go.etcd.io/etcd/server/v3@v$version" "go.etcd.io/etcd/etcdctl/v3@v$version" "go.etcd.io/etcd/etcdutl/v3@v$version" >&2
go mod tidy >&2
mkdir -p "$out.tmp"
# Static (no cgo), so the same binaries go into the etcd images the real
# kubelet runs.
for b in etcd:server etcdctl:etcdctl etcdutl:etcdutl; do
  CGO_ENABLED=0 go build -trimpath -o "$out.tmp/${b%%:*}" "go.etcd.io/etcd/${b#*:}/v3" >&2
done
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
