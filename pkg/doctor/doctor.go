// Package doctor checks an etcd cluster for everything that commonly goes
// wrong and explains each finding in plain words with the command to run
// next. Gather asks the cluster; Diagnose is a pure function of what was
// gathered, so every rule is tested without a cluster.
package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcdflags"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// Severity of a finding.
type Severity string

// Severities, worst first.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	OK      Severity = "ok"
)

// Thresholds of the rules.
const (
	// QuotaWarn is the share of the quota above which a database is near
	// full.
	QuotaWarn = 0.8
	// FragmentedBytes of free pages make a defragmentation worth it, as in
	// defrag's default rule.
	FragmentedBytes = 200 << 20
	// RaftLag entries between the most and least advanced member is more
	// than a busy cluster shows in the time it takes to ask them all.
	RaftLag = 1000
	// ApplyLag entries committed but not applied: etcd refuses requests
	// beyond 5000.
	ApplyLag = 1000
	// CertWarn is how long before expiry a certificate is worth renewing.
	CertWarn = 30 * 24 * time.Hour
	// WALFsyncP99 and BackendCommitP99 are etcd's guidance for a disk fit
	// for it: the 99th percentile of WAL fsyncs under 10ms and of backend
	// commits under 25ms (etcd's hardware and tuning guides).
	WALFsyncP99      = 10 * time.Millisecond
	BackendCommitP99 = 25 * time.Millisecond
	// DiskSamples is how many operations make a 99th percentile mean
	// something (of fewer, it is the slowest one): the sample window's
	// are used when it saw that many, else the member's lifetime ones.
	DiskSamples = 100
	// LeaderChanges beyond a member's first election, at more than
	// LeaderChangesPerHour on average since it started, is flapping rather
	// than the odd restart or upgrade.
	LeaderChanges        = 3
	LeaderChangesPerHour = 1.0
	// SampleWindow is how long the doctor watches the members' counters
	// by default (the time between two reads of their metrics).
	SampleWindow = 3 * time.Second
)

// Finding is one thing the doctor found, with its evidence and what to do.
type Finding struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"`
	Member   string   `json:"member,omitempty"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
}

// ParkedManifest is a node's missing etcd manifest (Path) and the hidden
// file a restart moved it to (Parked, staticpod.Parked).
type ParkedManifest struct {
	Path   string `json:"path"`
	Parked string `json:"parked"`
}

// FindParkedManifest is the manifest at path if a restart left it
// parked; nil if not.
func FindParkedManifest(path string) *ParkedManifest {
	if parked := staticpod.Parked(path); parked != "" {
		return &ParkedManifest{Path: path, Parked: parked}
	}
	return nil
}

// Cert is a certificate seen on the way: a member's server certificate
// from the TLS handshake, the client certificate in use, or a file of the
// PKI directory.
type Cert struct {
	// Source says where it was seen, for the message.
	Source string `json:"source"`
	// Name is the kubeadm certificate name when known (etcd-server), for
	// the renew command.
	Name     string    `json:"name,omitempty"`
	Member   string    `json:"member,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"notAfter"`
}

// Facts is everything Diagnose looks at.
type Facts struct {
	Now time.Time `json:"now"`
	// ListError is set when the member list could not be read; nothing
	// else about the members is known then.
	ListError  string                 `json:"listError,omitempty"`
	Members    []cluster.MemberStatus `json:"members"`
	Health     []cluster.Health       `json:"health"`
	Alarms     []maintenance.Alarm    `json:"alarms"`
	AlarmError string                 `json:"alarmError,omitempty"`
	Certs      []Cert                 `json:"certs"`
	CertErrors []string               `json:"certErrors,omitempty"`
	// Consistency compares the members' hashes of the keyspace.
	Consistency      *maintenance.Consistency `json:"consistency,omitempty"`
	ConsistencyError string                   `json:"consistencyError,omitempty"`
	// Endpoints are the client URLs this command used.
	Endpoints []string `json:"endpoints"`
	// Manifest is this node's etcd static pod, when there is one.
	Manifest *Manifest `json:"manifest,omitempty"`
	// Leftovers are what interrupted recoveries and restores left beside
	// the manifest's data directory.
	Leftovers []datadir.Leftover `json:"leftovers,omitempty"`
	// ParkedManifest is set when an interrupted restart left this node's
	// manifest aside.
	ParkedManifest *ParkedManifest `json:"parkedManifest,omitempty"`
	// Metrics are each answering member's /metrics read at the start;
	// Resampled the same read again after the sample window (none when the
	// window is 0).
	Metrics   []Metrics `json:"metrics,omitempty"`
	Resampled []Metrics `json:"resampled,omitempty"`
	// WALFsyncP99 and BackendCommitP99 are the disk thresholds, the
	// package's defaults when zero.
	WALFsyncP99      time.Duration `json:"walFsyncP99,omitempty"`
	BackendCommitP99 time.Duration `json:"backendCommitP99,omitempty"`
	// RaftTiming is what `config set` gave each member of the flags that
	// must agree (etcdflags.MustAgree): flag, then member name, then
	// value. A member without a value was not given one.
	RaftTiming map[string]map[string]string `json:"raftTiming,omitempty"`
}

