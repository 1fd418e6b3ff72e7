package kubetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// EtcdControlPlane is a kubeadm-style control plane whose parts are real
// where they can be: a cluster of real etcd processes holding the state of
// a real kube-apiserver, which shows one Node and one etcd static Pod per
// member (labels, annotation and command line as kubeadm writes them, the
// certificate paths of the test PKI). KWOK plays the nodes' kubelet: a
// port-forward to an etcd pod reaches that pod's member, and exec in it
// runs the real etcdctl with the pod's certificates.
type EtcdControlPlane struct {
	Etcd *etcdtest.Process
	API  *APIServer
	KWOK *KWOK
	// EtcdBin holds the etcd, etcdctl and etcdutl the members run.
	EtcdBin string
	// Nodes[i] and Pods[i] belong to member i.
	Nodes, Pods []string
}

// EtcdNamespace is where the etcd pods are, as with kubeadm.
const EtcdNamespace = "kube-system"

// StartEtcdControlPlane starts a three-member etcd of version, a
// kube-apiserver on it (with opts, such as TokenUser) and KWOK, creates
// the nodes cp-1.. and the pods etcd-cp-1.., and waits until the nodes are
// Ready and the pods Running.
func StartEtcdControlPlane(t testing.TB, version string, opts ...Option) *EtcdControlPlane {
	t.Helper()
	etcd := etcdtest.StartProcesses(t, version)
	cp := &EtcdControlPlane{Etcd: etcd, EtcdBin: filepath.Dir(etcd.Binary)}
	opts = append([]Option{EtcdTLSOf(etcd.State), KubeletOnLoopback()}, opts...)
	cp.API = StartAPIServer(t, etcd.State.Endpoints(), opts...)

	var kwokOpts []KWOKOption
	var pods []*corev1.Pod
	for i, m := range etcd.State.Members {
		node := "cp-" + strconv.Itoa(i+1)
		pod, err := etcdPod(node, m, etcd.State)
		if err != nil {
			t.Fatalf("etcd pod of %s: %v", m.Name, err)
		}
		host, port, err := hostPort(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		cp.Nodes = append(cp.Nodes, node)
		cp.Pods = append(cp.Pods, pod.Name)
		pods = append(pods, pod)
		kwokOpts = append(kwokOpts, ForwardPod(PodPortForward{Namespace: EtcdNamespace, Pod: pod.Name, Port: port, Address: host, TargetPort: port}))
	}
	kwokOpts = append(kwokOpts, ExecLocally([]string{EtcdNamespace}, cp.EtcdBin))
	cp.KWOK = StartKWOK(t, cp.API, kwokOpts...)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, node := range cp.Nodes {
		if _, err := cp.API.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   node,
			Labels: map[string]string{"kubernetes.io/hostname": node, "node-role.kubernetes.io/control-plane": ""},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating node %s: %v", node, err)
		}
		if _, err := cp.API.Client.CoreV1().Pods(EtcdNamespace).Create(ctx, pods[i], metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", pods[i].Name, err)
		}
	}
	cp.WaitRunning(time.Minute)
	return cp
}

// WaitRunning waits until every etcd pod is Running and its node Ready.
func (cp *EtcdControlPlane) WaitRunning(timeout time.Duration) {
	cp.API.t.Helper()
	err := poll.Until(context.Background(), "etcd pods to run", 200*time.Millisecond, timeout, func(context.Context) error {
		if why := cp.notRunning(); why != "" {
			return errors.New(why)
		}
		return nil
	})
	if err != nil {
		cp.API.t.Fatalf("%v\nkwok log:\n%s", err, cp.KWOK.LogTail(30))
	}
}

func (cp *EtcdControlPlane) notRunning() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, name := range cp.Pods {
		pod, err := cp.API.Client.CoreV1().Pods(EtcdNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if pod.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("pod %s is %q", name, pod.Status.Phase)
		}
		node, err := cp.API.Client.CoreV1().Nodes().Get(ctx, cp.Nodes[i], metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		ready := false
		for _, c := range node.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			return "node " + node.Name + " is not Ready"
		}
	}
	return ""
}

