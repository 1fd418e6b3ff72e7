package kubetest

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
)

// AdminUser is the user of the admin kubeconfig, in system:masters.
const AdminUser = "kubetest-admin"

// Options shape a kube-apiserver.
type Options struct {
	// EtcdCAFile, EtcdCertFile and EtcdKeyFile reach an etcd that serves
	// TLS with client certificates; empty for plain http.
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	// Flags are added after the harness's own, so they can override them
	// (kube-apiserver keeps the last value of a repeated flag).
	Flags []string
	// Users are extra bearer-token users in the token auth file.
	Users []User
	// ReadyTimeout bounds the wait for /readyz; 2 minutes by default.
	ReadyTimeout time.Duration
}

// User is a bearer-token user of the token auth file.
type User struct {
	Name   string
	Token  string
	Groups []string
}

// Option changes Options.
type Option func(*Options)

// EtcdTLS reaches etcd with TLS: its CA and a client certificate and key.
func EtcdTLS(caFile, certFile, keyFile string) Option {
	return func(o *Options) { o.EtcdCAFile, o.EtcdCertFile, o.EtcdKeyFile = caFile, certFile, keyFile }
}

// EtcdTLSOf reaches a sandbox (or etcdtest) cluster with its certificates.
func EtcdTLSOf(s *sandbox.State) Option { return EtcdTLS(s.CACert, s.ClientCert, s.ClientKey) }

// Flags adds kube-apiserver flags, such as --feature-gates=...
func Flags(flags ...string) Option { return func(o *Options) { o.Flags = append(o.Flags, flags...) } }

// EtcdPrefix stores objects under prefix instead of /registry.
func EtcdPrefix(prefix string) Option { return Flags("--etcd-prefix=" + prefix) }

// EncryptionProviderConfig makes kube-apiserver encrypt what it stores as
// the EncryptionConfiguration in file says.
func EncryptionProviderConfig(file string) Option {
	return Flags("--encryption-provider-config=" + file)
}

// TokenUser adds a bearer-token user; APIServer.KubeconfigForToken makes a
// kubeconfig for it. With no groups the user is only system:authenticated,
// which RBAC grants next to nothing.
func TokenUser(name, token string, groups ...string) Option {
	return func(o *Options) { o.Users = append(o.Users, User{Name: name, Token: token, Groups: groups}) }
}

// ReadyTimeout bounds the wait for /readyz.
func ReadyTimeout(d time.Duration) Option { return func(o *Options) { o.ReadyTimeout = d } }

// APIServer is a running kube-apiserver.
type APIServer struct {
	// URL is https://127.0.0.1:PORT.
	URL string
	// Kubeconfig is an admin kubeconfig file (bearer token, system:masters).
	Kubeconfig string
	// AdminToken is the admin's bearer token.
	AdminToken string
	// CAFile is the CA of the serving certificate and of client
	// certificates KubeconfigFor issues.
	CAFile string
	// Config and Client are the admin's.
	Config *rest.Config
	Client *kubernetes.Clientset
	// Binaries holds kube-apiserver, kubectl and the rest.
	Binaries Dir
	// Dir is the server's working directory: keys, token file, log.
	Dir string
	// LogFile has kube-apiserver's stdout and stderr.
	LogFile string
	// Options it was started with.
	Options Options

	t    testing.TB
	ca   *pki.KeyPair
	args []string

	process
}

// StartAPIServer starts kube-apiserver on a free 127.0.0.1 port against
// the etcd at etcdEndpoints, waits until /readyz answers ok and writes an
// admin kubeconfig. It authenticates bearer tokens (the admin's and
// TokenUser's) and client certificates from CAFile, authorizes with RBAC,
// and needs no controller manager (no ServiceAccount admission). It is
// stopped when the test ends; on failure the log's tail is shown.
func StartAPIServer(t testing.TB, etcdEndpoints []string, opts ...Option) *APIServer {
	t.Helper()
	o := Options{ReadyTimeout: 2 * time.Minute}
	for _, fn := range opts {
		fn(&o)
	}
	s := &APIServer{Binaries: Binaries(t), Dir: t.TempDir(), Options: o, t: t}
	s.LogFile = filepath.Join(s.Dir, "kube-apiserver.log")
	// Cleanups run last in, first out: the log's tail is shown before
	// the shutdown adds its noise.
	t.Cleanup(s.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver log %s ends with:\n%s", s.LogFile, s.LogTail(60))
		}
	})
	if err := s.prepare(etcdEndpoints); err != nil {
		t.Fatalf("preparing kube-apiserver: %v", err)
	}

	// The free port is found by binding and closing it, so another process
	// may take it first: then kube-apiserver exits and a new port is tried.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(); err == nil {
			break
		}
		if !strings.Contains(s.LogTail(20), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("kube-apiserver did not become ready: %v\n%s", err, s.LogTail(60))
	}
	return s
}