// Manifest is what the doctor reads from this node's etcd static pod.
type Manifest struct {
	Path string `json:"path"`
	// Image is the etcd container's image.
	Image string `json:"image,omitempty"`
	// InitialCluster is --initial-cluster as name=peerURL pairs.
	InitialCluster   []string `json:"initialCluster"`
	ListenClientURLs []string `json:"listenClientURLs"`
	ListenPeerURLs   []string `json:"listenPeerURLs"`
}

// GatherOptions say where the node-local files are.
type GatherOptions struct {
	// PKIDir, when it holds an etcd directory, adds the certificates there.
	PKIDir string
	// ManifestPath is this node's etcd static pod manifest; a missing file
	// is not an error (not every host running the doctor is a node).
	ManifestPath string
	Now          time.Time
	// SampleWindow is how long to watch the members' metrics: they are
	// read at the start and again once this has passed, so the doctor sees
	// leader changes and disk latency of now, not only since start.
	SampleWindow time.Duration
	// WALFsyncP99 and BackendCommitP99 override the disk thresholds.
	WALFsyncP99      time.Duration
	BackendCommitP99 time.Duration
}

// Report is the doctor's answer.
type Report struct {
	Findings []Finding `json:"findings"`
	Errors   int       `json:"errors"`
	Warnings int       `json:"warnings"`
}

// Gather asks the cluster what Diagnose needs. It does not fail on a
// cluster that cannot answer: that is a finding.
func Gather(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, o GatherOptions) *Facts {
	f := &Facts{Now: o.Now, Endpoints: cfg.Endpoints, WALFsyncP99: o.WALFsyncP99, BackendCommitP99: o.BackendCommitP99}
	statuses, err := cluster.Collect(ctx, cfg, cli)
	if err != nil {
		f.ListError = err.Error()
	} else {
		f.Members = statuses
		f.Metrics = scrapeAll(ctx, cfg, statuses)
		if hs, err := cluster.CheckHealth(ctx, cfg, cli); err == nil {
			f.Health = hs
		}
		if alarms, err := maintenance.ListAlarms(ctx, cfg, cli); err != nil {
			f.AlarmError = err.Error()
		} else {
			f.Alarms = alarms
		}
		if c, err := maintenance.CheckConsistency(ctx, cfg, cli); err != nil {
			f.ConsistencyError = err.Error()
		} else {
			f.Consistency = c
		}
		f.RaftTiming = gatherRaftTiming(ctx, cfg, cli)
	}
	f.Certs, f.CertErrors = gatherCerts(ctx, cfg, statuses, o.PKIDir, o.Now)
	if o.ManifestPath != "" {
		f.ParkedManifest = FindParkedManifest(o.ManifestPath)
		if m, err := staticpod.Read(o.ManifestPath); err == nil {
			f.Manifest = &Manifest{Path: o.ManifestPath, Image: m.Pod.Spec.Containers[m.Container].Image, InitialCluster: m.List("initial-cluster"),
				ListenClientURLs: m.List("listen-client-urls"), ListenPeerURLs: m.List("listen-peer-urls")}
			if dir, err := m.HostDataDir(); err == nil {
				f.Leftovers = datadir.Leftovers(dir)
			}
		}
	}
	if len(f.Metrics) > 0 && o.SampleWindow > 0 {
		// The other checks ran in the meantime: wait only for the rest.
		select {
		case <-time.After(time.Until(f.Metrics[0].At.Add(o.SampleWindow))):
			f.Resampled = scrapeAll(ctx, cfg, statuses)
		case <-ctx.Done():
		}
	}
	return f
}

// gatherRaftTiming reads config set's records of the flags that must
// agree; none when they cannot be read (a finding of its own elsewhere).
func gatherRaftTiming(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) map[string]map[string]string {
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.Get(rctx, etcdflags.AgreementPrefix, clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) == 0 {
		return nil
	}
	out := map[string]map[string]string{}
	for _, kv := range resp.Kvs {
		flag, member, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), etcdflags.AgreementPrefix), "/")
		if !ok {
			continue
		}
		if out[flag] == nil {
			out[flag] = map[string]string{}
		}
		out[flag][member] = string(kv.Value)
	}
	return out
}

