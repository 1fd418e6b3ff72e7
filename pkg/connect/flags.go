// Package connect decides how kubectl-etcd reaches etcd and builds the
// clients every command uses: endpoints and certificates from flags, from
// the ETCDCTL_* variables etcdctl users already set, or from the etcd static
// pod manifest of the control-plane node it runs on.
package connect

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"

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

// Flags holds everything a user can say about how to reach etcd. It is
// shaped like cli-runtime's ConfigFlags: bind it with AddFlags, then call
// Resolve.
type Flags struct {
	Endpoints         []string
	CACert            string
	Cert              string
	Key               string
	DialTimeout       time.Duration
	CommandTimeout    time.Duration
	InsecurePlaintext bool
	EtcdManifest      string
	PKIDir            string

	// KubeConfig holds --kubeconfig, --context, -n and friends for the
	// commands that talk to the Kubernetes API.
	KubeConfig *genericclioptions.ConfigFlags

	// Getenv reads the ETCDCTL_* variables; tests replace it.
	Getenv func(string) string
}

// NewFlags returns Flags with etcdctl's defaults.
func NewFlags() *Flags {
	kube := genericclioptions.NewConfigFlags(true)
	// --cluster and --user mean other things to etcd users (etcdctl's
	// --cluster, --user); the kubeconfig context covers both.
	kube.ClusterName = nil
	kube.AuthInfoName = nil
	// These would shadow or confuse our own TLS flags.
	kube.Insecure = nil
	kube.CAFile = nil
	kube.CertFile = nil
	kube.KeyFile = nil
	kube.BearerToken = nil
	kube.Impersonate = nil
	kube.ImpersonateUID = nil
	kube.ImpersonateGroup = nil
	kube.ImpersonateUserExtra = nil
	kube.Username = nil
	kube.Password = nil
	kube.APIServer = nil
	kube.TLSServerName = nil
	kube.DisableCompression = nil
	ns := "kube-system"
	kube.Namespace = &ns
	return &Flags{
		DialTimeout:    2 * time.Second,
		CommandTimeout: 5 * time.Second,
		EtcdManifest:   staticpod.DefaultManifestPath,
		PKIDir:         DefaultPKIDir,
		KubeConfig:     kube,
		Getenv:         os.Getenv,
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
	f.KubeConfig.AddFlags(fs)
}

// Resolve turns the flags, the environment and, failing both, the local
// static pod manifest into a Config. It reads files but dials nothing.
func (f *Flags) Resolve() (*Config, error) {
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.Getenv
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
	}
	if len(cfg.Endpoints) == 0 {
		if env := getenv(EnvEndpoints); env != "" {
			cfg.Endpoints = trimAll(strings.Split(env, ","))
			cfg.Source = EnvEndpoints
		}
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
	if len(cfg.Endpoints) == 0 {
		if err := f.fromManifest(cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fromManifest fills what the user left empty from the etcd static pod.
func (f *Flags) fromManifest(cfg *Config) error {
	m, err := staticpod.Read(f.EtcdManifest)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no etcd endpoints: pass --endpoints (or set %s), or run on a control-plane node (no etcd manifest at %s; --etcd-manifest names another)", EnvEndpoints, f.EtcdManifest)
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
