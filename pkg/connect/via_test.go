package connect_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect/kube"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// flagsFor reaches the control plane through its API server, as a user
// with only a kubeconfig would.
func flagsFor(cp *kubetest.EtcdControlPlane, kubeconfig, via string, log *bytes.Buffer) *connect.Flags {
	f := connect.NewFlags()
	f.EtcdManifest = "/nonexistent/etcd.yaml"
	f.Getenv = func(string) string { return "" }
	f.KubeConfig.KubeConfig = &kubeconfig
	f.Via = via
	f.Verbosity = 1
	f.Log = log
	f.DialTimeout = 5 * time.Second
	f.CommandTimeout = 10 * time.Second
	return f
}

// TestThroughTheKubernetesAPI reaches real etcd members through a real
// kube-apiserver, with KWOK as the kubelet of the control-plane nodes.
func TestThroughTheKubernetesAPI(t *testing.T) {
	cp := kubetest.StartEtcdControlPlane(t, "3.7.3")
	ctx := context.Background()
	state := cp.Etcd.State
	binary := []byte{'k', '8', 's', 0, 0xff, 0xfe, '\n', 1}
	if _, err := cp.Etcd.Client().Put(ctx, "/test/binary", string(binary)); err != nil {
		t.Fatal(err)
	}

	t.Run("exec", func(t *testing.T) {
		var log bytes.Buffer
		cfg, err := flagsFor(cp, cp.API.Kubeconfig, connect.ViaAuto, &log).Resolve()
		if err != nil {
			t.Fatalf("Resolve(): %v\n%s", err, log.String())
		}
		defer cfg.Close()
		if cfg.Via != connect.ViaExec || !strings.Contains(log.String(), "no client certificate given") {
			t.Errorf("auto without certificates chose %q, said:\n%s", cfg.Via, log.String())
		}
		cli, err := cfg.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()

		t.Log("A binary value arrives intact through etcdctl's JSON")
		resp, err := cli.Get(ctx, "/test/", clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != 1 || !bytes.Equal(resp.Kvs[0].Value, binary) {
			t.Fatalf("Get through exec = %v, %v; want the binary value", resp, err)
		}
		if resp.Header.Revision == 0 || resp.Kvs[0].ModRevision == 0 {
			t.Errorf("revisions lost: header %v, kv %v", resp.Header, resp.Kvs[0])
		}

		t.Log("Status, member list and health of every member, each in its own pod")
		statuses, err := cluster.Collect(ctx, cfg, cli)
		if err != nil {
			t.Fatal(err)
		}
		leaders := 0
		for _, s := range statuses {
			if !s.Healthy() || s.Version != "3.7.3" {
				t.Errorf("member %s through exec: version %q, errors %v", s.Name, s.Version, s.Errors)
			}
			if s.Leader {
				leaders++
			}
			if p, ok := cfg.PodForMember(s.Name, s.ClientURLs); !ok || p.Node == "" {
				t.Errorf("member %s: no pod found", s.Name)
			}
		}
		if len(statuses) != 3 || leaders != 1 {
			t.Errorf("%d members, %d leaders; want 3 and 1", len(statuses), leaders)
		}

		t.Log("Defragment one member")
		if _, err := cli.Defragment(ctx, state.Members[1].ClientURL); err != nil {
			t.Errorf("Defragment through exec: %v", err)
		}

		t.Log("What etcdctl in the pod cannot do says to use port-forward")
		_, err = cli.Put(ctx, "/test/x", "y")
		var nt *kube.NeedsTunnelError
		if !errors.As(err, &nt) || !strings.Contains(err.Error(), "--via port-forward") {
			t.Errorf("Put through exec = %v, want a NeedsTunnelError", err)
		}
	})

	t.Run("pod not running", func(t *testing.T) {
		t.Log("An etcd pod that is not running: its member is reported down, by pod and phase; the others answer")
		setPhase := func(phase corev1.PodPhase) {
			t.Helper()
			pod, err := cp.API.Client.CoreV1().Pods(kubetest.EtcdNamespace).Get(ctx, cp.Pods[1], metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pod.Status.Phase = phase
			if _, err := cp.API.Client.CoreV1().Pods(kubetest.EtcdNamespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		setPhase(corev1.PodFailed)
		defer setPhase(corev1.PodRunning)
		for _, via := range []string{connect.ViaExec, connect.ViaPortForward} {
			var log bytes.Buffer
			f := flagsFor(cp, cp.API.Kubeconfig, via, &log)
			f.CACert, f.Cert, f.Key = state.CACert, state.ClientCert, state.ClientKey
			cfg, err := f.Resolve()
			if err != nil {
				t.Fatalf("%s: %v", via, err)
			}
			cli, err := cfg.Client()
			if err != nil {
				t.Fatal(err)
			}
			statuses, err := cluster.Collect(ctx, cfg, cli)
			cli.Close()
			cfg.Close()
			if err != nil {
				t.Fatalf("%s: %v", via, err)
			}
			for _, s := range statuses {
				down := strings.Join(s.Errors, "; ")
				if s.Name == state.Members[1].Name {
					if want := "etcd pod kube-system/" + cp.Pods[1] + " on node " + cp.Nodes[1] + " is not running (phase Failed)"; down != want {
						t.Errorf("%s: member %s: %q, want %q", via, s.Name, down, want)
					}
				} else if down != "" {
					t.Errorf("%s: member %s: %s", via, s.Name, down)
				}
			}
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		var log bytes.Buffer
		f := flagsFor(cp, cp.API.Kubeconfig, connect.ViaAuto, &log)
		f.CACert, f.Cert, f.Key = state.CACert, state.ClientCert, state.ClientKey
		cfg, err := f.Resolve()
		if err != nil {
			t.Fatalf("Resolve(): %v\n%s", err, log.String())
		}
		defer cfg.Close()
		if cfg.Via != connect.ViaPortForward || len(cfg.Endpoints) != 3 || !strings.HasPrefix(cfg.Endpoints[0], "https://127.0.0.1:") {
			t.Fatalf("auto with certificates: via %q, endpoints %v; said:\n%s", cfg.Via, cfg.Endpoints, log.String())
		}
		cli, err := cfg.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()

		t.Log("Each member is reached through its own tunnel, so status names three members")
		statuses, err := cluster.Collect(ctx, cfg, cli)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, s := range statuses {
			if !s.Healthy() {
				t.Errorf("member %s through port-forward: %v", s.Name, s.Errors)
			}
			if !strings.HasPrefix(s.Endpoint, "https://127.0.0.1:") {
				t.Errorf("member %s reached at %s, not through a tunnel", s.Name, s.Endpoint)
			}
			seen[s.Endpoint] = true
		}
		if len(seen) != 3 {
			t.Errorf("members reached through %d tunnels, want 3: %+v", len(seen), statuses)
		}

		t.Log("kwok restarts (like a kubelet): the tunnels are dialled again once and work")
		cp.KWOK.Stop()
		cp.KWOK.Start()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if resp, err := cli.Get(rctx, "/test/binary"); err != nil || !bytes.Equal(resp.Kvs[0].Value, binary) {
			t.Fatalf("Get after the tunnel dropped once: %v, %v", resp, err)
		}
		// Every tunnel must have been dialled again before the second
		// drop, or a tunnel the client had not used since would count it
		// as its first.
		if err := poll.Until(ctx, "every member to answer through its re-dialled tunnel", 200*time.Millisecond, 30*time.Second, func(ctx context.Context) error {
			statuses, err := cluster.Collect(ctx, cfg, cli)
			if err != nil {
				return err
			}
			for _, s := range statuses {
				if !s.Healthy() {
					return fmt.Errorf("member %s: %v", s.Name, s.Errors)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Err(); err != nil {
			t.Errorf("after one drop, Err() = %v", err)
		}

		t.Log("kwok restarts again: the tunnels fail for good with a clear error")
		cp.KWOK.Stop()
		cp.KWOK.Start()
		rctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := cli.Get(rctx, "/test/binary"); err == nil {
			t.Errorf("Get after a second drop succeeded")
		}
		if err := cfg.Err(); err == nil || !strings.Contains(err.Error(), "dropped twice") {
			t.Errorf("after two drops, Err() = %v, want the tunnels named as dropped twice", err)
		}
		t.Log("Closing the failed tunnels is prompt: no stream creation is left waiting")
		start := time.Now()
		cfg.Close()
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("closing the tunnels took %s", took)
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		t.Log("A user who may list pods but not exec or port-forward learns which verb and resource are missing")
		_, err := cp.API.Kubectl(ctx, "-n", kubetest.EtcdNamespace, "create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cp.API.Kubectl(ctx, "-n", kubetest.EtcdNamespace, "create", "rolebinding", "pod-reader", "--role=pod-reader", "--user=reader"); err != nil {
			t.Fatal(err)
		}
		reader := cp.API.KubeconfigFor("reader")
		var log bytes.Buffer
		f := flagsFor(cp, reader, connect.ViaPortForward, &log)
		f.CACert, f.Cert, f.Key = state.CACert, state.ClientCert, state.ClientKey
		_, err = f.Resolve()
		var fe *kube.ForbiddenError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), `RBAC forbids "create" on "pods/portforward" in namespace kube-system`) {
			t.Errorf("port-forward without RBAC: %v", err)
		}
		cfg, err := flagsFor(cp, reader, connect.ViaExec, &log).Resolve()
		if err != nil {
			t.Fatal(err)
		}
		defer cfg.Close()
		cli, _ := cfg.Client()
		_, err = cli.MemberList(ctx)
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), `RBAC forbids "create" on "pods/exec"`) {
			t.Errorf("exec without RBAC: %v", err)
		}

		t.Log("A user who may not even list pods is told so")
		_, err = flagsFor(cp, cp.API.KubeconfigFor("nobody"), connect.ViaExec, &log).Resolve()
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), `RBAC forbids "list" on "pods"`) {
			t.Errorf("discovery without RBAC: %v", err)
		}
	})

	t.Run("no etcd pods", func(t *testing.T) {
		var log bytes.Buffer
		f := flagsFor(cp, cp.API.Kubeconfig, connect.ViaExec, &log)
		f.EtcdSelector = "component=etcd-elsewhere"
		_, err := f.Resolve()
		if err == nil || !strings.Contains(err.Error(), "no etcd pods found in namespace kube-system") || !strings.Contains(err.Error(), "managed control plane") {
			t.Errorf("Resolve() with no etcd pods = %v", err)
		}
	})
}
