// Package connect decides how kubectl-etcd reaches etcd and builds the
// clients every command uses: endpoints and certificates from flags, from
// the ETCDCTL_* variables etcdctl users already set, or from the etcd static
// pod manifest of the control-plane node it runs on.
package connect

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect/kube"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// Environment variables etcdctl reads, honoured here with the same meaning.
const (
	EnvEndpoints = "ETCDCTL_ENDPOINTS"
	EnvCACert    = "ETCDCTL_CACERT"
	EnvCert      = "ETCDCTL_CERT"
	EnvKey       = "ETCDCTL_KEY"
)

// DefaultPKIDir is where kubeadm keeps the control plane's certificates.
const DefaultPKIDir = "/etc/kubernetes/pki"

// Access is how to reach etcd members directly: their client URLs, the
// TLS files and the timeouts, as the connection flags give them.
type Access struct {
	Endpoints      []string
	CACert         string
	Cert           string
	Key            string
	DialTimeout    time.Duration
	CommandTimeout time.Duration
}

// Flags holds everything a user can say about how to reach etcd. It is
// shaped like cli-runtime's ConfigFlags: bind it with AddFlags, then call
// Resolve.
type Flags struct {
	Access
	InsecurePlaintext bool
	EtcdManifest      string
	PKIDir            string

	// Via is how to reach etcd: auto, direct, port-forward or exec.
	Via string
	// EtcdNamespace and EtcdSelector find the etcd pods through the API.
	EtcdNamespace string
	EtcdSelector  string
	// CertSecret is NAMESPACE/NAME of a secret with the client certificate.
	CertSecret string
	// Verbosity above 0 makes Resolve say which way it chose and why.
	Verbosity int
	// Log receives those messages (the command's error stream).
	Log io.Writer

	// KubeConfig holds --kubeconfig, --context, -n and friends for the
	// commands that talk to the Kubernetes API.
	KubeConfig *genericclioptions.ConfigFlags

	// Getenv reads the ETCDCTL_* variables; tests replace it.
	Getenv func(string) string
}

// NewFlags returns Flags with etcdctl's defaults.
func NewFlags() *Flags {
	kubeFlags := genericclioptions.NewConfigFlags(true)
	// --cluster and --user mean other things to etcd users (etcdctl's
	// --cluster, --user); the kubeconfig context covers both.
	kubeFlags.ClusterName = nil
	kubeFlags.AuthInfoName = nil
	// These would shadow or confuse our own TLS flags.
	kubeFlags.Insecure = nil
	kubeFlags.CAFile = nil
	kubeFlags.CertFile = nil
	kubeFlags.KeyFile = nil
	kubeFlags.BearerToken = nil
	kubeFlags.Impersonate = nil
	kubeFlags.ImpersonateUID = nil
	kubeFlags.ImpersonateGroup = nil
	kubeFlags.ImpersonateUserExtra = nil
	kubeFlags.Username = nil
	kubeFlags.Password = nil
	kubeFlags.APIServer = nil
	kubeFlags.TLSServerName = nil
	kubeFlags.DisableCompression = nil
	// -n is the namespace of the objects get and watch read, their own flag;
	// the etcd pods' namespace is --etcd-namespace.
	kubeFlags.Namespace = nil
	return &Flags{
		Access:        Access{DialTimeout: 2 * time.Second, CommandTimeout: 5 * time.Second},
		EtcdManifest:  staticpod.DefaultManifestPath,
		PKIDir:        DefaultPKIDir,
		Via:           ViaAuto,
		EtcdNamespace: kube.DefaultNamespace,
		EtcdSelector:  kube.DefaultSelector,
		KubeConfig:    kubeFlags,
		Getenv:        os.Getenv,
	}
}

