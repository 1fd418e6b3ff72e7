#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 1m).
#
# -fuzzminimizetime is kept short on purpose: the seeds are stored Kubernetes
# objects of several KiB, and Go's default (60s per new input) spends a whole
# minute shrinking each input that reaches new code, so the exec counter
# barely moves (FuzzWirePrinter: 7 execs in 2 minutes with the default,
# 14,000 in one minute with 50x).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-1m}"
for target in \
  ./pkg/storage:FuzzDecode \
  ./pkg/storage:FuzzSortedJSON \
  ./pkg/storage/internal/emit:FuzzFastYAML \
  ./pkg/storage/printer:FuzzWirePrinter; do
  pkg="${target%%:*}"
  name="${target##*:}"
  echo "== $name ($pkg, $fuzztime)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 50x "$pkg"
done
