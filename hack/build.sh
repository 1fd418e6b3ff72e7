#!/usr/bin/env bash
# Builds bin/kubectl-etcd and the kubectl_complete-etcd helper beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
mkdir -p bin
go build -trimpath -ldflags "-X github.com/kubectl-etcd/kubectl-etcd/pkg/version.Version=$version" -o bin/kubectl-etcd ./cmd/kubectl-etcd
install -m 0755 hack/kubectl_complete-etcd bin/kubectl_complete-etcd
echo "built bin/kubectl-etcd ($version)"