func gatherCerts(ctx context.Context, cfg *connect.Config, members []cluster.MemberStatus, pkiDir string, now time.Time) ([]Cert, []string) {
	var certs []Cert
	var errs []string
	// The same certificate is often seen twice (a member on its loopback
	// and advertised URL, the client certificate that is also a PKI file):
	// report it once, as first seen.
	seenSerial := map[string]bool{}
	add := func(cert *x509.Certificate, c Cert) {
		key := cert.Issuer.String() + "/" + cert.SerialNumber.String()
		if seenSerial[key] {
			return
		}
		seenSerial[key] = true
		c.Subject, c.NotAfter = cert.Subject.String(), cert.NotAfter
		certs = append(certs, c)
	}
	type target struct{ member, endpoint string }
	var targets []target
	seen := map[string]bool{}
	for _, m := range members {
		if m.Endpoint != "" {
			targets = append(targets, target{memberName(m.Member), m.Endpoint})
			seen[m.Endpoint] = true
		}
	}
	for _, ep := range cfg.Endpoints {
		if !seen[ep] {
			targets = append(targets, target{"", ep})
		}
	}
	for _, t := range targets {
		if !strings.HasPrefix(t.endpoint, "https://") {
			continue
		}
		cert, err := serverCert(ctx, cfg, t.endpoint)
		if err != nil {
			continue // unreachable members are findings of their own
		}
		add(cert, Cert{Source: "server certificate of " + t.endpoint, Name: "etcd-server", Member: t.member})
	}
	if cfg.CertFile != "" {
		if cs, err := certutil.CertsFromFile(cfg.CertFile); err == nil {
			add(cs[0], Cert{Source: "client certificate " + cfg.CertFile, Name: kubeadmName(cfg.CertFile)})
		} else {
			errs = append(errs, fmt.Sprintf("client certificate %s: %v", cfg.CertFile, err))
		}
	}
	if pkiDir != "" {
		if _, err := os.Stat(filepath.Join(pkiDir, "etcd")); err == nil {
			for _, c := range pki.CheckExpiration(pkiDir, now) {
				if c.Missing {
					continue
				}
				cs, err := certutil.CertsFromFile(c.Path)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s: %v", c.Path, err))
					continue
				}
				add(cs[0], Cert{Source: c.Path, Name: c.Name})
			}
		}
	}
	return certs, errs
}

// serverCert reads the certificate a member presents. It only looks: the
// handshake is not verified here, as an expired certificate must still be
// seen to be reported, and nothing is sent over the connection.
func serverCert(ctx context.Context, cfg *connect.Config, endpoint string) (*x509.Certificate, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // inspection only, see above
	if base := cfg.TLS(); base != nil {
		tc = base.Clone()
		tc.InsecureSkipVerify = true
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: cfg.DialTimeout}, Config: tc}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	peers := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peers) == 0 {
		return nil, errors.New("no certificate presented")
	}
	return peers[0], nil
}

// kubeadmName names a certificate file after kubeadm's certificate names.
func kubeadmName(path string) string {
	switch filepath.Base(path) {
	case "healthcheck-client.crt":
		return "etcd-healthcheck-client"
	case "apiserver-etcd-client.crt":
		return "apiserver-etcd-client"
	case "server.crt":
		return "etcd-server"
	case "peer.crt":
		return "etcd-peer"
	}
	return ""
}

func memberName(m cluster.Member) string {
	if m.Name != "" {
		return m.Name
	}
	return m.ID
}

// NewReport sorts findings worst first (keeping the order of the checks
// within a severity) and counts them.
func NewReport(findings []Finding) *Report {
	rank := map[Severity]int{Error: 0, Warning: 1, OK: 2}
	sort.SliceStable(findings, func(i, j int) bool { return rank[findings[i].Severity] < rank[findings[j].Severity] })
	r := &Report{Findings: findings}
	for _, f := range findings {
		switch f.Severity {
		case Error:
			r.Errors++
		case Warning:
			r.Warnings++
		}
	}
	return r
}

// Find returns the finding of check with severity sev, nil when the
// report has none.
func (r *Report) Find(sev Severity, check string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].Severity == sev && r.Findings[i].Check == check {
			return &r.Findings[i]
		}
	}
	return nil
}

// Rows are the table rows of a report.
func (r *Report) Rows() [][]string {
	var rows [][]string
	for _, f := range r.Findings {
		rows = append(rows, []string{strings.ToUpper(string(f.Severity)), f.Check, orDash(f.Member), f.Message, orDash(f.Fix)})
	}
	return rows
}

// Headers of the table.
var Headers = []string{"SEVERITY", "CHECK", "MEMBER", "FINDING", "NEXT STEP"}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func bytes(n int64) string { return output.Bytes(n) }
