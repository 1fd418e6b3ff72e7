package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	// Registers gRPC's client-side health checking (HealthCheckedClient).
	_ "google.golang.org/grpc/health"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect/kube"
)

// Config is a resolved way to reach one etcd cluster.
type Config struct {
	// Endpoints are normalised client URLs (scheme://host:port).
	Endpoints []string
	// Source says where the endpoints came from, for -v and error messages.
	Source string

	CACertFile string
	CertFile   string
	KeyFile    string

	// CACertPEM, CertPEM and KeyPEM hold certificates read from elsewhere
	// than files (--cert-secret); CertSource names where, for messages.
	CACertPEM, CertPEM, KeyPEM []byte
	CertSource                 string

	DialTimeout       time.Duration
	CommandTimeout    time.Duration
	InsecurePlaintext bool

	// Dial, when set, opens every connection to a member (host:port)
	// instead of a plain TCP dial: a test reaches members that live in
	// other network namespaces through it. Not settable from flags.
	Dial func(ctx context.Context, addr string) (net.Conn, error)

	// Via is how the endpoints reach etcd: ViaDirect, ViaPortForward or
	// ViaExec.
	Via string
	// Pods are the etcd pods found through the Kubernetes API, for
	// port-forward and exec; nil otherwise.
	Pods []kube.EtcdPod

	tls *tls.Config
	// tunnels maps a member's advertised client URL to its port-forward.
	tunnels map[string]*kube.Tunnel
	// unreachable maps an advertised client URL to why it cannot be
	// reached through the API (its pod does not run, its tunnel failed).
	unreachable map[string]string
	etcdctl     *kube.Etcdctl
}

// validate normalises endpoints, refuses plaintext without consent and
// loads the certificates, so every file problem is reported before dialing.
func (c *Config) validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("no etcd endpoints given")
	}
	needTLS := false
	for i, ep := range c.Endpoints {
		norm, err := normalizeEndpoint(ep)
		if err != nil {
			return err
		}
		if strings.HasPrefix(norm, "http://") {
			if !c.InsecurePlaintext {
				return fmt.Errorf("endpoint %s is plaintext http: use https:// with --cacert/--cert/--key, or pass --insecure-plaintext if this etcd really has no TLS", norm)
			}
		} else {
			needTLS = true
		}
		c.Endpoints[i] = norm
	}
	if c.DialTimeout <= 0 {
		return fmt.Errorf("--dial-timeout must be positive, got %s", c.DialTimeout)
	}
	if c.CommandTimeout <= 0 {
		return fmt.Errorf("--command-timeout must be positive, got %s", c.CommandTimeout)
	}
	if !needTLS {
		return nil
	}
	tlsCfg, err := c.loadTLS(time.Now())
	if err != nil {
		return err
	}
	c.tls = tlsCfg
	return nil
}

