#!/usr/bin/env bash
# The etcd of a three-node control plane on real kubelets (one network
# namespace, containerd and kubelet 1.37 per node; internal/nodetest):
# kubectl etcd init on cp-1, join on cp-2 and cp-3, the kubelets registered
# with a kube-apiserver, then member list -o wide --via exec (nodes and
# mirror pods), health --via port-forward and status, and everything torn
# down. Needs root; builds what is missing
# (hack/reference-binaries.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/reference-binaries.sh >/dev/null
# The test is the demo: it logs every command on a node and its output.
go test -count=1 -v -timeout 10m -run '^TestThreeNodeControlPlane$' ./e2e/ |
  sed -n -e 's/^    demo_node_test.go:[0-9]*: //p' -e '/^        /s/^        //p' -e '/^\(--- \|ok\|FAIL\)/p'
