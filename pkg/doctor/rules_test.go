package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// member is a healthy voter of a three-member cluster; edit picks it apart.
func member(name string, edit func(*cluster.MemberStatus)) cluster.MemberStatus {
	s := cluster.MemberStatus{
		Member:  cluster.Member{Name: name, ID: "id-" + name, Started: true, Endpoint: "https://" + name + ":2379"},
		Version: "3.6.16", DBSize: 20 << 20, DBSizeInUse: 18 << 20, DBQuota: 2 << 30,
		RaftTerm: 3, RaftIndex: 5000, RaftAppliedIndex: 5000,
	}
	if edit != nil {
		edit(&s)
	}
	return s
}

func healthy() *Facts {
	return &Facts{Now: now, Members: []cluster.MemberStatus{
		member("a", func(s *cluster.MemberStatus) { s.Leader = true }),
		member("b", nil),
		member("c", nil),
	}}
}

func down(s *cluster.MemberStatus) {
	*s = cluster.MemberStatus{Member: s.Member, Errors: []string{"connection refused: etcd is not running there"}}
}

func TestDiagnose(t *testing.T) {
	type want struct {
		severity Severity
		check    string
		member   string
		message  string
		fix      string
	}
	tests := []struct {
		name   string
		facts  func() *Facts
		errors int
		warns  int
		want   []want
	}{
		{"healthy", healthy, 0, 0, []want{
			{OK, "leader", "a", "a leads (raft term 3)", ""},
			{OK, "quorum", "", "3 of 3 voters healthy", ""},
			{OK, "versions", "", "every member runs etcd 3.6.16", ""},
		}},
		{"member list unreadable", func() *Facts { return &Facts{Now: now, ListError: "no quorum"} }, 1, 0, []want{
			{Error, "members", "", "cannot read the member list: no quorum", "snapshot restore"},
		}},
		{"one member down", func() *Facts {
			f := healthy()
			down(&f.Members[2])
			return f
		}, 1, 1, []want{
			{Error, "reachable", "c", "c (https://c:2379) does not answer: connection refused", "member remove c"},
			{Warning, "quorum", "", "2 of 3 voters healthy: one more failure loses quorum (down: c)", ""},
		}},
		{"quorum lost and no leader", func() *Facts {
			f := healthy()
			down(&f.Members[0])
			down(&f.Members[1])
			f.Members[2].Errors = []string{"no leader"}
			return f
		}, 5, 0, []want{
			{Error, "quorum", "", "quorum lost: 0 of 3 voters healthy, 2 needed", ""},
			{Error, "leader", "", "no reachable member is the leader", ""},
			{Error, "health", "c", "member c reports: no leader", ""},
		}},
		{"answers but no quorum read", func() *Facts {
			f := healthy()
			f.Health = []cluster.Health{{ID: "id-b", Name: "b", Error: "no quorum read within 5s"}}
			return f
		}, 1, 1, []want{{Error, "health", "b", "does not serve a quorum read", ""}}},
		{"learner added, not started", func() *Facts {
			f := healthy()
			f.Members = append(f.Members, cluster.MemberStatus{Member: cluster.Member{ID: "id-d", Learner: true}, Errors: []string{"not started"}})
			return f
		}, 0, 1, []want{{Warning, "learners", "id-d", "added but has not started", "member remove id-d"}}},
		{"learner behind and learner in sync", func() *Facts {
			f := healthy()
			f.Members = append(f.Members,
				member("d", func(s *cluster.MemberStatus) { s.Learner = true; s.RaftIndex, s.RaftAppliedIndex = 100, 100 }),
				member("e", func(s *cluster.MemberStatus) { s.Learner = true }))
			return f
		}, 0, 2, []want{
			{Warning, "learners", "d", "catching up: 4900 raft entries behind", "member promote d"},
			{Warning, "learners", "e", "caught up but is not promoted", "kubectl etcd member promote e"},
		}},
		{"raft lag and apply lag", func() *Facts {
			f := healthy()
			f.Members[1].RaftIndex, f.Members[1].RaftAppliedIndex = 3000, 3000
			f.Members[2].RaftAppliedIndex = 3500
			return f
		}, 0, 2, []want{
			{Warning, "raft", "b", "b is 2000 raft entries behind a", ""},
			{Warning, "raft", "c", "1500 committed entries not yet applied", ""},
		}},
		{"raft timing changed on some members only", func() *Facts {
			f := healthy()
			f.RaftTiming = map[string]map[string]string{
				"heartbeat-interval": {"a": "200", "b": "200", "gone": "300"},
				"election-timeout":   {"a": "2000", "b": "2000", "c": "2000"},
			}
			return f
		}, 0, 1, []want{
			{Warning, "raft-timing", "", "members disagree on --heartbeat-interval, which every member must share: no --heartbeat-interval from config set (etcd's default unless the manifest sets it) on c; --heartbeat-interval=200 on a, b", "kubectl etcd config set heartbeat-interval=200 on the node of c"},
			{OK, "raft-timing", "", "every member was given --election-timeout=2000", ""},
		}},
		{"raft timing given to members since removed only", func() *Facts {
			f := healthy()
			f.RaftTiming = map[string]map[string]string{"heartbeat-interval": {"gone": "300"}}
			return f
		}, 0, 0, nil},
		{"alarms", func() *Facts {
			f := healthy()
			f.Alarms = []maintenance.Alarm{{Member: "a", Alarm: "NOSPACE"}, {Member: "b", Alarm: "CORRUPT"}}
			f.Members[0].Errors = []string{"alarm: NOSPACE"}
			return f
		}, 2, 0, []want{
			{Error, "alarms", "a", "NOSPACE alarm on a", "kubectl etcd alarm recover"},
			{Error, "alarms", "b", "CORRUPT alarm on b", "kubectl etcd check consistency"},
			{OK, "quorum", "", "3 of 3 voters healthy", ""},
		}},
		{"near quota, defrag helps", func() *Facts {
			f := healthy()
			f.Members[0].DBSize, f.Members[0].DBSizeInUse, f.Members[0].DBQuota = 900, 100, 1000
			return f
		}, 0, 1, []want{{Warning, "quota", "a", "90% of its quota", "kubectl etcd defrag"}}},
		{"near quota, in use", func() *Facts {
			f := healthy()
			f.Members[0].DBSize, f.Members[0].DBSizeInUse, f.Members[0].DBQuota = 900, 850, 1000
			return f
		}, 0, 1, []want{{Warning, "quota", "a", "90% of its quota", "kubectl etcd compact"}}},
		{"fragmented", func() *Facts {
			f := healthy()
			f.Members[1].DBSize, f.Members[1].DBSizeInUse = 500<<20, 100<<20
			return f
		}, 0, 1, []want{{Warning, "fragmentation", "b", "b holds 419 MB of free pages", "kubectl etcd defrag"}}},
		{"mixed versions", func() *Facts {
			f := healthy()
			f.Members[2].Version = "3.7.3"
			return f
		}, 0, 1, []want{{Warning, "versions", "", "two etcd minors, 3.6 and 3.7: a rolling upgrade or downgrade is under way or stopped halfway", "kubectl etcd upgrade --version 3.7.3 on each node still on 3.6"}}},
		{"patches of one minor", func() *Facts {
			f := healthy()
			f.Members[2].Version = "3.6.15"
			return f
		}, 0, 1, []want{{Warning, "versions", "", "different etcd versions: 3.6.15 on c; 3.6.16 on a, b", "finish the rolling upgrade"}}},
		{"two minors apart", func() *Facts {
			f := healthy()
			f.Members[0].Version = "3.5.26"
			f.Members[2].Version = "3.7.3"
			return f
		}, 1, 0, []want{{Error, "versions", "", "more than one minor apart, which etcd does not support: 3.5.26 on a; 3.6.16 on b; 3.7.3 on c", "one minor at a time"}}},
		{"3.5 before the safe release", func() *Facts {
			f := healthy()
			for i := range f.Members {
				f.Members[i].Version = "3.5.21"
			}
			return f
		}, 0, 1, []want{
			{OK, "versions", "", "every member runs etcd 3.5.21", ""},
			{Warning, "upgrade-trap", "", "a (3.5.21), b (3.5.21), c (3.5.21) run etcd 3.5 before 3.5.26", "kubectl etcd upgrade --version 3.5.26"},
		}},
		{"manifest image older than the storage version", func() *Facts {
			f := healthy()
			for i := range f.Members {
				f.Members[i].Version, f.Members[i].StorageVersion = "3.7.3", "3.7.0"
			}
			f.Manifest = &Manifest{Path: "etcd.yaml", Image: "registry.k8s.io/etcd:3.6.16-0"}
			return f
		}, 1, 0, []want{{Error, "image", "", "etcd.yaml runs etcd 3.6.16, older than the data's storage version 3.7.0", "kubectl etcd downgrade enable 3.6"}}},
		{"manifest image of the storage version's minor", func() *Facts {
			f := healthy()
			for i := range f.Members {
				f.Members[i].StorageVersion = "3.6.0"
			}
			f.Manifest = &Manifest{Path: "etcd.yaml", Image: "registry.k8s.io/etcd:3.6.16-0"}
			return f
		}, 0, 0, nil},
		{"certificates", func() *Facts {
			f := healthy()
			f.Certs = []Cert{
				{Source: "server certificate of https://a:2379", Name: "etcd-server", Member: "a", Subject: "CN=a", NotAfter: now.Add(-time.Hour)},
				{Source: "/pki/etcd/peer.crt", Name: "etcd-peer", Subject: "CN=b", NotAfter: now.Add(10 * 24 * time.Hour)},
				{Source: "/pki/etcd/ca.crt", Name: "etcd-ca", Subject: "CN=etcd-ca", NotAfter: now.Add(3650 * 24 * time.Hour)},
			}
			return f
		}, 1, 1, []want{
			{Error, "certificates", "a", "server certificate of https://a:2379 (CN=a) expired on 2026-11-25", "on a's node: kubectl etcd certs renew etcd-server --restart"},
			{Warning, "certificates", "", "expires in 10 days", "kubectl etcd certs renew etcd-peer --restart"},
		}},
		{"leftovers of a killed recovery, quorum lost", func() *Facts {
			return &Facts{Now: now, ListError: "no quorum", Leftovers: []datadir.Leftover{
				{Path: "/var/lib/etcd-recover-20261207T010000Z.work", Bytes: 3 << 30, By: "recover quorum (its copy of the data)"},
				{Path: "/var/lib/etcd", Bytes: 3 << 30, By: "the member ran on it before a recovery or restore moved it to /var/lib/etcd-recover-20261207T020000Z", Data: true},
			}}
		}, 1, 2, []want{
			{Warning, "leftovers", "", "/var/lib/etcd-recover-20261207T010000Z.work (3.2 GB) was left by an interrupted recover quorum (its copy of the data); etcd does not use it", "rm -rf /var/lib/etcd-recover-20261207T010000Z.work (unless that command is running now)"},
			{Warning, "unused-data", "", "/var/lib/etcd (3.2 GB) is an etcd data directory this member does not run on: the member ran on it before a recovery or restore moved it to /var/lib/etcd-recover-20261207T020000Z", "keep it while you may go back to it or look into it, then rm -rf /var/lib/etcd"},
		}},
		{"manifest parked by an interrupted restart, its member down", func() *Facts {
			f := healthy()
			down(&f.Members[2])
			f.ParkedManifest = &ParkedManifest{Path: "/etc/kubernetes/manifests/etcd.yaml", Parked: "/etc/kubernetes/manifests/.etcd.yaml.restarting"}
			return f
		}, 2, 1, []want{
			{Error, "manifest", "", "/etc/kubernetes/manifests/etcd.yaml is missing, and /etc/kubernetes/manifests/.etcd.yaml.restarting holds it: a kubectl etcd restart, upgrade or config set was stopped", "mv /etc/kubernetes/manifests/.etcd.yaml.restarting /etc/kubernetes/manifests/etcd.yaml"},
		}},
		{"hash mismatch", func() *Facts {
			f := healthy()
			f.Consistency = &maintenance.Consistency{Revision: 42, Differences: "a, b: hash 1a; c: hash 2b"}
			return f
		}, 1, 0, []want{{Error, "consistency", "", "different data at revision 42: a, b: hash 1a; c: hash 2b", "kubectl etcd check consistency"}}},
		{"hashes agree", func() *Facts {
			f := healthy()
			f.Consistency = &maintenance.Consistency{Revision: 42, Consistent: true}
			return f
		}, 0, 0, []want{{OK, "consistency", "", "same hash at revision 42", ""}}},
		{"manifest disagrees with the member list", func() *Facts {
			f := healthy()
			for i := range f.Members {
				f.Members[i].PeerURLs = []string{"https://" + f.Members[i].Name + ":2380"}
			}
			f.Manifest = &Manifest{Path: "etcd.yaml", InitialCluster: []string{"a=https://a:2380", "old=https://old:2380"}}
			return f
		}, 0, 1, []want{{Warning, "manifest", "", "lists old=https://old:2380, not in the member list and lacks b, c", "correct --initial-cluster"}}},
		{"manifest agrees", func() *Facts {
			f := healthy()
			f.Members = f.Members[:1]
			f.Members[0].PeerURLs = []string{"https://a:2380"}
			f.Manifest = &Manifest{Path: "etcd.yaml", InitialCluster: []string{"a=https://a:2380"}}
			return f
		}, 0, 0, []want{{OK, "manifest", "", "agrees with the member list", ""}}},
		{"plaintext", func() *Facts {
			f := healthy()
			f.Endpoints = []string{"http://a:2379"}
			f.Members[1].PeerURLs = []string{"http://b:2380"}
			f.Manifest = &Manifest{Path: "etcd.yaml", ListenClientURLs: []string{"https://127.0.0.1:2379", "http://10.0.0.1:2379"}}
			return f
		}, 0, 1, []want{{Warning, "plaintext", "", "without TLS on http://10.0.0.1:2379, http://a:2379, http://b:2380", "https"}}},
		{"certificates all valid", func() *Facts {
			f := healthy()
			f.Certs = []Cert{{Source: "x", NotAfter: now.Add(100 * 24 * time.Hour)}}
			return f
		}, 0, 0, []want{{OK, "certificates", "", "1 certificates seen, the first expires in 100 days", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Diagnose(tt.facts())
			dump := func() string {
				var b strings.Builder
				for _, row := range r.Rows() {
					b.WriteString(strings.Join(row, " | ") + "\n")
				}
				return b.String()
			}
			if r.Errors != tt.errors || r.Warnings != tt.warns {
				t.Errorf("%d errors, %d warnings; want %d, %d:\n%s", r.Errors, r.Warnings, tt.errors, tt.warns, dump())
			}
			for _, w := range tt.want {
				found := false
				for _, f := range r.Findings {
					if f.Severity == w.severity && f.Check == w.check && f.Member == w.member &&
						strings.Contains(f.Message, w.message) && strings.Contains(f.Fix, w.fix) {
						found = true
					}
				}
				if !found {
					t.Errorf("no %s %s finding on %q with %q and fix %q:\n%s", w.severity, w.check, w.member, w.message, w.fix, dump())
				}
			}
			for i := 1; i < len(r.Findings); i++ {
				if rank(r.Findings[i].Severity) < rank(r.Findings[i-1].Severity) {
					t.Errorf("findings not worst first:\n%s", dump())
				}
			}
		})
	}
}

func rank(s Severity) int { return map[Severity]int{Error: 0, Warning: 1, OK: 2}[s] }

// fsyncs is a histogram on etcd's disk buckets (1ms doubling to 8s) with
// n observations at each given latency.
func fsyncs(n uint64, latencies ...time.Duration) Histogram {
	h := Histogram{}
	for b := 0.001; b <= 8.192; b *= 2 {
		h.Bounds = append(h.Bounds, b)
		var c uint64
		for _, l := range latencies {
			if l.Seconds() <= b {
				c += n
			}
		}
		h.Counts = append(h.Counts, c)
	}
	h.Count = n * uint64(len(latencies))
	return h
}

func TestHistogramQuantile(t *testing.T) {
	h := Histogram{Bounds: []float64{0.001, 0.002, 0.004}, Counts: []uint64{50, 90, 100}, Count: 100}
	if got := h.Quantile(0.99); got != 3800*time.Microsecond {
		t.Errorf("p99 = %s, want 3.8ms (linear within the 2-4ms bucket)", got)
	}
	if got := h.Quantile(0.5); got != time.Millisecond {
		t.Errorf("p50 = %s, want 1ms", got)
	}
	over := Histogram{Bounds: []float64{0.001}, Counts: []uint64{1}, Count: 10}
	if got := over.Quantile(0.99); got != time.Millisecond {
		t.Errorf("p99 in +Inf = %s, want the highest bound 1ms", got)
	}
	later := fsyncs(10, time.Millisecond, 50*time.Millisecond)
	d, ok := later.Since(fsyncs(10, time.Millisecond))
	if !ok || d.Count != 10 || d.Quantile(0.99) <= 32*time.Millisecond {
		t.Errorf("since: %+v %v, want the 10 slow fsyncs", d, ok)
	}
	if _, ok := fsyncs(1, time.Millisecond).Since(later); ok {
		t.Error("since a later scrape (a restart) must not be used")
	}
}

func TestDiagnoseDiskAndLeaderChanges(t *testing.T) {
	start := now.Add(-10 * time.Minute)
	scrape := func(name string, at time.Time, changes float64, wal, commit Histogram) Metrics {
		return Metrics{Member: name, Endpoint: "https://" + name + ":2379", At: at, Started: start, LeaderChanges: changes, WALFsync: wal, BackendCommit: commit}
	}
	fast := fsyncs(100, time.Millisecond)
	slow := fsyncs(100, time.Millisecond, 40*time.Millisecond)
	later := now.Add(3 * time.Second)
	tests := []struct {
		name       string
		metrics    []Metrics
		resampled  []Metrics
		thresholds time.Duration
		want       []string // severity check member message, each a substring
	}{
		{"fast disks, one election", []Metrics{scrape("a", now, 1, fast, fast), scrape("b", now, 1, fast, fast)},
			[]Metrics{scrape("a", later, 1, fast, fast), scrape("b", later, 1, fast, fast)}, 0,
			[]string{"ok disk - p99 WAL fsync under 10ms and backend commit under 25ms (a WAL fsync 1ms", "ok leader-changes - the leader did not change during the 3s watched"}},
		{"slow WAL over the window", []Metrics{scrape("a", now, 1, fast, fast)},
			[]Metrics{scrape("a", later, 1, slow, fast)}, 0,
			[]string{"warning disk a slow disk on a: p99 WAL fsync is 63.7ms over the last 3s (100 fsyncs), above 10ms"}},
		{"slow commits since start, few writes in the window", []Metrics{scrape("b", now, 1, fast, fsyncs(150, 100*time.Millisecond))},
			[]Metrics{scrape("b", later, 1, fast, fsyncs(150, 100*time.Millisecond))}, 0,
			[]string{"warning disk b slow disk on b: p99 backend commit is 127.4ms since it started 10m ago (150 commits), above 25ms"}},
		{"too few writes to judge", []Metrics{scrape("b", now, 1, fsyncs(99, time.Second), fast)}, nil, 0,
			[]string{"ok disk - p99 WAL fsync under 10ms and backend commit under 25ms (b backend commit 1ms)"}},
		{"lowered threshold", []Metrics{scrape("a", now, 1, fast, fast)}, nil, time.Microsecond,
			[]string{"warning disk a slow disk on a: p99 WAL fsync is 1ms since it started 10m ago (100 fsyncs), above 1µs"}},
		{"leader changed in the window", []Metrics{scrape("a", now, 2, fast, fast), scrape("b", now, 1, fast, fast)},
			[]Metrics{scrape("a", later, 3, fast, fast), scrape("b", later, 2, fast, fast)}, 0,
			[]string{"warning leader-changes - the leader changed during the 3s the doctor watched (leader changes seen: a +1, b +1)"}},
		{"leader flapping since start", []Metrics{scrape("a", now, 6, fast, fast), scrape("b", now, 2, fast, fast)}, nil, 0,
			[]string{"warning leader-changes a a has seen 6 leader changes in the 10m since it started (30.0 an hour)"}},
		{"metrics unreadable", []Metrics{{Member: "c", Endpoint: "https://c:2379", Error: "HTTP 403"}}, nil, 0,
			[]string{"warning disk c cannot read the metrics of c: HTTP 403"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthy()
			f.Metrics, f.Resampled = tt.metrics, tt.resampled
			f.WALFsyncP99, f.BackendCommitP99 = tt.thresholds, tt.thresholds
			var lines []string
			for _, row := range Diagnose(f).Rows() {
				lines = append(lines, strings.ToLower(row[0])+" "+row[1]+" "+row[2]+" "+row[3]+" | "+row[4])
			}
			all := strings.Join(lines, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("no finding %q in:\n%s", w, all)
				}
			}
			if strings.Contains(all, "slow disk") && !strings.Contains(all, "fio") {
				t.Errorf("slow disk finding without the fix:\n%s", all)
			}
		})
	}
}
