// Package e2e runs the built kubectl-etcd binary against clusters of real
// etcd binaries (every release in hack/etcd-versions.txt) and against its
// own sandbox, as a user would from a shell.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
)

var pluginBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kubectl-etcd-e2e")
	if err != nil {
		panic(err)
	}
	pluginBin = filepath.Join(dir, "kubectl-etcd")
	build := exec.Command("go", "build", "-o", pluginBin, "../cmd/kubectl-etcd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building kubectl-etcd: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// plugin runs kubectl-etcd with args and a clean environment (no ETCDCTL_*
// and no kubeconfig from the developer's shell) plus extraEnv.
func plugin(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	r, err := runPlugin(t, extraEnv, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runPlugin is plugin for other goroutines than the test's: it returns
// the failure to start instead of ending the test.
func runPlugin(t *testing.T, extraEnv []string, args ...string) (result, error) {
	r, err := execute(pluginCommand(extraEnv, args...))
	if err != nil {
		return result{}, fmt.Errorf("running kubectl-etcd %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("kubectl etcd %s -> exit %d", strings.Join(args, " "), r.code)
	return r, nil
}

// pluginCommand is kubectl-etcd with args in a clean environment plus
// extraEnv.
func pluginCommand(extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command(pluginBin, args...)
	cmd.Env = cleanEnv(extraEnv...)
	return cmd
}

// cleanEnv is this process's environment without ETCDCTL_* and with no
// kubeconfig from the developer's shell, plus extraEnv (exec.Cmd takes
// the last value of a variable set twice).
func cleanEnv(extraEnv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ETCDCTL_") && !strings.HasPrefix(e, "KUBECONFIG=") {
			env = append(env, e)
		}
	}
	return append(append(env, "KUBECONFIG="+os.DevNull), extraEnv...)
}

// startPluginCmd starts kubectl-etcd with args in the environment env (nil:
// this process's) with its stderr kept; should the test not wait for it,
// the test's cleanup kills it.
func startPluginCmd(t *testing.T, env []string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(pluginBin, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &stderr
}

// execute runs cmd and returns its output and exit code; the error is a
// failure to run it at all.
// watchStderr runs cmd, hands each line of its stderr to onLine as it is
// printed, and kills cmd (SIGKILL) the first time onLine returns true, so
// a test can act in the middle of a long operation or interrupt it there.
// The exit code of a killed command is -1.
func watchStderr(t *testing.T, cmd *exec.Cmd, onLine func(string) bool) result {
	t.Helper()
	var out strings.Builder
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	killed := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		errOut.WriteString(sc.Text() + "\n")
		if !killed && onLine(sc.Text()) {
			_ = cmd.Process.Kill()
			killed = true
		}
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errOut.String(), code}
}

func execute(cmd *exec.Cmd) (result, error) {
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return result{}, err
	}
	return result{out.String(), errOut.String(), code}, nil
}

// oneErrorLine checks the promise for bad input: one "error: " line naming
// the cause, no stack trace.
func oneErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("exit code 0, want non-zero; stdout:\n%s", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want an error line containing %q", r.stderr, want)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("stderr has a stack trace:\n%s", r.stderr)
	}
}

func TestStatusAndHealthAgainstRealEtcd(t *testing.T) {
	etcdtest.ForEachVersion(t, func(t *testing.T, version string) {
		c := etcdtest.StartProcesses(t, version)
		conn := c.ConnectArgs()

		t.Log("A healthy cluster: every member answers, one leads, exit 0")
		r := plugin(t, nil, append(conn, "status", "-o", "json")...)
		if r.code != 0 {
			t.Fatalf("status exit %d: %s", r.code, r.stderr)
		}
		var statuses []cluster.MemberStatus
		if err := json.Unmarshal([]byte(r.stdout), &statuses); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, r.stdout)
		}
		leaders := 0
		for _, s := range statuses {
			if s.Version != version {
				t.Errorf("member %s reports version %q, want %s", s.Name, s.Version, version)
			}
			if s.Leader {
				leaders++
			}
		}
		if len(statuses) != 3 || leaders != 1 {
			t.Errorf("%d members with %d leaders, want 3 with 1", len(statuses), leaders)
		}
		if r := plugin(t, nil, append(conn, "health")...); r.code != 0 {
			t.Errorf("health of a healthy cluster exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}

		t.Log("Pause member-3 (SIGSTOP): it is reported hung, exit 5")
		c.Pause(2)
		start := time.Now()
		r = plugin(t, nil, append(conn, "status", "--dial-timeout", "1s")...)
		if r.code != 5 || !strings.Contains(r.stdout, "did not answer") || !strings.Contains(r.stderr, "member-3") {
			t.Errorf("status with member-3 paused: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("status took %s with a hung member; the dial timeout should bound it", took)
		}
		r = plugin(t, nil, append(conn, "health", "--dial-timeout", "1s")...)
		if r.code != 5 || !strings.Contains(r.stderr, "1 of 3 members unhealthy: member-3") {
			t.Errorf("health with member-3 paused: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		c.Resume(2)

		t.Log("Kill member-2: connection refused, exit 5; the others stay healthy")
		c.Kill(1)
		r = plugin(t, nil, append(conn, "health", "-o", "json")...)
		var health []cluster.Health
		if err := json.Unmarshal([]byte(r.stdout), &health); err != nil {
			t.Fatalf("health -o json: %v\n%s", err, r.stdout)
		}
		if r.code != 5 || len(health) != 3 || health[1].Healthy || !strings.Contains(health[1].Error, "connection refused") || !health[0].Healthy || !health[2].Healthy {
			t.Errorf("health with member-2 killed: exit %d, %+v", r.code, health)
		}

		t.Log("Restart member-2: healthy again")
		c.Start(1)
		c.WaitHealthy(30 * time.Second)
		if r := plugin(t, nil, append(conn, "status")...); r.code != 0 {
			t.Errorf("status after restart exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

func TestConnectThroughStaticPodManifest(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t), etcdtest.WithClusterSize(1))
	m := c.State.Members[0]
	// A kubeadm-shaped manifest whose CA sits beside healthcheck-client, as
	// under /etc/kubernetes/pki/etcd.
	manifest := filepath.Join(t.TempDir(), "etcd.yaml")
	writeFile(t, manifest, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.6.6-0
    command:
    - etcd
    - --advertise-client-urls=%s
    - --listen-client-urls=%s
    - --trusted-ca-file=%s
`, m.ClientURL, m.ClientURL, c.State.CACert))

	t.Log("No endpoint flags: endpoints and certificates come from the manifest")
	r := plugin(t, nil, "status", "--etcd-manifest", manifest)
	if r.code != 0 || !strings.Contains(r.stdout, m.Name) {
		t.Fatalf("status via manifest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	t.Log("A manifest that is not an etcd pod is refused")
	notEtcd := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
	writeFile(t, notEtcd, "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver]\n")
	oneErrorLine(t, plugin(t, nil, "status", "--etcd-manifest", notEtcd), "is not an etcd static pod")
}

func TestBadInputGivesOneClearLine(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t), etcdtest.WithClusterSize(1))
	s := c.State
	ep := s.Members[0].ClientURL
	tls := []string{"--cacert", s.CACert, "--cert", s.ClientCert, "--key", s.ClientKey}
	closedPort := "https://127.0.0.1:" + strconv.Itoa(etcdtest.FreePorts(t, 1)[0])

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"refused", append([]string{"status", "--endpoints", closedPort}, tls...), "connection refused"},
		{"wrong CA", []string{"health", "--endpoints", ep, "--cacert", s.ClientCert, "--cert", s.ClientCert, "--key", s.ClientKey}, "not signed by the CA in"},
		{"no client certificate", []string{"status", "--endpoints", ep, "--cacert", s.CACert}, "requires a client certificate"},
		{"plaintext without the flag", []string{"status", "--endpoints", strings.Replace(ep, "https", "http", 1)}, "--insecure-plaintext"},
		{"unreadable key", []string{"status", "--endpoints", ep, "--cacert", s.CACert, "--cert", s.ClientCert, "--key", "/nonexistent/client.key"}, "reading client key (--key)"},
		{"no endpoints at all", []string{"status", "--etcd-manifest", "/nonexistent/etcd.yaml"}, "no etcd endpoints"},
		{"port out of range", append([]string{"status", "--endpoints", "https://127.0.0.1:123456"}, tls...), `port "123456" is not valid`},
		{"bad output format", append(append([]string{"status", "--endpoints", ep}, tls...), "-o", "xml"), `unknown output format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oneErrorLine(t, plugin(t, nil, tt.args...), tt.want)
		})
	}
}

func TestSandboxLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sandbox")
	t.Cleanup(func() { plugin(t, nil, "sandbox", "down", "--dir", dir, "--purge") })

	t.Log("sandbox up starts three TLS members and prints how to reach them")
	r := plugin(t, nil, "sandbox", "up", "--dir", dir, "--members", "3", "--client-port", "23790")
	if r.code != 0 || !strings.Contains(r.stdout, "export ETCDCTL_ENDPOINTS=https://127.0.0.1:") {
		t.Fatalf("sandbox up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	state, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	env := state.Exports()

	t.Log("kubectl etcd and the real etcdctl both reach it with the printed exports")
	if r := plugin(t, env, "status"); r.code != 0 || strings.Count(r.stdout, "https://127.0.0.") != 3 {
		t.Errorf("status through ETCDCTL_*: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	etcdctl := exec.Command(filepath.Join(etcdtest.EtcdBinaries(t, etcdtest.NewestVersion(t)), "etcdctl"), "endpoint", "health")
	etcdctl.Env = append(os.Environ(), env...)
	if out, err := etcdctl.CombinedOutput(); err != nil || strings.Count(string(out), "is healthy") != 3 {
		t.Errorf("etcdctl endpoint health: %v\n%s", err, out)
	}
	if r := plugin(t, nil, "sandbox", "status", "--dir", dir); r.code != 0 {
		t.Errorf("sandbox status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	t.Log("a second sandbox up in the same directory is refused")
	oneErrorLine(t, plugin(t, nil, "sandbox", "up", "--dir", dir), "already running")

	t.Log("sandbox down stops every member and leaves nothing running")
	r = plugin(t, nil, "sandbox", "down", "--dir", dir)
	if r.code != 0 || strings.Count(r.stdout, "stopped member-") != 3 {
		t.Errorf("sandbox down: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, m := range state.Members {
		if running(m.PID) {
			t.Errorf("member %s (pid %d) still runs after sandbox down", m.Name, m.PID)
		}
	}
	if r := plugin(t, nil, "sandbox", "status", "--dir", dir); r.code != 5 || !strings.Contains(r.stdout, "not running") {
		t.Errorf("sandbox status after down: exit %d\n%s", r.code, r.stdout)
	}

	t.Log("sandbox up again restarts the same cluster on its data")
	if r := plugin(t, nil, "sandbox", "up", "--dir", dir); r.code != 0 {
		t.Fatalf("restart: exit %d\n%s", r.code, r.stderr)
	}
	if r := plugin(t, env, "health"); r.code != 0 {
		t.Errorf("health after restart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := plugin(t, nil, "sandbox", "down", "--dir", dir, "--purge"); r.code != 0 {
		t.Errorf("sandbox down --purge: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("--purge left %s behind", dir)
	}
}

// running reports whether pid is a live process; a zombie waiting for its
// new parent to reap it has stopped running.
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return !(i > 0 && i+2 < len(stat) && stat[i+2] == 'Z')
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
