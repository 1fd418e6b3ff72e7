package nodetest

import (
	"fmt"
	"path/filepath"
)

// SandboxImage is the pause image every node's containerd runs pod
// sandboxes from; hack/node-prereqs.sh builds it, so it is never pulled
// (containerd 1.6 would otherwise ask for pause:3.6).
const SandboxImage = "registry.k8s.io/pause:3.10"

// EtcdImage is the image kubeadm names for an etcd release, as
// hack/node-prereqs.sh tags it.
func EtcdImage(version string) string { return "registry.k8s.io/etcd:" + version + "-0" }

// containerdConfig is one node's containerd: its own root, state and
// socket, so nodes share nothing. What each setting is for:
//   - restrict_oom_score_adj: these machines lack CAP_SYS_RESOURCE, so runc
//     cannot give a container a negative oom_score_adj ("can't get final
//     child's PID from pipe: EOF" otherwise);
//   - stream_server_address: exec and port-forward stay on the node's
//     loopback;
//   - runc Root per node and SystemdCgroup off: the kubelet uses cgroupfs,
//     and runc's state must not be shared between nodes;
//   - the plugins that would use host paths of their own are disabled.
func containerdConfig(d nodeDirs) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[8]q
`, d.containerdRoot(), d.containerdState(), d.containerdSocket(), d.containerdSocket()+".ttrpc",
		SandboxImage, filepath.Join(d.root, "cni", "bin"), filepath.Join(d.root, "cni", "conf"), filepath.Join(d.root, "runc"))
}

// kubeletConfig is a standalone kubelet (no API server) that runs the
// static pods of one node. Each setting was seen to be needed on these
// machines:
//   - cgroupfs under a cgroupRoot of the node's own, created beforehand;
//     failCgroupV1 false: these machines mount cgroup v1;
//   - image GC and eviction never trigger: no image can be pulled again;
//   - oomScoreAdj 0: the kubelet may not lower its own without
//     CAP_SYS_RESOURCE;
//   - resolvConf "": the host's resolver is none of the pods' business;
//   - fileCheckFrequency 1s: the default 20 s would make every manifest
//     change a 20 s wait;
//   - crashLoopBackOff.maxContainerRestartPeriod 1s: a pod moved out and
//     back keeps its UID and so its restart back-off;
//   - the server on the node's loopback (or its address, for a
//     kube-apiserver to reach) with anonymous access: tests ask it what
//     runs (/runningpods/).
func kubeletConfig(d nodeDirs, cgroupRoot, address string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %[1]q
fileCheckFrequency: 1s
syncFrequency: 10s
cgroupDriver: cgroupfs
cgroupRoot: %[2]q
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: %[3]q
address: %[8]s
port: %[6]d
healthzBindAddress: 127.0.0.1
healthzPort: %[7]d
readOnlyPort: 0
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
oomScoreAdj: 0
resolvConf: ""
volumePluginDir: %[4]q
podLogsDir: %[5]q
crashLoopBackOff:
  maxContainerRestartPeriod: 1s
featureGates:
  KubeletCrashLoopBackOffMax: true
`, d.manifests(), cgroupRoot, "unix://"+d.containerdSocket(), filepath.Join(d.root, "volume-plugins"), filepath.Join(d.root, "pod-logs"),
		KubeletPort, kubeletHealthzPort, address)
}

// KubeletPort is the kubelet's server port on each node's loopback.
const KubeletPort = 10250

const kubeletHealthzPort = 10248

// nodeDirs lays out one node's files under root.
type nodeDirs struct{ root string }

func (d nodeDirs) manifests() string       { return filepath.Join(d.root, "manifests") }
func (d nodeDirs) pki() string             { return filepath.Join(d.root, "pki") }
func (d nodeDirs) data() string            { return filepath.Join(d.root, "data") }
func (d nodeDirs) containerdRoot() string  { return filepath.Join(d.root, "containerd", "root") }
func (d nodeDirs) containerdState() string { return filepath.Join(d.root, "containerd", "state") }
func (d nodeDirs) containerdSocket() string {
	return filepath.Join(d.root, "containerd", "containerd.sock")
}
func (d nodeDirs) kubeletRoot() string { return filepath.Join(d.root, "kubelet") }

// kubeletConfigFile is the kubelet's configuration file, in its root dir as
// kubeadm writes it.
func (d nodeDirs) kubeletConfigFile() string { return filepath.Join(d.kubeletRoot(), "config.yaml") }
