#!/usr/bin/env bash
# Starts a 3-member TLS sandbox, shows it working, and tears it down.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
dir="$(mktemp -d "${TMPDIR:-/tmp}/kubectl-etcd-demo.XXXXXX")"
cleanup() { kubectl-etcd sandbox down --dir "$dir" --purge >/dev/null 2>&1 || true; }
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step kubectl etcd sandbox up --dir "$dir" --members 3
kubectl-etcd sandbox up --dir "$dir" --members 3
eval "$(kubectl-etcd sandbox env --dir "$dir")"

step kubectl etcd status
kubectl-etcd status
step kubectl etcd health
kubectl-etcd health
step kubectl etcd member list
kubectl-etcd member list
step kubectl etcd version
kubectl-etcd version

step kubectl etcd sandbox down --dir "$dir" --purge
kubectl-etcd sandbox down --dir "$dir" --purge
trap - EXIT
