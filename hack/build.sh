#!/usr/bin/env bash
# Builds bin/kubectl-etcd and the kubectl_complete-etcd helper beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
mkdir -p bin
# Static, as the release archives are (internal/release): the same
# CGO_ENABLED and -trimpath let this build reuse the packages the release
# test compiled, a few cold minutes of make test.
CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/kubectl-etcd/kubectl-etcd/pkg/version.Version=$version" -o bin/kubectl-etcd ./cmd/kubectl-etcd
install -m 0755 hack/kubectl_complete-etcd bin/kubectl_complete-etcd
echo "built bin/kubectl-etcd ($version)"
