package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// ScrapeMetrics reads a member's Prometheus metrics from /metrics on its
// client URL, over the connection's TLS settings (the client certificate
// etcd asks for there).
func ScrapeMetrics(ctx context.Context, cfg *connect.Config, endpoint string) (map[string]*dto.MetricFamily, error) {
	transport := &http.Transport{
		TLSClientConfig:       cfg.TLS(),
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.CommandTimeout,
		DisableKeepAlives:     true,
	}
	defer transport.CloseIdleConnections()
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, endpoint+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: HTTP %d", endpoint, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s/metrics: %w", endpoint, err)
	}
	return families, nil
}

// FeatureStopGRPCServiceOnDefrag is the etcd feature gate (3.6 and later)
// that makes a member report NOT_SERVING on the gRPC health service while
// it defragments, so that health-checking clients go to other members.
const FeatureStopGRPCServiceOnDefrag = "StopGRPCServiceOnDefrag"

// FeatureEnabled reads etcd_server_feature_enabled{name=feature} from a
// member's metrics; known is false when the member does not export it
// (etcd before 3.6, or a feature this version lacks).
func FeatureEnabled(families map[string]*dto.MetricFamily, feature string) (enabled, known bool) {
	f := families["etcd_server_feature_enabled"]
	if f == nil {
		return false, false
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "name" && l.GetValue() == feature {
				return m.GetGauge().GetValue() == 1, true
			}
		}
	}
	return false, false
}

// ClusterVersion is the cluster version (MAJOR.MINOR) the member at
// endpoint reports in its etcd_cluster_version metric: the lowest release
// every member ran when the leader last decided it, which a member of an
// older release cannot join (etcd panics "invalid downgrade") unless a
// downgrade is enabled.
func ClusterVersion(ctx context.Context, cfg *connect.Config, endpoint string) (string, error) {
	families, err := ScrapeMetrics(ctx, cfg, endpoint)
	if err != nil {
		return "", err
	}
	if f := families["etcd_cluster_version"]; f != nil {
		for _, m := range f.GetMetric() {
			// A version the cluster had before stays, set to 0.
			if m.GetGauge().GetValue() != 1 {
				continue
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "cluster_version" && l.GetValue() != "" {
					return l.GetValue(), nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s/metrics reports no cluster version yet", endpoint)
}
