// Package cluster is the read side of an etcd cluster: the member list,
// what every member reports about itself (version, database size, raft
// position, leadership, alarms), whether each can serve a linearizable
// read, its metrics, and waiting until members serve. One member that is
// down or hung is reported as such; it does not hide the others.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// Member is one cluster member as the member list describes it.
type Member struct {
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	Learner    bool     `json:"learner"`
	// Started is false for a member that was added but has not yet joined.
	Started bool `json:"started"`
	// Endpoint is the client URL used to reach it from here.
	Endpoint string `json:"endpoint"`
}

// FormatID prints a member ID the way etcd does: lowercase hex.
func FormatID(id uint64) string { return fmt.Sprintf("%x", id) }

// ListMembers returns the members sorted by name, each with the endpoint to
// reach it by. When the list cannot be read it probes every configured
// endpoint so the error names the cause (refused, hung, certificate).
func ListMembers(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) ([]Member, error) {
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.MemberList(rctx)
	if err != nil {
		if probeErrs := cfg.ProbeAll(ctx, cfg.Endpoints); len(probeErrs) > 0 {
			return nil, fmt.Errorf("cannot list members: %w", utilerrors.NewAggregate(probeErrs))
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("listing members via %s: no answer within %s: the cluster has no quorum, or an endpoint is a peer URL (port 2380) rather than a client URL", strings.Join(cfg.Endpoints, ","), cfg.CommandTimeout)
		}
		return nil, fmt.Errorf("listing members via %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return membersFrom(cfg, resp.Members), nil
}

func membersFrom(cfg *connect.Config, in []*etcdserverpb.Member) []Member {
	out := make([]Member, 0, len(in))
	for _, m := range in {
		out = append(out, Member{
			Name:       m.Name,
			ID:         FormatID(m.ID),
			PeerURLs:   m.PeerURLs,
			ClientURLs: m.ClientURLs,
			Learner:    m.IsLearner,
			Started:    m.Name != "" && len(m.ClientURLs) > 0,
			Endpoint:   cfg.MemberEndpoint(m.ClientURLs),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// MemberStatus is one member's answer to the Status call.
type MemberStatus struct {
	Member
	Version          string   `json:"version,omitempty"`
	StorageVersion   string   `json:"storageVersion,omitempty"`
	DBSize           int64    `json:"dbSize"`
	DBSizeInUse      int64    `json:"dbSizeInUse"`
	DBQuota          int64    `json:"dbQuota"`
	Leader           bool     `json:"leader"`
	RaftTerm         uint64   `json:"raftTerm"`
	RaftIndex        uint64   `json:"raftIndex"`
	RaftAppliedIndex uint64   `json:"raftAppliedIndex"`
	Errors           []string `json:"errors,omitempty"`
}

// Healthy reports whether the member answered and reported no error.
func (s MemberStatus) Healthy() bool { return len(s.Errors) == 0 }

// Collect lists the members and asks each for its status, in parallel.
func Collect(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) ([]MemberStatus, error) {
	members, err := ListMembers(ctx, cfg, cli)
	if err != nil {
		return nil, err
	}
	alarms := memberAlarms(ctx, cfg, cli)
	out := make([]MemberStatus, len(members))
	forEach(members, func(i int, m Member) {
		out[i] = memberStatus(ctx, cfg, cli, m)
		out[i].Errors = append(out[i].Errors, alarms[m.ID]...)
	})
	return out, nil
}

// ConnectAndCollect is Collect for a caller that holds no client: it opens
// one to cfg's endpoints for the call.
func ConnectAndCollect(ctx context.Context, cfg *connect.Config) ([]MemberStatus, error) {
	cli, err := cfg.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	return Collect(ctx, cfg, cli)
}

func memberStatus(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, m Member) MemberStatus {
	s := MemberStatus{Member: m}
	if !m.Started {
		s.Errors = []string{"not started: added to the cluster but has not joined yet"}
		return s
	}
	if _, err := cfg.Probe(ctx, m.Endpoint); err != nil {
		s.Errors = []string{reasonOf(err)}
		return s
	}
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.Status(rctx, m.Endpoint)
	if err != nil {
		s.Errors = []string{fmt.Sprintf("status: %v", err)}
		return s
	}
	s.Version = resp.Version
	s.StorageVersion = resp.StorageVersion
	s.DBSize = resp.DbSize
	s.DBSizeInUse = resp.DbSizeInUse
	s.DBQuota = resp.DbSizeQuota
	s.Leader = resp.Leader != 0 && resp.Leader == resp.Header.MemberId
	s.Learner = resp.IsLearner
	s.RaftTerm = resp.RaftTerm
	s.RaftIndex = resp.RaftIndex
	s.RaftAppliedIndex = resp.RaftAppliedIndex
	s.Errors = append(s.Errors, resp.Errors...)
	if resp.Leader == 0 {
		s.Errors = append(s.Errors, "no leader")
	}
	return s
}

// memberAlarms maps member IDs to their active alarms. It is best effort: a
// cluster without quorum cannot answer, and Status already says so.
func memberAlarms(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) map[string][]string {
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.AlarmList(rctx)
	out := map[string][]string{}
	if err != nil {
		return out
	}
	for _, a := range resp.Alarms {
		id := FormatID(a.MemberID)
		out[id] = append(out[id], "alarm: "+a.Alarm.String())
	}
	return out
}

// Health is one member's answer to a linearizable read.
type Health struct {
	Name     string        `json:"name"`
	ID       string        `json:"id"`
	Endpoint string        `json:"endpoint"`
	Healthy  bool          `json:"healthy"`
	Took     time.Duration `json:"took"`
	Error    string        `json:"error,omitempty"`
}

// CheckHealth probes each member and reads a key through it with quorum, as
// `etcdctl endpoint health` does, and fails members with an active alarm.
func CheckHealth(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) ([]Health, error) {
	members, err := ListMembers(ctx, cfg, cli)
	if err != nil {
		return nil, err
	}
	alarms := memberAlarms(ctx, cfg, cli)
	out := make([]Health, len(members))
	forEach(members, func(i int, m Member) {
		h := memberHealth(ctx, cfg, m)
		if h.Healthy && len(alarms[m.ID]) > 0 {
			h.Healthy = false
			h.Error = strings.Join(alarms[m.ID], ", ")
		}
		out[i] = h
	})
	return out, nil
}

func memberHealth(ctx context.Context, cfg *connect.Config, m Member) Health {
	h := Health{Name: m.Name, ID: m.ID, Endpoint: m.Endpoint}
	if !m.Started {
		h.Error = "not started: added to the cluster but has not joined yet"
		return h
	}
	start := time.Now()
	if _, err := cfg.Probe(ctx, m.Endpoint); err != nil {
		h.Took = time.Since(start)
		h.Error = reasonOf(err)
		return h
	}
	cli, err := cfg.ClientFor(m.Endpoint)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	defer cli.Close()
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	_, err = cli.Get(rctx, "health")
	h.Took = time.Since(start)
	// With auth enabled the read is refused, but a refusal needs a working
	// raft: the member is healthy.
	if err == nil || errors.Is(err, rpctypes.ErrPermissionDenied) {
		h.Healthy = true
		return h
	}
	if errors.Is(err, context.DeadlineExceeded) {
		h.Error = fmt.Sprintf("no quorum read within %s: the member has no leader or is overloaded", cfg.CommandTimeout)
		return h
	}
	h.Error = err.Error()
	return h
}

func reasonOf(err error) string {
	var ee *connect.EndpointError
	if errors.As(err, &ee) {
		return ee.Reason
	}
	return err.Error()
}

func forEach(members []Member, fn func(int, Member)) {
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, m)
		}()
	}
	wg.Wait()
}

// LeaderID asks the configured endpoints, in order, which member leads;
// it returns "" when none answers or the cluster has no leader.
func LeaderID(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) string {
	for _, ep := range cfg.Endpoints {
		rctx, cancel := cfg.WithCommandTimeout(ctx)
		resp, err := cli.Status(rctx, ep)
		cancel()
		if err == nil && resp.Leader != 0 {
			return FormatID(resp.Leader)
		}
	}
	return ""
}
