package staticpod

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
)

// Defaults kubeadm uses for a local (stacked) etcd.
const (
	// DefaultImage is the etcd image kubeadm 1.37 writes.
	DefaultImage        = "registry.k8s.io/etcd:3.7.0-0"
	DefaultDataDir      = "/var/lib/etcd"
	DefaultPKIDir       = "/etc/kubernetes/pki"
	DefaultManifestsDir = "/etc/kubernetes/manifests"
	// DefaultKubeletRootDir is the kubelet's --root-dir.
	DefaultKubeletRootDir = "/var/lib/kubelet"
	ManifestFileName      = "etcd.yaml"
	DefaultClientPort     = 2379
	DefaultPeerPort       = 2380
	DefaultMetricsPort    = 2381

	// ProbePortName names the metrics port in the container's ports, and
	// the probes refer to it by name, as kubeadm 1.37 does.
	ProbePortName = "probe-port"

	// AdvertiseClientURLsAnnotation is where kubeadm records the client URL
	// of a node's etcd.
	AdvertiseClientURLsAnnotation = "kubeadm.kubernetes.io/etcd.advertise-client-urls"

	// systemNodeCriticalPriority is the value of the system-node-critical
	// priority class; kubeadm spells it out because the priority admission
	// plugin does not run for static pods.
	systemNodeCriticalPriority int32 = 2000001000

	// Cluster states for --initial-cluster-state.
	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"
)

// InitialMember is one name=peerURL entry of --initial-cluster.
type InitialMember struct {
	Name    string
	PeerURL string
}

// EtcdPodSpec is what the etcd static pod of one node depends on. Zero
// fields take kubeadm's defaults.
type EtcdPodSpec struct {
	Name             string
	AdvertiseAddress string
	Image            string
	// DataDir is the etcd data directory on the host, mounted at the same
	// path in the container, as kubeadm does.
	DataDir string
	// PKIDir is the kubeadm certificate directory; its etcd subdirectory is
	// mounted at the same path in the container.
	PKIDir string
	// Ports default to 2379 (clients), 2380 (peers) and 2381 (metrics);
	// tests that run several nodes on one machine change them.
	ClientPort, PeerPort, MetricsPort int
	// InitialCluster lists every member; empty means this node alone.
	InitialCluster []InitialMember
	// ClusterState is "new" (omitted from the command, etcd's default) or
	// "existing" for a node that joins.
	ClusterState string
}

func (s EtcdPodSpec) withDefaults() EtcdPodSpec {
	if s.Image == "" {
		s.Image = DefaultImage
	}
	if s.DataDir == "" {
		s.DataDir = DefaultDataDir
	}
	if s.PKIDir == "" {
		s.PKIDir = DefaultPKIDir
	}
	if s.ClientPort == 0 {
		s.ClientPort = DefaultClientPort
	}
	if s.PeerPort == 0 {
		s.PeerPort = DefaultPeerPort
	}
	if s.MetricsPort == 0 {
		s.MetricsPort = DefaultMetricsPort
	}
	return s
}

// URL joins a scheme, host and port, bracketing IPv6 addresses.
func URL(scheme, host string, port int) string {
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// ClientURL is the client URL the node advertises.
func (s EtcdPodSpec) ClientURL() string {
	s = s.withDefaults()
	return URL("https", s.AdvertiseAddress, s.ClientPort)
}

// PeerURL is the peer URL the node advertises.
func (s EtcdPodSpec) PeerURL() string {
	s = s.withDefaults()
	return URL("https", s.AdvertiseAddress, s.PeerPort)
}

// LocalClientURL is the loopback client listener of the node.
func (s EtcdPodSpec) LocalClientURL() string {
	s = s.withDefaults()
	return URL("https", loopbackFor(s.AdvertiseAddress), s.ClientPort)
}

// CertDir is the directory of the etcd certificates, on the host and in
// the container.
func (s EtcdPodSpec) CertDir() string {
	return filepath.Join(s.withDefaults().PKIDir, "etcd")
}

// loopbackFor is the loopback address of the advertise address's family.
func loopbackFor(advertise string) string {
	if ip := net.ParseIP(advertise); ip != nil && ip.To4() == nil {
		return "::1"
	}
	return "127.0.0.1"
}

// Validate checks what cannot be defaulted.
func (s EtcdPodSpec) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("the node name is empty")
	}
	if net.ParseIP(s.AdvertiseAddress) == nil {
		return fmt.Errorf("advertise address %q is not an IP address", s.AdvertiseAddress)
	}
	switch s.ClusterState {
	case "", ClusterStateNew, ClusterStateExisting:
	default:
		return fmt.Errorf("initial cluster state %q is neither %q nor %q", s.ClusterState, ClusterStateNew, ClusterStateExisting)
	}
	return nil
}