// etcdPod is member m's static pod as kubeadm would write it for node,
// with the command line of the real member: its URLs and the test PKI's
// certificate paths, which exist here, so etcdctl run by KWOK's exec finds
// them.
func etcdPod(node string, m sandbox.Member, s *sandbox.State) (*corev1.Pod, error) {
	data, err := os.ReadFile(m.ConfigFile)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		ClientTLS struct {
			CertFile string `json:"cert-file"`
			KeyFile  string `json:"key-file"`
			CAFile   string `json:"trusted-ca-file"`
		} `json:"client-transport-security"`
		PeerTLS struct {
			CertFile string `json:"cert-file"`
			KeyFile  string `json:"key-file"`
		} `json:"peer-transport-security"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", m.ConfigFile, err)
	}
	if cfg.ClientTLS.CertFile == "" || cfg.ClientTLS.CAFile == "" {
		return nil, errors.New(m.ConfigFile + " has no client TLS")
	}
	ip, port, err := hostPort(m.ClientURL)
	if err != nil {
		return nil, err
	}
	_, peerPort, err := hostPort(m.PeerURL)
	if err != nil {
		return nil, err
	}
	pod := staticpod.NewEtcdPod(staticpod.EtcdPodSpec{
		Name: m.Name, AdvertiseAddress: ip, DataDir: m.DataDir,
		ClientPort: port, PeerPort: peerPort, MetricsPort: port + 2,
	})
	pod.Name = "etcd-" + node
	pod.Spec.NodeName = node
	// What the kubelet adds to the mirror pod of a static pod.
	pod.Annotations["kubernetes.io/config.source"] = "file"
	pod.Annotations["kubernetes.io/config.mirror"] = "etcd-" + m.Name
	pod.Annotations["kubernetes.io/config.hash"] = "etcd-" + m.Name
	var initial []string
	for _, o := range s.Members {
		initial = append(initial, o.Name+"="+o.PeerURL)
	}
	pod.Spec.Containers[0].Command = []string{
		"etcd",
		"--advertise-client-urls=" + m.ClientURL,
		"--cert-file=" + cfg.ClientTLS.CertFile,
		"--client-cert-auth=true",
		"--data-dir=" + m.DataDir,
		"--initial-advertise-peer-urls=" + m.PeerURL,
		"--initial-cluster=" + strings.Join(initial, ","),
		"--key-file=" + cfg.ClientTLS.KeyFile,
		// The member listens on its own address only: the loopback
		// address belongs to member-1 on this one machine.
		"--listen-client-urls=" + m.ClientURL,
		"--listen-peer-urls=" + m.PeerURL,
		"--name=" + m.Name,
		"--peer-cert-file=" + cfg.PeerTLS.CertFile,
		"--peer-client-cert-auth=true",
		"--peer-key-file=" + cfg.PeerTLS.KeyFile,
		"--peer-trusted-ca-file=" + cfg.ClientTLS.CAFile,
		"--snapshot-count=10000",
		"--trusted-ca-file=" + cfg.ClientTLS.CAFile,
	}
	return pod, nil
}

func hostPort(rawURL string) (string, int, error) {
	u := strings.TrimPrefix(strings.TrimPrefix(rawURL, "https://"), "http://")
	host, p, err := net.SplitHostPort(u)
	if err != nil {
		return "", 0, fmt.Errorf("URL %q: %w", rawURL, err)
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// waitListening waits until addr accepts connections, the process behind
// it exits (exited closes), or timeout passes.
func waitListening(addr string, exited <-chan struct{}, timeout time.Duration) error {
	return poll.Until(context.Background(), "a listener on "+addr, 100*time.Millisecond, timeout, func(ctx context.Context) error {
		select {
		case <-exited:
			return poll.Stop(errors.New("exited before listening on " + addr))
		default:
		}
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}