// prepare writes certificates, keys, the token file and the kubeconfig,
// and builds the command line less the port.
func (s *APIServer) prepare(etcdEndpoints []string) error {
	ca, err := pki.NewCA("kubetest-ca", pki.ECDSAP256)
	if err != nil {
		return err
	}
	s.ca = ca
	if err := ca.Write(s.Dir, "ca"); err != nil {
		return err
	}
	s.CAFile, _ = pki.Paths(s.Dir, "ca")
	serving, err := pki.NewLeaf(ca, pki.LeafConfig{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, pki.ECDSAP256)
	if err != nil {
		return err
	}
	if err := serving.Write(s.Dir, "apiserver"); err != nil {
		return err
	}
	servingCert, servingKey := pki.Paths(s.Dir, "apiserver")

	// The service account signing key: tokens are never used here, but the
	// server refuses to start without one.
	saKey, err := pki.NewKey(pki.ECDSAP256)
	if err != nil {
		return err
	}
	saPEM, err := keyutil.MarshalPrivateKeyToPEM(saKey)
	if err != nil {
		return err
	}
	saFile := filepath.Join(s.Dir, "sa.key")
	if err := keyutil.WriteKey(saFile, saPEM); err != nil {
		return err
	}

	s.AdminToken = randomToken()
	users := append([]User{{Name: AdminUser, Token: s.AdminToken, Groups: []string{"system:masters"}}}, s.Options.Users...)
	var tokens strings.Builder
	for _, u := range users {
		// token,user,uid,"group1,group2"
		fmt.Fprintf(&tokens, "%s,%s,%s,%q\n", u.Token, u.Name, u.Name, strings.Join(u.Groups, ","))
	}
	tokenFile := filepath.Join(s.Dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens.String()), 0o600); err != nil {
		return err
	}

	s.args = []string{
		"--etcd-servers=" + strings.Join(etcdEndpoints, ","),
		"--bind-address=127.0.0.1",
		// A loopback advertise address is refused unless no endpoint
		// reconciler writes it into the kubernetes Service's endpoints.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + servingCert,
		"--tls-private-key-file=" + servingKey,
		"--cert-dir=" + filepath.Join(s.Dir, "certs"),
		"--client-ca-file=" + s.CAFile,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saFile,
		"--service-account-signing-key-file=" + saFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// No controller manager creates the default service accounts, so
		// the admission plugin that requires them would refuse every pod.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--profiling=false",
	}
	if s.Options.EtcdCAFile != "" {
		s.args = append(s.args,
			"--etcd-cafile="+s.Options.EtcdCAFile,
			"--etcd-certfile="+s.Options.EtcdCertFile,
			"--etcd-keyfile="+s.Options.EtcdKeyFile)
	}
	return nil
}

// Restart stops kube-apiserver and starts it again with the same flags on
// the same port, as an operator restarts it after etcd was recovered or
// restored, and waits for /readyz. Clients made before (informers) reach
// it again at the same URL.
func (s *APIServer) Restart() {
	s.t.Helper()
	s.Stop()
	u, err := url.Parse(s.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	if err := s.startOn(port); err != nil {
		s.t.Fatalf("kube-apiserver did not become ready again: %v\n%s", err, s.LogTail(60))
	}
}

// start runs kube-apiserver on a fresh port and waits for /readyz.
func (s *APIServer) start() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	return s.startOn(port)
}

