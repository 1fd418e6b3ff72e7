#!/usr/bin/env bash
# The test suite, fastest first so a failure shows early:
#   lint -> unit and in-process integration tests -> reference binaries -> e2e
#   -> benchmark smoke run.
#   hack/test.sh [unit|e2e|bench]     (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

if [[ "$what" == all || "$what" == unit ]]; then
  hack/lint.sh
  echo "== unit and integration tests (in-process etcd)"
  go test -count=1 -timeout 15m ./cmd/... ./pkg/... ./internal/... ./manifests/...
fi
if [[ "$what" == all || "$what" == e2e ]]; then
  echo "== reference binaries"
  hack/reference-binaries.sh
  echo "== end-to-end tests (real etcd binaries, the built plugin)"
  go test -count=1 -timeout 20m ./e2e/...
fi
if [[ "$what" == all || "$what" == bench ]]; then
  echo "== benchmark smoke run (every comparison runs once on tiny data; numbers not judged)"
  hack/bench.sh --smoke
fi