// AddFlags registers the connection flags on fs.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.Endpoints, "endpoints", f.Endpoints, "etcd client URLs, comma-separated (env "+EnvEndpoints+"); default: the local etcd static pod")
	fs.StringVar(&f.CACert, "cacert", f.CACert, "CA bundle that signed the etcd server certificates (env "+EnvCACert+")")
	fs.StringVar(&f.Cert, "cert", f.Cert, "client certificate for etcd (env "+EnvCert+")")
	fs.StringVar(&f.Key, "key", f.Key, "client private key for etcd (env "+EnvKey+")")
	fs.DurationVar(&f.DialTimeout, "dial-timeout", f.DialTimeout, "time to wait for a connection to an etcd member")
	fs.DurationVar(&f.CommandTimeout, "command-timeout", f.CommandTimeout, "time to wait for one request to an etcd member")
	fs.BoolVar(&f.InsecurePlaintext, "insecure-plaintext", f.InsecurePlaintext, "allow http:// endpoints: requests and keys travel unencrypted and unauthenticated")
	fs.StringVar(&f.EtcdManifest, "etcd-manifest", f.EtcdManifest, "etcd static pod manifest to take endpoints and certificates from when no endpoints are given")
	fs.StringVar(&f.PKIDir, "pki-dir", f.PKIDir, "kubeadm certificate directory; the client certificate is etcd/healthcheck-client.{crt,key} in it")
	fs.StringVar(&f.Via, "via", f.Via, "how to reach etcd: auto (endpoints, else this node's manifest, else the Kubernetes API: port-forward with client certificates, exec without), direct, port-forward (tunnel to each etcd pod) or exec (run etcdctl in the etcd pods: reads, status, member list, defrag)")
	fs.StringVar(&f.EtcdNamespace, "etcd-namespace", f.EtcdNamespace, "namespace of the etcd pods, when reaching etcd through the Kubernetes API")
	fs.StringVar(&f.EtcdSelector, "etcd-selector", f.EtcdSelector, "label selector of the etcd pods, when reaching etcd through the Kubernetes API")
	fs.StringVar(&f.CertSecret, "cert-secret", f.CertSecret, "NAMESPACE/NAME of a secret holding the etcd client certificate (ca.crt, tls.crt, tls.key), for --via port-forward")
	fs.IntVarP(&f.Verbosity, "v", "v", f.Verbosity, "verbosity: -v (or --v=1) says how etcd is reached and why")
	fs.Lookup("v").NoOptDefVal = "1"
	f.KubeConfig.AddFlags(fs)
}

func (f *Flags) logf(level int, format string, args ...any) {
	if f.Verbosity >= level && f.Log != nil {
		fmt.Fprintf(f.Log, format+"\n", args...)
	}
}

// Resolve turns the flags, the environment, the local static pod manifest
// or the Kubernetes API into a Config, trying them in that order (--via
// auto) or as --via says. Direct ways read files but dial nothing; the API
// ways find the etcd pods and, for port-forward, open the tunnels, which
// Config.Close closes.
func (f *Flags) Resolve() (*Config, error) {
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	via := f.Via
	if via == "" {
		via = ViaAuto
	}
	if !slices.Contains(ViaValues, via) {
		return nil, fmt.Errorf("--via %q: want one of %s", via, strings.Join(ViaValues, ", "))
	}
	cfg := &Config{
		Endpoints:         trimAll(f.Endpoints),
		CACertFile:        f.CACert,
		CertFile:          f.Cert,
		KeyFile:           f.Key,
		DialTimeout:       f.DialTimeout,
		CommandTimeout:    f.CommandTimeout,
		InsecurePlaintext: f.InsecurePlaintext,
		Source:            "--endpoints",
		Via:               ViaDirect,
	}
	if len(cfg.Endpoints) == 0 {
		if env := getenv(EnvEndpoints); env != "" {
			if via == ViaPortForward || via == ViaExec {
				f.logf(1, "ignoring %s: --via %s finds the members through the Kubernetes API", EnvEndpoints, via)
			} else {
				cfg.Endpoints = trimAll(strings.Split(env, ","))
				cfg.Source = EnvEndpoints
			}
		}
	} else if via == ViaPortForward || via == ViaExec {
		return nil, fmt.Errorf("--endpoints and --via %s exclude each other: --via %s finds the members through the Kubernetes API", via, via)
	}
	if cfg.CACertFile == "" {
		cfg.CACertFile = getenv(EnvCACert)
	}
	if cfg.CertFile == "" {
		cfg.CertFile = getenv(EnvCert)
	}
	if cfg.KeyFile == "" {
		cfg.KeyFile = getenv(EnvKey)
	}
	if err := f.choose(via, cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		cfg.Close()
		return nil, err
	}
	return cfg, nil
}

