#!/usr/bin/env bash
# Builds reference kube-apiserver, kubectl, kubeadm and kubelet of one
# Kubernetes release, and KWOK (the API-only kubelet stand-in), from the Go
# module proxy, cached outside the repository keyed by version.
#
#   hack/build-kube.sh [K8S_VERSION [KWOK_VERSION]]   # prints the directory
#
# k8s.io/kubernetes points its staging modules at ./staging with replace
# directives, so a throwaway module requires it and replaces every staging
# module with its published v0.x release (taken from that version's go.mod).
set -euo pipefail

version="${1:-1.37.2}"
version="${version#v}"
kwok_version="${2:-0.8.0}"
kwok_version="${kwok_version#v}"
cache="${KUBECTL_ETCD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd}"
out="$cache/kube-v$version-kwok-v$kwok_version"
bins=(kube-apiserver kubectl kubeadm kubelet kwok)

complete() {
  for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || return 1; done
}
if complete; then echo "$out"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.kube-v$version.lock"
flock 9
if complete; then echo "$out"; exit 0; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "building kube-apiserver, kubectl, kubeadm, kubelet v$version and kwok v$kwok_version into $out (about 10 minutes)" >&2

staging="0.${version#1.}"
modfile="$(go mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
{
  echo "module reference/kube"
  echo
  echo "go 1.25"
  echo
  echo "require k8s.io/kubernetes v$version"
  echo
  echo "replace ("
  sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v'"$staging"'#p' "$modfile"
  echo ")"
} > go.mod
cat > tools.go <<GO
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
go mod tidy >&2
mkdir -p "$out.tmp"
for b in kube-apiserver kubectl kubeadm kubelet; do
  go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=v$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$version")" \
    -o "$out.tmp/$b" "k8s.io/kubernetes/cmd/$b" >&2
done
GOBIN="$out.tmp" go install "sigs.k8s.io/kwok/cmd/kwok@v$kwok_version" >&2
# KWOK's stage objects (what a fake node and pod go through) ship in its module.
kwokdir="$(go mod download -json "sigs.k8s.io/kwok@v$kwok_version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
mkdir -p "$out.tmp/stages"
# Both directories hold a kustomization.yaml, read-only in the module
# cache: copying the second over the first fails, so skip them.
for f in "$kwokdir"/kustomize/stage/node/fast/*.yaml "$kwokdir"/kustomize/stage/pod/fast/*.yaml; do
  [[ "$(basename "$f")" == kustomization.yaml ]] || cp "$f" "$out.tmp/stages/"
done
chmod -R u+w "$out.tmp"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
