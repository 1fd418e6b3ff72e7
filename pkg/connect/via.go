package connect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect/kube"
)

// Ways to reach etcd (--via).
const (
	// ViaAuto picks the first way that applies: explicit endpoints, the
	// local node's manifest, port-forward when client certificates are
	// given, exec otherwise.
	ViaAuto = "auto"
	// ViaDirect dials the endpoints (flags, environment, local manifest).
	ViaDirect = "direct"
	// ViaPortForward tunnels to each member's pod through the API server.
	ViaPortForward = "port-forward"
	// ViaExec runs etcdctl in the members' pods through the API server.
	ViaExec = "exec"
)

// ViaValues lists the accepted --via values.
var ViaValues = []string{ViaAuto, ViaDirect, ViaPortForward, ViaExec}

// discoveryTimeout bounds finding the pods and opening the tunnels.
const discoveryTimeout = 30 * time.Second

// Close closes the tunnels a port-forward configuration opened; it is a
// no-op for the other ways. Commands close it when they end.
func (c *Config) Close() {
	var wg sync.WaitGroup
	for _, t := range c.tunnels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Close()
		}()
	}
	wg.Wait()
}

// Err reports the tunnels that failed for good during the command (they
// dropped again after their one reconnect), nil when none did.
func (c *Config) Err() error {
	var errs []error
	for _, u := range sortedKeys(c.tunnels) {
		if err := c.tunnels[u].Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return utilerrors.NewAggregate(errs)
}

// RequireConnection refuses op when etcd is reached by running etcdctl in
// its pods, which cannot stream (watch) or write.
func (c *Config) RequireConnection(op string) error {
	if c.etcdctl != nil {
		return &kube.NeedsTunnelError{Op: op}
	}
	return nil
}

// PodForMember returns the pod of the member with name and client URLs,
// when etcd was found through the Kubernetes API.
func (c *Config) PodForMember(name string, clientURLs []string) (kube.EtcdPod, bool) {
	return kube.ForMember(c.Pods, name, clientURLs)
}

func (c *Config) tunnelAt(localURL string) *kube.Tunnel {
	for _, t := range c.tunnels {
		if t.LocalURL == localURL {
			return t
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// kubeClient builds a client from the kubeconfig flags; ok is false when
// there is no kubeconfig at all, so auto can say so.
func (f *Flags) kubeClient() (*rest.Config, kubernetes.Interface, bool, error) {
	// client-go falls back to http://localhost:8080 when there is no
	// kubeconfig; a plugin should rather say there is none.
	raw, err := f.KubeConfig.ToRawKubeConfigLoader().RawConfig()
	if err == nil && len(raw.Clusters) == 0 && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, nil, false, nil
	}
	rc, err := f.KubeConfig.ToRESTConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, nil, false, nil
		}
		return nil, nil, true, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	// The tunnels and execs are long-lived streams; the kubeconfig's
	// request timeout bounds only the API calls made here.
	rc.Timeout = 0
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, true, err
	}
	return rc, cs, true, nil
}

func (f *Flags) etcdNamespace() string {
	if f.EtcdNamespace == "" {
		return kube.DefaultNamespace
	}
	return f.EtcdNamespace
}

// discover finds the etcd pods and keeps those that run.
func (f *Flags) discover(ctx context.Context, client kubernetes.Interface, cfg *Config) error {
	ns, selector := f.etcdNamespace(), f.EtcdSelector
	if selector == "" {
		selector = kube.DefaultSelector
	}
	pods, err := kube.Discover(ctx, client, ns, selector)
	if err != nil {
		return err
	}
	cfg.Pods = pods
	cfg.unreachable = map[string]string{}
	running := 0
	for _, p := range pods {
		f.logf(1, "found etcd pod %s on node %s (%s), client URLs %s", p, p.Node, p.Phase, strings.Join(p.ClientURLs, ","))
		if p.Running() {
			running++
			continue
		}
		for _, u := range p.ClientURLs {
			cfg.unreachable[u] = p.NotRunning()
		}
	}
	if running == 0 {
		var why []string
		for _, p := range pods {
			why = append(why, p.NotRunning())
		}
		return fmt.Errorf("no etcd pod is running: %s", strings.Join(why, "; "))
	}
	return nil
}

// certSecret reads --cert-secret NAMESPACE/NAME (a NAME alone is in the
// etcd namespace): ca.crt, tls.crt and tls.key, as cert-manager and
// `kubectl create secret tls` lay them out.
func (f *Flags) certSecret(ctx context.Context, client kubernetes.Interface, cfg *Config) error {
	ns, name, ok := strings.Cut(f.CertSecret, "/")
	if !ok {
		ns, name = f.etcdNamespace(), f.CertSecret
	}
	if ns == "" || name == "" {
		return fmt.Errorf("--cert-secret %q: want NAMESPACE/NAME", f.CertSecret)
	}
	s, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("--cert-secret: there is no secret %s/%s", ns, name)
	}
	if err != nil {
		return kube.APIError(err, "get", "secrets", ns, name)
	}
	var missing []string
	for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if len(s.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("secret %s/%s has no %s: it must hold ca.crt (the etcd CA), tls.crt and tls.key (an etcd client certificate)", ns, name, strings.Join(missing, ", "))
	}
	cfg.CACertPEM, cfg.CertPEM, cfg.KeyPEM = s.Data["ca.crt"], s.Data["tls.crt"], s.Data["tls.key"]
	cfg.CertSource = "secret " + ns + "/" + name
	cfg.CACertFile, cfg.CertFile, cfg.KeyFile = "", "", ""
	return nil
}

