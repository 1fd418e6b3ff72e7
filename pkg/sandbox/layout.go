// Package sandbox lays out and runs small local etcd clusters with
// kubeadm-style TLS on 127.0.0.x addresses: for demos, for practice, and as
// the clusters the tests start. Each member has an etcd configuration file
// that both the embedded server (go.etcd.io/etcd/server/v3/embed) and a real
// etcd binary (--config-file) accept, so one layout serves both.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// StateFile is the file in a sandbox directory that describes the cluster.
const StateFile = "sandbox.json"

// Member is one member of a sandbox cluster.
type Member struct {
	Name       string `json:"name"`
	IP         string `json:"ip"`
	ClientURL  string `json:"clientURL"`
	PeerURL    string `json:"peerURL"`
	DataDir    string `json:"dataDir"`
	ConfigFile string `json:"configFile"`
	LogFile    string `json:"logFile"`
	// PID is the process running the member, 0 when none is.
	PID int `json:"pid,omitempty"`
}

// State describes a sandbox cluster; it is saved as StateFile.
type State struct {
	Dir        string   `json:"dir"`
	CACert     string   `json:"caCert"`
	ClientCert string   `json:"clientCert"`
	ClientKey  string   `json:"clientKey"`
	Members    []Member `json:"members"`
}

// Endpoints returns the client URLs of every member.
func (s *State) Endpoints() []string {
	var eps []string
	for _, m := range s.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// ConnectArgs returns the kubectl-etcd flags that reach this cluster.
func (s *State) ConnectArgs() []string {
	return []string{
		"--endpoints=" + strings.Join(s.Endpoints(), ","),
		"--cacert=" + s.CACert,
		"--cert=" + s.ClientCert,
		"--key=" + s.ClientKey,
	}
}

// Exports returns the ETCDCTL_* variables that reach this cluster, for
// etcdctl and kubectl-etcd alike.
func (s *State) Exports() []string {
	return []string{
		"ETCDCTL_ENDPOINTS=" + strings.Join(s.Endpoints(), ","),
		"ETCDCTL_CACERT=" + s.CACert,
		"ETCDCTL_CERT=" + s.ClientCert,
		"ETCDCTL_KEY=" + s.ClientKey,
	}
}

// Save writes the state to its directory.
func (s *State) Save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteFileAtomic(filepath.Join(s.Dir, StateFile), append(data, '\n'), 0o600, 0o700)
}

// Load reads the state of the sandbox in dir.
func Load(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no sandbox in %s: start one with 'kubectl etcd sandbox up --dir %s'", dir, dir)
	}
	if err != nil {
		return nil, err
	}
	s := &State{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", filepath.Join(dir, StateFile), err)
	}
	return s, nil
}

// Spec says what cluster Prepare lays out.
type Spec struct {
	Dir     string
	Members int
	// ClientPort is the first port tried for clients; the peer port is the
	// next one. Prepare moves up in steps of 10 until both are free on
	// every member's address.
	ClientPort int
	// Token is the initial cluster token; it defaults to "sandbox".
	Token string
	// KeyAlgorithm for the certificates; ECDSA-P256 by default, for speed.
	KeyAlgorithm pki.KeyAlgorithm
	// QuotaBackendBytes is each member's database quota; 0 keeps etcd's
	// default. A small quota lets tests and demos reach NOSPACE quickly.
	QuotaBackendBytes int64
	// FeatureGates is etcd's --feature-gates (3.6 and later), such as
	// "StopGRPCServiceOnDefrag=true"; empty keeps etcd's defaults.
	FeatureGates string
}

// MemberIP returns the loopback address of the i-th member: 127.0.0.1,
// 127.0.0.2, ... so each member looks like its own host.
func MemberIP(i int) string { return "127.0.0." + strconv.Itoa(i+1) }

