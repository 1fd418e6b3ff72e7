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

cat > "$dir/configmap.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  namespace: default
data:
  greeting: hello from etcd
YAML
step kubectl etcd put /registry/configmaps/default/demo -f configmap.yaml --yes
kubectl-etcd put /registry/configmaps/default/demo -f "$dir/configmap.yaml" --yes
step kubectl etcd get configmaps -A
kubectl-etcd get configmaps -A
step kubectl etcd get configmaps demo -n default -o yaml
kubectl-etcd get configmaps demo -n default -o yaml

step kubectl etcd snapshot save backup.db
kubectl-etcd snapshot save "$dir/backup.db"
step kubectl etcd snapshot status backup.db
kubectl-etcd snapshot status "$dir/backup.db"
step kubectl etcd defrag --all --dry-run
kubectl-etcd defrag --all --dry-run

step kubectl etcd sandbox down --dir "$dir" --purge
kubectl-etcd sandbox down --dir "$dir" --purge
trap - EXIT