// startOn runs kube-apiserver on port and waits for /readyz.
func (s *APIServer) startOn(port int) error {
	s.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	args := append(append([]string{"--secure-port=" + strconv.Itoa(port)}, s.args...), s.Options.Flags...)
	// A restart appends, so the log keeps what the first run said.
	log, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(s.Binaries.KubeAPIServer(), args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Die with the test binary even when it is killed before cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.Binaries.KubeAPIServer(), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	s.Config = &rest.Config{
		Host:            s.URL,
		BearerToken:     s.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAFile: s.CAFile},
		QPS:             -1, // no client-side throttling in tests
	}
	if err := s.waitReady(done); err != nil {
		s.Stop()
		return err
	}
	s.Client, err = kubernetes.NewForConfig(s.Config)
	if err != nil {
		return err
	}
	s.Kubeconfig = filepath.Join(s.Dir, "admin.kubeconfig")
	return writeKubeconfig(s.Kubeconfig, s.URL, s.CAFile, AdminUser, &clientcmdapi.AuthInfo{Token: s.AdminToken})
}

// waitReady polls /readyz until it answers 200, the process exits, or
// ReadyTimeout passes.
func (s *APIServer) waitReady(exited <-chan struct{}) error {
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.Cert)
	hc := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer hc.CloseIdleConnections()
	return poll.Until(context.Background(), "kube-apiserver to be ready", 250*time.Millisecond, s.Options.ReadyTimeout, func(ctx context.Context) error {
		select {
		case <-exited:
			return poll.Stop(errors.New("kube-apiserver exited"))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz?verbose", nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d: %s", resp.StatusCode, failedChecks(body.String()))
		}
		return nil
	})
}

// failedChecks keeps the failing lines of a verbose /readyz answer.
func failedChecks(body string) string {
	var failed []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "[-]") {
			failed = append(failed, l)
		}
	}
	if len(failed) == 0 {
		return tail(body, 3)
	}
	return strings.Join(failed, "; ")
}

// Stop stops kube-apiserver (SIGTERM, then SIGKILL after 10 seconds). It
// is safe to call more than once.
func (s *APIServer) Stop() {
	s.stop()
}

// LogTail returns the last n lines of kube-apiserver's log.
func (s *APIServer) LogTail(n int) string {
	return logTail(s.LogFile, n)
}

// KubeconfigFor writes a kubeconfig for user in groups, authenticated by a
// client certificate from the server's CA, and returns its path. Any user
// can be made at any time; RBAC decides what it may do.
func (s *APIServer) KubeconfigFor(user string, groups ...string) string {
	s.t.Helper()
	kp, err := pki.NewLeaf(s.ca, pki.ClientConfig(user, groups...), pki.ECDSAP256)
	if err != nil {
		s.t.Fatalf("client certificate for %s: %v", user, err)
	}
	certPEM, err := certutil.EncodeCertificates(kp.Cert)
	if err != nil {
		s.t.Fatal(err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(kp.Key)
	if err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(s.Dir, "user-"+fileSafe(user)+".kubeconfig")
	if err := writeKubeconfig(path, s.URL, s.CAFile, user, &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// KubeconfigForToken writes a kubeconfig for the TokenUser named user.
func (s *APIServer) KubeconfigForToken(user string) string {
	s.t.Helper()
	for _, u := range s.Options.Users {
		if u.Name == user {
			path := filepath.Join(s.Dir, "token-"+fileSafe(user)+".kubeconfig")
			if err := writeKubeconfig(path, s.URL, s.CAFile, user, &clientcmdapi.AuthInfo{Token: u.Token}); err != nil {
				s.t.Fatal(err)
			}
			return path
		}
	}
	s.t.Fatalf("no token user %q: add it with kubetest.TokenUser", user)
	return ""
}

// RESTConfig returns a client configuration from a kubeconfig file.
func RESTConfig(t testing.TB, kubeconfig string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", kubeconfig, err)
	}
	return cfg
}

// Kubectl runs the real kubectl as the admin and returns its stdout; a
// non-zero exit is returned as an error carrying stderr.
func (s *APIServer) Kubectl(ctx context.Context, args ...string) (string, error) {
	return s.KubectlAs(ctx, s.Kubeconfig, args...)
}

// KubectlAs runs the real kubectl with kubeconfig.
func (s *APIServer) KubectlAs(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.Binaries.Kubectl(),
		append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + filepath.Join(s.Dir, "kubectl-cache")}, args...)...)
	// Nothing from the developer's environment chooses another cluster.
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func writeKubeconfig(path, server, caFile, user string, auth *clientcmdapi.AuthInfo) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: caFile}
	cfg.AuthInfos[user] = auth
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: user}
	cfg.CurrentContext = "kubetest"
	return clientcmd.WriteToFile(*cfg, path)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomToken() string {
	b := make([]byte, 16)
	if _, err := cryptorand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", b)
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
