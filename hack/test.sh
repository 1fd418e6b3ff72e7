#!/usr/bin/env bash
# The test suite, fastest first so a failure shows early:
#   lint -> unit and in-process integration tests -> reference binaries ->
#   tests against a real kube-apiserver, kubectl, kubeadm -> e2e ->
#   benchmark smoke run.
#   hack/test.sh [unit|e2e|bench]     (default: everything)
# Packages whose tests import internal/kubetest need the Kubernetes binaries
# (a cold build takes about ten minutes), and those that import
# internal/s3test need SeaweedFS's weed (a big build too), so they run after
# the reference binaries are built, not in the unit stage.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

pkgs=(./cmd/... ./pkg/... ./internal/... ./manifests/...)
kubetest=github.com/kubectl-etcd/kubectl-etcd/internal/kubetest
nodetest=github.com/kubectl-etcd/kubectl-etcd/internal/nodetest
s3test=github.com/kubectl-etcd/kubectl-etcd/internal/s3test
# Each line: the package, then what its tests import; internal/kubetest,
# internal/nodetest (real kubelets) and internal/s3test (a real S3 store)
# count as needing the binaries.
listing="$(go list -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' "${pkgs[@]}")"
mapfile -t kube_pkgs < <(awk -v k="$kubetest" -v n="$nodetest" -v s="$s3test" '{ if ($1 == n || $1 == s) { print $1; next } for (i = 1; i <= NF; i++) if ($i == k || $i == n || $i == s) { print $1; next } }' <<<"$listing")
mapfile -t unit_pkgs < <(awk -v k="$kubetest" -v n="$nodetest" -v s="$s3test" '{ if ($1 == n || $1 == s) next; for (i = 1; i <= NF; i++) if ($i == k || $i == n || $i == s) next; print $1 }' <<<"$listing")

if [[ "$what" == all || "$what" == unit ]]; then
  hack/lint.sh
  echo "== unit and integration tests (in-process etcd)"
  go test -count=1 -timeout 15m "${unit_pkgs[@]}"
fi
if [[ "$what" == all || "$what" == e2e ]]; then
  echo "== reference binaries"
  hack/reference-binaries.sh
  echo "== tests against real kube-apiserver, kubectl, kubeadm and a real S3 store (weed)"
  # The binaries are built by now; the timeout still allows a cold build
  # should the cache vanish between stages.
  if ((${#kube_pkgs[@]})); then go test -count=1 -timeout 30m "${kube_pkgs[@]}"; fi
  echo "== end-to-end tests (real etcd binaries, the built plugin)"
  # The node tests on real kubelets add about 8 minutes here.
  go test -count=1 -timeout 40m ./e2e/...
fi
if [[ "$what" == all || "$what" == bench ]]; then
  echo "== benchmark smoke run (every comparison runs once on tiny data; numbers not judged)"
  hack/bench.sh --smoke
fi