// Command is the etcd command line, flags sorted by name as kubeadm
// writes them.
func (s EtcdPodSpec) Command() []string {
	s = s.withDefaults()
	certDir := s.CertDir()
	initial := s.InitialCluster
	if len(initial) == 0 {
		initial = []InitialMember{{Name: s.Name, PeerURL: s.PeerURL()}}
	}
	var cluster string
	for i, m := range initial {
		if i > 0 {
			cluster += ","
		}
		cluster += m.Name + "=" + m.PeerURL
	}
	flags := map[string]string{
		"advertise-client-urls":          s.ClientURL(),
		"cert-file":                      filepath.Join(certDir, "server.crt"),
		"client-cert-auth":               "true",
		"data-dir":                       s.DataDir,
		"feature-gates":                  "InitialCorruptCheck=true",
		"initial-advertise-peer-urls":    s.PeerURL(),
		"initial-cluster":                cluster,
		"key-file":                       filepath.Join(certDir, "server.key"),
		"listen-client-urls":             s.LocalClientURL() + "," + s.ClientURL(),
		"listen-metrics-urls":            URL("http", loopbackFor(s.AdvertiseAddress), s.MetricsPort),
		"listen-peer-urls":               s.PeerURL(),
		"name":                           s.Name,
		"peer-cert-file":                 filepath.Join(certDir, "peer.crt"),
		"peer-client-cert-auth":          "true",
		"peer-key-file":                  filepath.Join(certDir, "peer.key"),
		"peer-trusted-ca-file":           filepath.Join(certDir, "ca.crt"),
		"snapshot-count":                 "10000",
		"trusted-ca-file":                filepath.Join(certDir, "ca.crt"),
		"watch-progress-notify-interval": "5s",
	}
	if s.ClusterState == ClusterStateExisting {
		flags["initial-cluster-state"] = ClusterStateExisting
	}
	names := make([]string, 0, len(flags))
	for k := range flags {
		names = append(names, k)
	}
	sort.Strings(names)
	cmd := []string{"etcd"}
	for _, k := range names {
		cmd = append(cmd, "--"+k+"="+flags[k])
	}
	return cmd
}

// NewEtcdPod builds the etcd static pod kubeadm would write for spec.
func NewEtcdPod(spec EtcdPodSpec) *corev1.Pod {
	s := spec.withDefaults()
	certDir := s.CertDir()
	probe := func(path string, failures, initialDelay, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Host:   loopbackFor(s.AdvertiseAddress),
				Path:   path,
				Port:   intstr.FromString(ProbePortName),
				Scheme: corev1.URISchemeHTTP,
			}},
			InitialDelaySeconds: initialDelay,
			TimeoutSeconds:      15,
			PeriodSeconds:       period,
			FailureThreshold:    failures,
		}
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "etcd",
			Namespace:   "kube-system",
			Labels:      map[string]string{"component": "etcd", "tier": "control-plane"},
			Annotations: map[string]string{AdvertiseClientURLsAnnotation: s.ClientURL()},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:            "etcd",
				Image:           s.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         s.Command(),
				Ports: []corev1.ContainerPort{{
					Name:          ProbePortName,
					ContainerPort: int32(s.MetricsPort),
					Protocol:      corev1.ProtocolTCP,
				}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("100Mi"),
				}},
				// kubeadm lists the data mount first and sorts the volumes.
				VolumeMounts: []corev1.VolumeMount{
					{Name: "etcd-data", MountPath: s.DataDir},
					{Name: "etcd-certs", MountPath: certDir},
				},
				LivenessProbe:  probe("/livez", 8, 10, 10),
				ReadinessProbe: probe("/readyz", 3, 0, 1),
				StartupProbe:   probe("/readyz", 24, 10, 10),
			}},
			HostNetwork:       true,
			Priority:          ptr(systemNodeCriticalPriority),
			PriorityClassName: "system-node-critical",
			SecurityContext: &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Volumes: []corev1.Volume{
				{Name: "etcd-certs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: certDir, Type: &dirOrCreate}}},
				{Name: "etcd-data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: s.DataDir, Type: &dirOrCreate}}},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// Marshal renders a pod as manifest YAML.
func Marshal(pod *corev1.Pod) ([]byte, error) {
	return yaml.Marshal(pod)
}

// Manifest file and directory modes kubeadm uses: the manifest holds no
// secret, but only root should change what the kubelet runs.
const (
	ManifestMode    os.FileMode = 0o600
	ManifestDirMode os.FileMode = 0o700
)

// WriteFile writes a manifest atomically with kubeadm's modes, creating its
// directory.
func WriteFile(path string, data []byte) error {
	return fileutil.WriteFileAtomic(path, data, ManifestMode, ManifestDirMode)
}
