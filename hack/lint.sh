#!/usr/bin/env bash
# go vet and gofmt over the whole module.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
bash -n hack/*.sh .ci/run
echo "lint ok"