// viaPortForward opens one tunnel per running member pod and points the
// configuration at them. A refusal by RBAC ends it at once; a pod that
// cannot be reached otherwise is reported when a command probes its member.
func (f *Flags) viaPortForward(rc *rest.Config, client kubernetes.Interface, cfg *Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
	defer cancel()
	if f.CertSecret != "" {
		if err := f.certSecret(ctx, client, cfg); err != nil {
			return err
		}
	}
	if cfg.CertPEM == nil && (cfg.CertFile == "" || cfg.KeyFile == "") {
		return errors.New("--via port-forward needs an etcd client certificate: pass --cacert, --cert and --key (or set ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY), or --cert-secret NAMESPACE/NAME; without one, --via exec runs etcdctl in the etcd pods")
	}
	if err := f.discover(ctx, client, cfg); err != nil {
		return err
	}
	type opened struct {
		url    string
		tunnel *kube.Tunnel
		err    error
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var results []opened
	for _, p := range cfg.Pods {
		if !p.Running() {
			continue
		}
		u := p.ClientURLs[0]
		wg.Add(1)
		go func() {
			defer wg.Done()
			port, err := kube.PortOf(u)
			var t *kube.Tunnel
			if err == nil {
				t, err = kube.OpenTunnel(rc, client, p, port, func(format string, args ...any) { f.logf(1, format, args...) })
			}
			mu.Lock()
			results = append(results, opened{u, t, err})
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].url < results[j].url })
	cfg.tunnels = map[string]*kube.Tunnel{}
	var errs []error
	var forbidden error
	for _, r := range results {
		if r.err != nil {
			var fe *kube.ForbiddenError
			if errors.As(r.err, &fe) {
				forbidden = r.err
			}
			errs = append(errs, r.err)
			cfg.unreachable[r.url] = r.err.Error()
			continue
		}
		p := r.tunnel.Pod
		// Every advertised URL of the member leads to the same tunnel.
		for _, u := range p.ClientURLs {
			cfg.tunnels[u] = r.tunnel
		}
		cfg.Endpoints = append(cfg.Endpoints, r.tunnel.LocalURL)
		f.logf(1, "port-forward %s -> pod %s port %d (member %s)", r.tunnel.LocalURL, p, r.tunnel.RemotePort, r.url)
	}
	if forbidden != nil || len(cfg.Endpoints) == 0 {
		cfg.Close()
		if forbidden != nil {
			return forbidden
		}
		return fmt.Errorf("no port-forward to an etcd pod could be opened: %w", utilerrors.NewAggregate(errs))
	}
	cfg.Via = ViaPortForward
	cfg.Source = fmt.Sprintf("port-forward to the etcd pods in %s", f.etcdNamespace())
	return nil
}

// viaExec points the configuration at the members' advertised client
// URLs, reached by etcdctl running in their pods.
func (f *Flags) viaExec(rc *rest.Config, client kubernetes.Interface, cfg *Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
	defer cancel()
	if err := f.discover(ctx, client, cfg); err != nil {
		return err
	}
	for _, p := range cfg.Pods {
		if p.CACert == "" || p.Cert == "" || p.Key == "" {
			return fmt.Errorf("etcd pod %s does not name its certificates (--trusted-ca-file, --cert-file, --key-file) on its command line, so etcdctl in it has none to use: use --via port-forward with client certificates", p)
		}
		cfg.Endpoints = append(cfg.Endpoints, p.ClientURLs...)
	}
	cfg.etcdctl = &kube.Etcdctl{
		Pods:           cfg.Pods,
		Run:            kube.NewExecRunner(rc, client),
		DialTimeout:    cfg.DialTimeout,
		CommandTimeout: cfg.CommandTimeout,
	}
	// etcdctl in the pod uses the pod's certificates; none are read here.
	cfg.CACertFile, cfg.CertFile, cfg.KeyFile = "", "", ""
	cfg.Via = ViaExec
	cfg.Source = fmt.Sprintf("etcdctl in the etcd pods in %s (exec)", f.etcdNamespace())
	return nil
}