// Prepare creates the certificates and per-member configuration files of a
// new cluster in spec.Dir and saves its state. Nothing is started.
func Prepare(spec Spec) (*State, error) {
	if spec.Members < 1 {
		return nil, fmt.Errorf("a cluster needs at least one member, got %d", spec.Members)
	}
	if spec.Token == "" {
		spec.Token = "sandbox"
	}
	if spec.KeyAlgorithm == "" {
		spec.KeyAlgorithm = pki.ECDSAP256
	}
	dir, err := filepath.Abs(spec.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var ips []string
	for i := range spec.Members {
		ips = append(ips, MemberIP(i))
	}
	port, err := FreePortPair(ips, spec.ClientPort)
	if err != nil {
		return nil, err
	}

	pkiDir := filepath.Join(dir, "pki")
	ca, err := pki.LoadOrCreateCA(pkiDir, spec.KeyAlgorithm)
	if err != nil {
		return nil, err
	}
	client, err := pki.NewLeaf(ca, pki.ClientConfig(pki.HealthcheckClientCommonName), spec.KeyAlgorithm)
	if err != nil {
		return nil, err
	}
	if err := client.Write(pkiDir, pki.HealthcheckClientBaseName); err != nil {
		return nil, err
	}
	caCert, _ := pki.Paths(pkiDir, pki.CABaseName)
	clientCert, clientKey := pki.Paths(pkiDir, pki.HealthcheckClientBaseName)
	s := &State{Dir: dir, CACert: caCert, ClientCert: clientCert, ClientKey: clientKey}

	var initial []string
	for i, ip := range ips {
		name := fmt.Sprintf("member-%d", i+1)
		m := Member{
			Name:      name,
			IP:        ip,
			ClientURL: fmt.Sprintf("https://%s:%d", ip, port),
			PeerURL:   fmt.Sprintf("https://%s:%d", ip, port+1),
		}
		initial = append(initial, name+"="+m.PeerURL)
		s.Members = append(s.Members, m)
	}
	for i := range s.Members {
		m := &s.Members[i]
		memberDir := filepath.Join(dir, m.Name)
		m.DataDir = filepath.Join(memberDir, "data")
		m.ConfigFile = filepath.Join(memberDir, "etcd.yaml")
		m.LogFile = filepath.Join(memberDir, "etcd.log")
		certDir := filepath.Join(memberDir, "pki")
		for _, base := range []string{pki.ServerBaseName, pki.PeerBaseName} {
			kp, err := pki.NewLeaf(ca, pki.ServerConfig(m.Name, net.ParseIP(m.IP)), spec.KeyAlgorithm)
			if err != nil {
				return nil, err
			}
			if err := kp.Write(certDir, base); err != nil {
				return nil, err
			}
		}
		if err := writeMemberConfig(*m, certDir, caCert, strings.Join(initial, ","), "new", spec); err != nil {
			return nil, err
		}
	}
	return s, s.Save()
}

// writeMemberConfig writes an etcd configuration file with the same
// settings kubeadm puts on the etcd command line.
func writeMemberConfig(m Member, certDir, caCert, initialCluster, clusterState string, spec Spec) error {
	serverCert, serverKey := pki.Paths(certDir, pki.ServerBaseName)
	peerCert, peerKey := pki.Paths(certDir, pki.PeerBaseName)
	cfg := map[string]any{
		"name":                        m.Name,
		"data-dir":                    m.DataDir,
		"listen-client-urls":          m.ClientURL,
		"advertise-client-urls":       m.ClientURL,
		"listen-peer-urls":            m.PeerURL,
		"initial-advertise-peer-urls": m.PeerURL,
		"initial-cluster":             initialCluster,
		"initial-cluster-state":       clusterState,
		"initial-cluster-token":       spec.Token,
		"snapshot-count":              10000,
		"logger":                      "zap",
		"log-level":                   "warn",
		"log-outputs":                 []string{"stderr"},
		"client-transport-security": map[string]any{
			"cert-file": serverCert, "key-file": serverKey,
			"client-cert-auth": true, "trusted-ca-file": caCert,
		},
		"peer-transport-security": map[string]any{
			"cert-file": peerCert, "key-file": peerKey,
			"client-cert-auth": true, "trusted-ca-file": caCert,
		},
	}
	if spec.QuotaBackendBytes > 0 {
		cfg["quota-backend-bytes"] = spec.QuotaBackendBytes
	}
	if spec.FeatureGates != "" {
		cfg["feature-gates"] = spec.FeatureGates
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(m.ConfigFile), 0o700); err != nil {
		return err
	}
	return os.WriteFile(m.ConfigFile, data, 0o600)
}

// AddMember lays out one more member, name, on the next loopback address
// (certificates, data and log paths), appends it to the state and saves it.
// Nothing is started and no configuration is written: the member's
// configuration depends on the membership once it has been added, which
// WriteJoinConfig takes.
func (s *State) AddMember(name string) (*Member, error) {
	for _, m := range s.Members {
		if m.Name == name {
			return nil, fmt.Errorf("the sandbox has a member named %s already", name)
		}
	}
	ip := MemberIP(len(s.Members))
	start := 2379
	if len(s.Members) > 0 {
		if u, err := url.Parse(s.Members[0].ClientURL); err == nil {
			start, _ = strconv.Atoi(u.Port())
		}
	}
	port, err := FreePortPair([]string{ip}, start)
	if err != nil {
		return nil, err
	}
	pkiDir := filepath.Join(s.Dir, "pki")
	ca, err := pki.Load(pkiDir, pki.CABaseName)
	if err != nil {
		return nil, fmt.Errorf("loading the sandbox CA: %w", err)
	}
	memberDir := filepath.Join(s.Dir, name)
	m := Member{
		Name:       name,
		IP:         ip,
		ClientURL:  fmt.Sprintf("https://%s:%d", ip, port),
		PeerURL:    fmt.Sprintf("https://%s:%d", ip, port+1),
		DataDir:    filepath.Join(memberDir, "data"),
		ConfigFile: filepath.Join(memberDir, "etcd.yaml"),
		LogFile:    filepath.Join(memberDir, "etcd.log"),
	}
	for _, base := range []string{pki.ServerBaseName, pki.PeerBaseName} {
		kp, err := pki.NewLeaf(ca, pki.ServerConfig(name, net.ParseIP(ip)), pki.ECDSAP256)
		if err != nil {
			return nil, err
		}
		if err := kp.Write(filepath.Join(memberDir, "pki"), base); err != nil {
			return nil, err
		}
	}
	s.Members = append(s.Members, m)
	return &s.Members[len(s.Members)-1], s.Save()
}

// WriteJoinConfig writes the configuration of member i to join a running
// cluster (initial-cluster-state existing) whose membership, with member i
// added, is initialCluster ("name=peerURL,...").
func (s *State) WriteJoinConfig(i int, initialCluster string) error {
	m := s.Members[i]
	return writeMemberConfig(m, filepath.Join(s.Dir, m.Name, "pki"), s.CACert, initialCluster, "existing", Spec{Token: "sandbox"})
}

// FreePortPair finds a port p, starting at start and moving up in steps of
// 10, such that p and p+1 can be bound on every address.
func FreePortPair(ips []string, start int) (int, error) {
	if start <= 0 {
		start = 2379
	}
	for p := start; p+1 < 65536 && p < start+2000; p += 10 {
		if portsFree(ips, p, p+1) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free client/peer port pair from %d on %s", start, strings.Join(ips, ","))
}

func portsFree(ips []string, ports ...int) bool {
	for _, ip := range ips {
		for _, p := range ports {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
			if err != nil {
				return false
			}
			l.Close()
		}
	}
	return true
}

// Config returns a connection to the whole sandbox cluster.
func (s *State) Config() (*connect.Config, error) {
	return connect.NewConfig(s.Endpoints(), s.CACert, s.ClientCert, s.ClientKey)
}
