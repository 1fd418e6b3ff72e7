package kubetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// KWOK plays the kubelet here, where no real one can run (no container
// runtime): it marks the nodes of a kube-apiserver Ready and their pods
// Running, and serves the kubelet API the API server proxies port-forward
// and exec to. Its port-forwards reach real local processes and its execs
// run real local commands, so `kubectl port-forward` and `kubectl exec`
// (and kubectl-etcd through them) reach real etcd members.
type KWOK struct {
	// Port is the kubelet port it serves on 127.0.0.1, for every node.
	Port int
	// LogFile has kwok's output.
	LogFile string

	t    testing.TB
	args []string
	env  []string

	process
}

// KubeletOnLoopback makes kube-apiserver reach kubelets by their
// InternalIP: KWOK gives every node 127.0.0.1 and the node name as
// Hostname, which does not resolve.
func KubeletOnLoopback() Option {
	return Flags("--kubelet-preferred-address-types=InternalIP")
}

// KWOKOptions say what KWOK forwards and runs.
type KWOKOptions struct {
	// PortForwards are per-pod forwards: a pod port to a local address.
	PortForwards []PodPortForward
	// ExecPath is prepended to PATH for the commands exec runs, so a
	// container's command (etcdctl) is a real local binary.
	ExecPath []string
	// ExecNamespaces limits exec to pods in these namespaces (all if none).
	ExecNamespaces []string
}

// PodPortForward maps one pod's port to a local address, so each fake
// pod reaches its own process.
type PodPortForward struct {
	Namespace, Pod string
	Port           int
	// Address:TargetPort is where the connection goes.
	Address    string
	TargetPort int
}

// KWOKOption changes KWOKOptions.
type KWOKOption func(*KWOKOptions)

// ForwardPod adds a per-pod port-forward.
func ForwardPod(f PodPortForward) KWOKOption {
	return func(o *KWOKOptions) { o.PortForwards = append(o.PortForwards, f) }
}

// ExecLocally runs exec commands of pods in namespaces as local processes,
// finding them in dirs first.
func ExecLocally(namespaces []string, dirs ...string) KWOKOption {
	return func(o *KWOKOptions) {
		o.ExecNamespaces = append(o.ExecNamespaces, namespaces...)
		o.ExecPath = append(o.ExecPath, dirs...)
	}
}

// StartKWOK starts kwok as the kubelet of every node of api, with the
// stage objects of hack/build-kube.sh (nodes become Ready and pods Running
// at once) and the given forwards and execs. api must have been started
// with KubeletOnLoopback. KWOK is stopped when the test ends.
func StartKWOK(t testing.TB, api *APIServer, opts ...KWOKOption) *KWOK {
	t.Helper()
	var o KWOKOptions
	for _, fn := range opts {
		fn(&o)
	}
	dir := t.TempDir()
	config, err := kwokConfig(api.Binaries, o)
	if err != nil {
		t.Fatalf("KWOK configuration: %v", err)
	}
	configFile := filepath.Join(dir, "kwok.yaml")
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	k := &KWOK{Port: port, LogFile: filepath.Join(dir, "kwok.log"), t: t}
	k.args = []string{
		"--kubeconfig=" + api.Kubeconfig,
		"--config=" + configFile,
		"--manage-all-nodes",
		"--node-ip=127.0.0.1",
		"--node-port=" + strconv.Itoa(port),
		"--server-address=127.0.0.1:" + strconv.Itoa(port),
	}
	path := strings.Join(append(append([]string{}, o.ExecPath...), os.Getenv("PATH")), string(os.PathListSeparator))
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") && !strings.HasPrefix(e, "KUBECONFIG=") {
			k.env = append(k.env, e)
		}
	}
	k.env = append(k.env, "PATH="+path, "HOME="+dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kwok log %s ends with:\n%s", k.LogFile, k.LogTail(40))
		}
	})
	t.Cleanup(k.Stop)
	k.Start()
	return k
}

// kwokConfig is KWOK's configuration file: the stage objects, then the
// port-forwards and the exec rule.
func kwokConfig(bins Dir, o KWOKOptions) ([]byte, error) {
	var docs []string
	for _, f := range bins.Stages() {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs = append(docs, strings.TrimSpace(string(data)))
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no stage objects in %s/stages: rebuild with hack/build-kube.sh", bins)
	}
	add := func(obj any) error {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		docs = append(docs, strings.TrimSpace(string(data)))
		return nil
	}
	for _, f := range o.PortForwards {
		if err := add(map[string]any{
			"apiVersion": "kwok.x-k8s.io/v1alpha1",
			"kind":       "PortForward",
			"metadata":   map[string]any{"name": f.Pod, "namespace": f.Namespace},
			"spec": map[string]any{"forwards": []any{map[string]any{
				"ports":  []int{f.Port},
				"target": map[string]any{"address": f.Address, "port": f.TargetPort},
			}}},
		}); err != nil {
			return nil, err
		}
	}
	if len(o.ExecPath) > 0 || len(o.ExecNamespaces) > 0 {
		spec := map[string]any{"execs": []any{map[string]any{"local": map[string]any{}}}}
		if len(o.ExecNamespaces) > 0 {
			spec["selector"] = map[string]any{"matchNamespaces": o.ExecNamespaces}
		}
		if err := add(map[string]any{
			"apiVersion": "kwok.x-k8s.io/v1alpha1",
			"kind":       "ClusterExec",
			"metadata":   map[string]any{"name": "local"},
			"spec":       spec,
		}); err != nil {
			return nil, err
		}
	}
	return []byte(strings.Join(docs, "\n---\n") + "\n"), nil
}

// Start starts kwok (again, after Stop) on the same port and configuration.
func (k *KWOK) Start() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		return
	}
	log, err := os.OpenFile(k.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		k.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(Binaries(k.t).Kwok(), k.args...)
	cmd.Env = k.env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		k.t.Fatalf("starting kwok: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	k.cmd, k.done = cmd, done
	if err := waitListening("127.0.0.1:"+strconv.Itoa(k.Port), done, time.Minute); err != nil {
		k.t.Fatalf("kwok: %v\n%s", err, k.LogTail(40))
	}
}

// Stop stops kwok; the fake nodes and pods stay as they are, and every
// port-forward and exec through it breaks, as when a kubelet restarts.
func (k *KWOK) Stop() {
	k.stop()
}

// LogTail returns the last n lines of kwok's log.
func (k *KWOK) LogTail(n int) string {
	return logTail(k.LogFile, n)
}
