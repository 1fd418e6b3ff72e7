#!/usr/bin/env bash
# What the real-kubelet tests (internal/nodetest) need beyond the reference
# binaries: containerd and runc from Debian's packages (installed when
# missing; CI runs as root on a fresh Debian machine), and the images their
# nodes run, built here from the reference etcd binaries and a tiny pause
# program, never pulled:
#   registry.k8s.io/etcd:<version>-0  for every release in hack/etcd-versions.txt
#                                      and hack/etcd-upgrade-versions.txt (the
#                                      older releases the upgrade tests start on)
#   registry.k8s.io/pause:3.10         containerd's sandbox_image
# The images are OCI layout tarballs for `ctr -n k8s.io image import`,
# cached beside the other reference builds.
#
#   hack/node-prereqs.sh     # prints the directory holding the tarballs
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
cache="${KUBECTL_ETCD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd}"
mkdir -p "$cache"

missing=()
for tool in containerd:containerd containerd-shim-runc-v2:containerd ctr:containerd runc:runc nsenter:util-linux ip:iproute2; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) != 0 ]]; then
    echo "error: the real-kubelet tests need ${missing[*]} (apt-get install -y ${missing[*]}) and root" >&2
    exit 1
  fi
  # Several test packages may get here at once: one installs.
  exec 8>"$cache/.apt.lock"
  flock 8
  for p in "${missing[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 && continue
    echo "installing ${missing[*]} from Debian's packages" >&2
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    break
  done
  flock -u 8
fi

versions=()
while read -r v; do
  [[ -z "$v" || "$v" == \#* ]] && continue
  versions+=("$v")
done < <(cat hack/etcd-versions.txt hack/etcd-upgrade-versions.txt)

# Keyed by both version lists and the image builder's and the pause
# program's source, so a change to any of them rebuilds the images.
key="$(cat internal/ociimage/*.go hack/ociimage/*.go hack/pause/*.go hack/etcd-versions.txt hack/etcd-upgrade-versions.txt | sha256sum | cut -c1-12)"
out="$cache/node-images-$key"
complete() {
  [[ -f "$out/pause-3.10.tar" ]] || return 1
  for v in "${versions[@]}"; do [[ -f "$out/etcd-$v-0.tar" ]] || return 1; done
}
if complete; then echo "$out"; exit 0; fi
exec 9>"$cache/.node-images.lock"
flock 9
if complete; then echo "$out"; exit 0; fi

echo "building the etcd and pause images into $out" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out.tmp"
go build -o "$work/ociimage" ./hack/ociimage
CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$work/pause" ./hack/pause
"$work/ociimage" -name registry.k8s.io/pause:3.10 -o "$out.tmp/pause-3.10.tar" -entrypoint /pause "pause=$work/pause"
for v in "${versions[@]}"; do
  bin="$(hack/build-etcd.sh "$v")"
  # etcdctl too: `kubectl etcd --via exec` runs it in the etcd container.
  "$work/ociimage" -name "registry.k8s.io/etcd:$v-0" -o "$out.tmp/etcd-$v-0.tar" -entrypoint /usr/local/bin/etcd \
    "usr/local/bin/etcd=$bin/etcd" "usr/local/bin/etcdctl=$bin/etcdctl" "usr/local/bin/etcdutl=$bin/etcdutl"
done
rm -rf "$out"
mv "$out.tmp" "$out"
cd "$repo"
echo "$out"
