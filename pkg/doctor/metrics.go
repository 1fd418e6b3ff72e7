package doctor

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// Metric names the disk and election checks read from each member's
// /metrics endpoint, which etcd serves on its client URLs.
const (
	metricWALFsync       = "etcd_disk_wal_fsync_duration_seconds"
	metricBackendCommit  = "etcd_disk_backend_commit_duration_seconds"
	metricLeaderChanges  = "etcd_server_leader_changes_seen_total"
	metricProcessStarted = "process_start_time_seconds"
)

// Histogram is a Prometheus histogram: cumulative counts per upper bound.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, ascending, without
	// +Inf; Counts[i] is how many observations were <= Bounds[i].
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	// Count is every observation, +Inf included.
	Count uint64 `json:"count"`
}

// Quantile estimates the q-quantile (0.99 for p99) as Prometheus's
// histogram_quantile does: linear within the bucket that holds it. An
// estimate in the +Inf bucket is the highest finite bound.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for i, upper := range h.Bounds {
		if float64(h.Counts[i]) >= rank {
			inBucket := h.Counts[i] - below
			if inBucket == 0 {
				return seconds(upper)
			}
			return seconds(lower + (upper-lower)*(rank-float64(below))/float64(inBucket))
		}
		lower, below = upper, h.Counts[i]
	}
	return seconds(h.Bounds[len(h.Bounds)-1])
}

// Since is what was observed after earlier, a scrape of the same member
// taken before; ok is false when the counters went back (a restart) or
// the buckets differ, and the difference means nothing.
func (h Histogram) Since(earlier Histogram) (Histogram, bool) {
	if len(h.Bounds) != len(earlier.Bounds) || h.Count < earlier.Count {
		return Histogram{}, false
	}
	d := Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Count: h.Count - earlier.Count}
	for i := range h.Counts {
		if h.Bounds[i] != earlier.Bounds[i] || h.Counts[i] < earlier.Counts[i] {
			return Histogram{}, false
		}
		d.Counts[i] = h.Counts[i] - earlier.Counts[i]
	}
	return d, true
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Metrics is what one scrape of a member's /metrics says about its disk
// and its elections.
type Metrics struct {
	Member   string    `json:"member"`
	Endpoint string    `json:"endpoint"`
	At       time.Time `json:"at"`
	// Error is why the scrape failed; nothing else is set then.
	Error         string    `json:"error,omitempty"`
	WALFsync      Histogram `json:"walFsync"`
	BackendCommit Histogram `json:"backendCommit"`
	// LeaderChanges counts the leaders this member has seen since it
	// started, its first election included.
	LeaderChanges float64 `json:"leaderChanges"`
	// Started is when the etcd process started (zero when not exported).
	Started time.Time `json:"started,omitzero"`
}

// scrapeAll reads the metrics of every member that answered Status, in
// parallel, sorted as the members are.
func scrapeAll(ctx context.Context, cfg *connect.Config, members []cluster.MemberStatus) []Metrics {
	var targets []cluster.MemberStatus
	for _, m := range members {
		if answered(m) && m.Endpoint != "" {
			targets = append(targets, m)
		}
	}
	out := make([]Metrics, len(targets))
	var wg sync.WaitGroup
	for i, m := range targets {
		wg.Go(func() {
			out[i] = scrape(ctx, cfg, m.Endpoint)
			out[i].Member = memberName(m.Member)
		})
	}
	wg.Wait()
	return out
}

// scrape reads what the checks need from one member's /metrics.
func scrape(ctx context.Context, cfg *connect.Config, endpoint string) Metrics {
	m := Metrics{Endpoint: endpoint, At: time.Now()}
	fail := func(err error) Metrics {
		m.Error = err.Error()
		return m
	}
	families, err := cluster.ScrapeMetrics(ctx, cfg, endpoint)
	if err != nil {
		return fail(err)
	}
	m.WALFsync = histogram(families[metricWALFsync])
	m.BackendCommit = histogram(families[metricBackendCommit])
	m.LeaderChanges = value(families[metricLeaderChanges])
	if s := value(families[metricProcessStarted]); s > 0 {
		sec, frac := math.Modf(s)
		m.Started = time.Unix(int64(sec), int64(frac*1e9))
	}
	return m
}

// histogram reads the first series of a histogram family (etcd's disk
// histograms have no labels).
func histogram(f *dto.MetricFamily) Histogram {
	if f == nil || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetHistogram() == nil {
		return Histogram{}
	}
	h := f.GetMetric()[0].GetHistogram()
	out := Histogram{Count: h.GetSampleCount()}
	buckets := h.GetBucket()
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].GetUpperBound() < buckets[j].GetUpperBound() })
	for _, b := range buckets {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		out.Bounds = append(out.Bounds, b.GetUpperBound())
		out.Counts = append(out.Counts, b.GetCumulativeCount())
	}
	return out
}

// value reads the first series of a counter, gauge or untyped family.
func value(f *dto.MetricFamily) float64 {
	if f == nil || len(f.GetMetric()) == 0 {
		return 0
	}
	m := f.GetMetric()[0]
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