func (c *Config) loadTLS(now time.Time) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	caPEM, caName := c.CACertPEM, c.CertSource+" ca.crt"
	if caPEM == nil && c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA certificate (--cacert): %w", err)
		}
		caPEM, caName = pem, c.CACertFile
	}
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", caName)
		}
		cfg.RootCAs = pool
	}
	certPEM, keyPEM := c.CertPEM, c.KeyPEM
	switch {
	case certPEM != nil:
	case c.CertFile == "" && c.KeyFile == "":
		return cfg, nil
	case c.CertFile == "":
		return nil, errors.New("--key given without --cert: pass both, or neither")
	case c.KeyFile == "":
		return nil, errors.New("--cert given without --key: pass both, or neither")
	default:
		var err error
		if certPEM, err = os.ReadFile(c.CertFile); err != nil {
			return nil, fmt.Errorf("reading client certificate (--cert): %w", err)
		}
		if keyPEM, err = os.ReadFile(c.KeyFile); err != nil {
			return nil, fmt.Errorf("reading client key (--key): %w", err)
		}
	}
	name := c.ClientCertName()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if c.CertPEM != nil {
			return nil, fmt.Errorf("client certificate and key in %s: %w", name, err)
		}
		return nil, fmt.Errorf("client certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("client certificate %s: %w", name, err)
		}
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("client certificate %s expired on %s: renew it (kubeadm certs renew etcd-healthcheck-client) or pass a valid --cert/--key", name, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("client certificate %s is not valid before %s: check this machine's clock", name, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}

// ClientCertName names the client certificate for messages: its file, or
// the secret it came from.
func (c *Config) ClientCertName() string {
	if c.CertPEM != nil {
		return c.CertSource
	}
	return c.CertFile
}

// TLS returns the client TLS configuration, nil for plaintext endpoints.
func (c *Config) TLS() *tls.Config {
	if c.tls == nil {
		return nil
	}
	return c.tls.Clone()
}

// Client returns a client balanced over all endpoints. Auto-sync stays off
// so the client never swaps in member URLs it cannot reach.
func (c *Config) Client() (*clientv3.Client, error) {
	return c.ClientFor(c.Endpoints...)
}

// ClientFor returns a client pinned to the given endpoints.
func (c *Config) ClientFor(endpoints ...string) (*clientv3.Client, error) {
	return c.client(endpoints, nil)
}

// HealthCheckedClient returns a client balanced over all endpoints that
// sends no new request to a member reporting NOT_SERVING on the gRPC
// health service, as a member started with
// --feature-gates=StopGRPCServiceOnDefrag=true does while it defragments;
// etcd's client does not ask for health checks itself, so without this
// requests keep going to a member that holds them until its
// defragmentation ends. It is for requests to the cluster as a whole (a
// steady stream of writes). Not for calls to one member such as
// Status(endpoint): a learner refuses the health check's stream, so such a
// call would never find a learner ready.
func (c *Config) HealthCheckedClient() (*clientv3.Client, error) {
	return c.client(c.Endpoints, []grpc.DialOption{
		// The service config etcd's resolver supplies has no health
		// checking; this one replaces it.
		grpc.WithDisableServiceConfig(),
		grpc.WithDefaultServiceConfig(healthCheckedServiceConfig),
	})
}

// healthCheckedServiceConfig is etcd's client balancing (round robin over
// the endpoints) plus gRPC client-side health checking.
const healthCheckedServiceConfig = `{"loadBalancingPolicy": "round_robin", "healthCheckConfig": {"serviceName": ""}}`

func (c *Config) client(endpoints []string, dialOptions []grpc.DialOption) (*clientv3.Client, error) {
	if c.etcdctl != nil {
		return c.etcdctl.Client(endpoints...), nil
	}
	if c.Dial != nil {
		// etcd's client puts DialOptions last, so this dialer wins.
		dialOptions = append(append([]grpc.DialOption{}, dialOptions...), grpc.WithContextDialer(c.Dial))
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         c.TLS(),
		DialTimeout: c.DialTimeout,
		Logger:      zap.NewNop(),
		// Keep-alives notice a member that stops answering mid-operation.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: c.DialTimeout,
		DialOptions:          dialOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("creating etcd client for %s: %w", strings.Join(endpoints, ","), err)
	}
	return cli, nil
}

// WithCommandTimeout bounds one request by --command-timeout.
func (c *Config) WithCommandTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.CommandTimeout)
}

// MemberEndpoint picks the URL to reach a member by: one of the configured
// endpoints when the member advertises it (it is known to be reachable from
// here), else the member's first client URL; "" for a member that has never
// started and so advertises none.
func (c *Config) MemberEndpoint(clientURLs []string) string {
	// Through port-forward, a member is reached by its tunnel.
	for _, u := range clientURLs {
		if t, ok := c.tunnels[strings.TrimSuffix(u, "/")]; ok {
			return t.LocalURL
		}
	}
	for _, u := range clientURLs {
		for _, ep := range c.Endpoints {
			if strings.TrimSuffix(u, "/") == ep {
				return ep
			}
		}
	}
	if len(clientURLs) == 0 {
		return ""
	}
	return strings.TrimSuffix(clientURLs[0], "/")
}

// NewConfig builds a Config for known endpoints and certificate files with
// the default timeouts, as a program (the sandbox, a test) needs it.
func NewConfig(endpoints []string, caCert, cert, key string) (*Config, error) {
	defaults := NewFlags()
	cfg := &Config{
		Endpoints:      append([]string{}, endpoints...),
		Source:         "configuration",
		CACertFile:     caCert,
		CertFile:       cert,
		KeyFile:        key,
		DialTimeout:    defaults.DialTimeout,
		CommandTimeout: defaults.CommandTimeout,
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}
