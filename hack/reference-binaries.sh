#!/usr/bin/env bash
# Builds (or finds cached) every reference binary the tests use.
#
#   hack/reference-binaries.sh         # everything
#   hack/reference-binaries.sh etcd    # the etcd releases only
set -euo pipefail
cd "$(dirname "$0")/.."
while read -r v; do
  [[ -z "$v" || "$v" == \#* ]] && continue
  hack/build-etcd.sh "$v"
done < <(cat hack/etcd-versions.txt hack/etcd-upgrade-versions.txt)
if [[ "${1:-}" == etcd ]]; then
  exit 0
fi
# kube-apiserver, kubectl, kubeadm and kwok for the tests that import
# internal/kubetest (about ten minutes the first time).
hack/build-kube.sh
# containerd and runc, and the etcd and pause images the real kubelets of
# internal/nodetest run.
hack/node-prereqs.sh >/dev/null
# SeaweedFS's weed, the S3 store for the tests that import internal/s3test.
hack/build-weed.sh