// choose fills cfg the first way that applies, and says why at -v.
func (f *Flags) choose(via string, cfg *Config) error {
	if len(cfg.Endpoints) > 0 {
		f.logf(1, "reaching etcd directly at %s (from %s)", strings.Join(cfg.Endpoints, ","), cfg.Source)
		return nil
	}
	if via == ViaAuto || via == ViaDirect {
		err := f.fromManifest(cfg)
		if err == nil {
			f.logf(1, "reaching etcd directly at %s, from this node's etcd manifest %s", strings.Join(cfg.Endpoints, ","), f.EtcdManifest)
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) || via == ViaDirect {
			return err
		}
		f.logf(1, "no --endpoints, no %s and no etcd manifest at %s: trying the Kubernetes API", EnvEndpoints, f.EtcdManifest)
	}
	rc, client, ok, err := f.kubeClient()
	if err != nil {
		return err
	}
	if !ok {
		if via == ViaAuto {
			return fmt.Errorf("no etcd endpoints: pass --endpoints (or set %s), run on a control-plane node (no etcd manifest at %s; --etcd-manifest names another), or give a kubeconfig to reach etcd through the Kubernetes API", EnvEndpoints, f.EtcdManifest)
		}
		return fmt.Errorf("--via %s needs a kubeconfig: none found (--kubeconfig, KUBECONFIG, ~/.kube/config)", via)
	}
	if via == ViaAuto {
		certs := f.CertSecret != "" || (cfg.CertFile != "" && cfg.KeyFile != "")
		if certs {
			via = ViaPortForward
			f.logf(1, "client certificates given: tunnelling to each etcd pod with port-forward")
		} else {
			via = ViaExec
			f.logf(1, "no client certificate given (--cert/--key, --cert-secret): running etcdctl in the etcd pods with exec (reads, status, member list, defrag only)")
		}
	}
	if via == ViaPortForward {
		return f.viaPortForward(rc, client, cfg)
	}
	return f.viaExec(rc, client, cfg)
}

// fromManifest fills what the user left empty from the etcd static pod. A
// missing manifest is an error wrapping os.ErrNotExist.
func (f *Flags) fromManifest(cfg *Config) error {
	m, err := staticpod.Read(f.EtcdManifest)
	if errors.Is(err, os.ErrNotExist) {
		if parked := staticpod.Parked(f.EtcdManifest); parked != "" {
			// Not a host without etcd: say so rather than try the API.
			what, fix := staticpod.ParkedAdvice(f.EtcdManifest, parked)
			return fmt.Errorf("%s: %s; or pass --endpoints of the other members", what, fix)
		}
		return fmt.Errorf("no etcd endpoints: pass --endpoints (or set %s), or run on a control-plane node (no etcd manifest at %s; --etcd-manifest names another): %w", EnvEndpoints, f.EtcdManifest, os.ErrNotExist)
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("reading etcd manifest: %w: run as root (sudo), or pass --via exec or --via port-forward to go through the Kubernetes API", err)
	}
	if err != nil {
		return fmt.Errorf("reading etcd manifest: %w", err)
	}
	ep, err := m.LocalClientURL()
	if err != nil {
		return err
	}
	cfg.Endpoints = []string{ep}
	cfg.Source = "manifest " + f.EtcdManifest
	if cfg.CACertFile == "" {
		cfg.CACertFile = m.Flags["trusted-ca-file"]
	}
	if cfg.CertFile == "" && cfg.KeyFile == "" {
		dir := filepath.Join(f.PKIDir, "etcd")
		if f.PKIDir == DefaultPKIDir && cfg.CACertFile != "" {
			// Follow the manifest when it keeps its certificates elsewhere.
			dir = filepath.Dir(cfg.CACertFile)
		}
		cfg.CertFile = filepath.Join(dir, "healthcheck-client.crt")
		cfg.KeyFile = filepath.Join(dir, "healthcheck-client.key")
	}
	return nil
}

func trimAll(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// normalizeEndpoint adds https:// to a bare host:port, as etcd users expect
// TLS on a control plane.
func normalizeEndpoint(ep string) (string, error) {
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("endpoint %q is not a URL such as https://10.0.0.1:2379", ep)
	}
	if p, err := strconv.Atoi(u.Port()); u.Port() != "" && (err != nil || p < 1 || p > 65535) {
		return "", fmt.Errorf("endpoint %q: port %q is not valid", ep, u.Port())
	}
	switch u.Scheme {
	case "https", "http":
	default:
		return "", fmt.Errorf("endpoint %q: scheme %q is not supported, use https://", ep, u.Scheme)
	}
	return u.Scheme + "://" + u.Host, nil
}
