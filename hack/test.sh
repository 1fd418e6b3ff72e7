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

# In a full run the reference builds start at once, beside the unit stage:
# the etcd releases at normal priority (unit tests run etcd binaries too,
# and would wait on these builds), then the Kubernetes binaries, weed and
# the images at the lowest priority, so the unit stage keeps the cores (its
# failures still show first) and the builds take the time its tests spend
# waiting. The build scripts lock their caches: a test asking for an etcd
# being built waits for that one build. Warm, everything is found cached.
ref_pid=
ref_log=
stop_ref() {
  # setsid made the builds a process group of their own: end all of it.
  [[ -n "$ref_pid" ]] && kill -- "-$ref_pid" 2>/dev/null
  [[ -n "$ref_log" ]] && rm -f "$ref_log"
  return 0
}
trap stop_ref EXIT
if [[ "$what" == all ]]; then
  ref_log="$(mktemp)"
  setsid bash -c 'hack/reference-binaries.sh etcd && exec nice -n 19 hack/reference-binaries.sh' >"$ref_log" 2>&1 &
  ref_pid=$!
fi
if [[ "$what" == all || "$what" == unit ]]; then
  hack/lint.sh
  echo "== unit and integration tests (in-process etcd)"
  go test -count=1 -timeout 15m "${unit_pkgs[@]}"
fi
if [[ "$what" == all || "$what" == e2e ]]; then
  echo "== reference binaries"
  if [[ -n "$ref_pid" ]]; then
    status=0
    wait "$ref_pid" || status=$?
    ref_pid=
    cat "$ref_log"
    if ((status != 0)); then
      echo "building the reference binaries failed (exit $status): the output above says where" >&2
      exit "$status"
    fi
  else
    hack/reference-binaries.sh
  fi
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
