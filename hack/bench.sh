#!/usr/bin/env bash
# Benchmarks kubectl-etcd against etcdctl and etcdutl (docs/benchmarks.md).
#   hack/bench.sh [bench flags]     full sizes: about 15 minutes on 2 cores
#   hack/bench.sh --smoke           tiny sizes, one run each: checks that
#                                   every comparison runs (CI), not numbers
# Builds what it needs: bin/kubectl-etcd, etcd 3.7.3 (cached), bin/bench,
# and bin/bench-s3mem, the in-memory S3 store (hack/bench/s3mem, a module
# of its own: gofakes3 stays out of the plugin's go.mod); bin/bench finds
# or builds SeaweedFS's weed (hack/build-weed.sh, cached) for the
# snapshot-save-s3 rows.
set -euo pipefail
cd "$(dirname "$0")/.."
etcd_version="${ETCD_VERSION:-3.7.3}"
args=()
for a in "$@"; do
  if [[ "$a" == --smoke ]]; then
    args+=(-pods=300 -list-pods=100 -small-keys=3000 -fragment-bytes=$((48 << 20)) -reps=1 -defrag-reps=1 -write-rate=20 -watch-events=300)
  else
    args+=("$a")
  fi
done
hack/build.sh >&2
etcd_dir="$(hack/build-etcd.sh "$etcd_version")"
go build -o bin/bench ./hack/bench
go build -o bin/bench-rusage ./hack/bench/rusage
(cd hack/bench/s3mem && go build -o ../../../bin/bench-s3mem .)
exec bin/bench -etcd-dir "$etcd_dir" -plugin bin/kubectl-etcd "${args[@]}"
