package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/members"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// ClusterAccess says how to reach the existing members: the access the
// connection flags give. Empty certificate fields default to this node's
// etcd CA and healthcheck-client certificate.
type ClusterAccess = connect.Access

// AccessFromFlags takes the cluster access from the global connection
// flags (and ETCDCTL_ENDPOINTS); empty certificate paths mean this node's.
func AccessFromFlags(c *connect.Flags) ClusterAccess {
	a := c.Access
	if len(a.Endpoints) == 0 && c.Getenv != nil {
		if env := c.Getenv(connect.EnvEndpoints); env != "" {
			a.Endpoints = strings.Split(env, ",")
		}
	}
	return a
}

// Config resolves the access into a connection configuration.
func (n *Node) clusterConfig(a ClusterAccess) (*connect.Config, error) {
	etcdDir := filepath.Join(n.PKIDir, "etcd")
	ca, cert, key := a.CACert, a.Cert, a.Key
	if ca == "" {
		ca = filepath.Join(etcdDir, "ca.crt")
	}
	if cert == "" && key == "" {
		cert, key = pki.Paths(n.PKIDir, pki.HealthcheckClientBaseName)
	}
	cfg, err := connect.NewConfig(a.Endpoints, ca, cert, key)
	if err != nil {
		return nil, err
	}
	if a.DialTimeout > 0 {
		cfg.DialTimeout = a.DialTimeout
	}
	if a.CommandTimeout > 0 {
		cfg.CommandTimeout = a.CommandTimeout
	}
	return cfg, nil
}

// JoinOptions shape a join.
type JoinOptions struct {
	ClusterAccess
	// Timeout bounds the wait for the new member to start, catch up and be
	// promoted. When it passes, the join is undone.
	Timeout time.Duration
	// PollInterval between checks; 500ms by default.
	PollInterval time.Duration
	// Replace removes the member this node replaces (one with its name,
	// or with its peer URL) even when that member still answers: the
	// operator says it is this node's old self.
	Replace bool
	// Force overrides the preflight of that removal.
	Force bool
}

// JoinResult says what a join did.
type JoinResult struct {
	MemberID string
	// Reused is true when a learner added by an earlier, interrupted join
	// was taken over instead of adding a second member.
	Reused bool
	// Replaced is the stale member removed first: this node's old self.
	Replaced string
	// CleanedUp lists what was undone after a failure.
	CleanedUp []string
}

// Join adds this node to the cluster as a learner, writes its manifest with
// every member and --initial-cluster-state=existing, waits until the member
// runs and has caught up with the leader, and promotes it to a voter.
//
// It can be run again after any failure: a learner for this node's peer
// URL, left by an interrupted join, is taken over instead of adding a
// second member, and a node that is already a voter only gets its manifest
// when it lacks one. When the wait times out (a learner that never starts,
// or never catches up) the learner is removed and the manifest and data
// deleted, so the cluster is as it was; the error lists what was undone.
func (n *Node) Join(ctx context.Context, opts JoinOptions, now time.Time) (*JoinResult, error) {
	if err := n.ValidateIdentity(); err != nil {
		return nil, err
	}
	if err := n.ValidateDirs(); err != nil {
		return nil, err
	}
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("--endpoints is required: client URLs of the existing members")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if err := n.EnsurePKI(PKIOptions{RequireCA: true}, now); err != nil {
		return nil, err
	}
	cfg, err := n.clusterConfig(opts.ClusterAccess)
	if err != nil {
		if n.DryRun {
			return nil, fmt.Errorf("%w (a dry run writes no certificates: pass --cert and --key of an etcd client certificate to reach the cluster)", err)
		}
		return nil, err
	}
	// Fail fast, and say why, when no endpoint can be reached.
	if probeErrs := cfg.ProbeAll(ctx, cfg.Endpoints); len(probeErrs) == len(cfg.Endpoints) {
		return nil, fmt.Errorf("cannot reach the cluster: %w", utilerrors.NewAggregate(probeErrs))
	}
	cli, err := cfg.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	spec := n.Spec()
	peerURL := spec.PeerURL()
	members, err := memberList(ctx, cfg, cli)
	if err != nil {
		return nil, err
	}
	res := &JoinResult{}
	self := findMember(members, peerURL)
	stale, why, err := n.staleMember(members, self, peerURL, opts.Replace)
	if err != nil {
		return nil, err
	}
	if stale != nil {
		if entries, err := dirEntries(n.DataDir); err != nil {
			return nil, err
		} else if len(entries) > 0 {
			return nil, fmt.Errorf("data directory %s is not empty: it holds the data of member %s's old self or another etcd; run 'kubectl etcd reset' first, then join again to replace it", n.DataDir, cluster.FormatID(stale.ID))
		}
		if err := n.removeStale(ctx, cfg, cli, stale, why, opts); err != nil {
			return nil, err
		}
		res.Replaced = cluster.FormatID(stale.ID)
		if n.DryRun {
			members = withoutMember(members, stale.ID)
		} else if members, err = memberList(ctx, cfg, cli); err != nil {
			return res, err
		}
		if self != nil && self.ID == stale.ID {
			self = nil
		}
	}
	for _, m := range members {
		if m.Name == "" && (self == nil || m.ID != self.ID) {
			return nil, fmt.Errorf("member %s (%s) was added but never started: finish or undo that join first, etcd refuses a second pending member", cluster.FormatID(m.ID), strings.Join(m.PeerURLs, ","))
		}
	}
	if self != nil && self.Name != "" && self.Name != n.Name {
		return nil, fmt.Errorf("peer URL %s belongs to member %s (%s), not %s: remove that member first if its node is gone", peerURL, self.Name, cluster.FormatID(self.ID), n.Name)
	}
	_, manifestErr := os.Stat(n.ManifestPath())
	haveManifest := manifestErr == nil

	switch {
	case self == nil:
	case !self.IsLearner:
		n.logf("[etcd] %s is already a voting member %s", n.Name, cluster.FormatID(self.ID))
		res.MemberID = cluster.FormatID(self.ID)
		if haveManifest {
			// Rewriting it would only restart a working member.
			return res, nil
		}
		return res, n.writeJoinManifest(spec, members, self.ID)
	default:
		// A learner for our peer URL: an earlier join added it and was
		// interrupted. Take it over rather than add a second member; if it
		// never manages to start, the timeout below removes it.
		state := "started"
		if self.Name == "" {
			state = "never started"
		}
		n.logf("[etcd] Resuming an earlier join: learner %s (%s) is already in the cluster", cluster.FormatID(self.ID), state)
		res.Reused = true
	}

	if n.DryRun {
		id := uint64(0)
		if self != nil {
			id = self.ID
		} else {
			members = append(members, &etcdserverpb.Member{PeerURLs: []string{peerURL}})
			n.logf("[dry-run] would add %s as a learner with peer URL %s", n.Name, peerURL)
		}
		return res, n.writeJoinManifest(spec, members, id)
	}

	if self == nil {
		entries, err := dirEntries(n.DataDir)
		if err != nil {
			return nil, err
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("data directory %s is not empty: it holds another etcd's data, or the data a recovery or restore moved etcd away from; clear it with 'kubectl etcd reset --data-dir %s' first", n.DataDir, n.DataDir)
		}
		resp, err := addLearner(ctx, cfg, cli, peerURL)
		if err != nil {
			return nil, fmt.Errorf("adding %s as a learner via %s: %w", n.Name, strings.Join(cfg.Endpoints, ","), err)
		}
		self, members = resp.Member, resp.Members
		n.logf("[etcd] Added %s as learner %s with peer URL %s", n.Name, cluster.FormatID(self.ID), peerURL)
	}
	res.MemberID = cluster.FormatID(self.ID)

	if err := n.prepareDataDir(); err != nil {
		return res, err
	}
	if err := n.writeJoinManifest(spec, members, self.ID); err != nil {
		return res, n.undoJoin(ctx, cfg, cli, self.ID, res, err)
	}
	if err := n.waitAndPromote(ctx, cfg, cli, self.ID, opts); err != nil {
		return res, n.undoJoin(ctx, cfg, cli, self.ID, res, err)
	}
	n.logf("[etcd] %s is a voting member", n.Name)
	return res, nil
}

// staleMember finds the member this node replaces: one with this node's
// name under other peer URLs (the node came back with a new address), or
// the started member with this node's peer URL while this node's data
// directory is empty (the node was rebuilt: the member cannot start again
// without its data, it would only crash on the leader's first message).
// With replace, the member with this peer URL is replaced whatever its
// data.
func (n *Node) staleMember(members []*etcdserverpb.Member, self *etcdserverpb.Member, peerURL string, replace bool) (*etcdserverpb.Member, string, error) {
	var stale *etcdserverpb.Member
	var why string
	for _, m := range members {
		if m.Name == n.Name && (self == nil || m.ID != self.ID) {
			if stale != nil {
				return nil, "", fmt.Errorf("two members are named %s (%s and %s): remove the stale one by ID with 'kubectl etcd member remove'", n.Name, cluster.FormatID(stale.ID), cluster.FormatID(m.ID))
			}
			stale = m
			why = fmt.Sprintf("it has this node's name but peer URLs %s, not %s: this node under its old address", strings.Join(m.PeerURLs, ","), peerURL)
		}
	}
	if stale != nil {
		if self != nil && self.Name != "" {
			return nil, "", fmt.Errorf("a member named %s already exists with peer URLs %s, and peer URL %s belongs to member %s (%s): remove one of them first", n.Name, strings.Join(stale.PeerURLs, ","), peerURL, self.Name, cluster.FormatID(self.ID))
		}
		return stale, why, nil
	}
	if self == nil || self.Name == "" {
		return nil, "", nil // nothing to replace, or an earlier join to resume
	}
	if self.Name != n.Name {
		return nil, "", nil // another node's member: refused by the caller
	}
	entries, err := dirEntries(n.DataDir)
	if err != nil {
		return nil, "", err
	}
	switch {
	case len(entries) == 0:
		return self, fmt.Sprintf("it has this node's peer URL %s but this node's data directory %s is empty: the member's data is gone", peerURL, n.DataDir), nil
	case replace:
		return self, fmt.Sprintf("it has this node's peer URL %s and --replace was given", peerURL), nil
	}
	return nil, "", nil
}

// removeStale removes the member this node replaces after the preflight
// of that removal, printed: the others must keep quorum without it. A
// member that still answers is only removed with --replace.
func (n *Node) removeStale(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, stale *etcdserverpb.Member, why string, opts JoinOptions) error {
	statuses, err := cluster.Collect(ctx, cfg, cli)
	if err != nil {
		return err
	}
	views := members.Views(statuses)
	id := cluster.FormatID(stale.ID)
	p := members.Check(views, members.Change{Kind: members.Remove, Target: id})
	p.Notes = append(p.Notes, fmt.Sprintf("%s replaces member %s: %s", n.Name, p.Target.Label(), why))
	if p.Target.Healthy && !opts.Replace {
		p.Refusals = append(p.Refusals, fmt.Sprintf("member %s still answers at %s: if it is this node's old self, pass --replace", p.Target.Label(), p.Target.Endpoint))
	}
	if n.Log != nil {
		p.Write(n.Log, opts.Force)
	}
	if p.Refused() && !opts.Force {
		return fmt.Errorf("not joining: %w", p.Err())
	}
	if n.DryRun {
		n.logf("[dry-run] would remove stale member %s, then add %s as a learner", p.Target.Label(), n.Name)
		return nil
	}
	if err := removeMember(ctx, cfg, cli, stale.ID); err != nil {
		return fmt.Errorf("removing stale member %s: %w", p.Target.Label(), err)
	}
	n.logf("[etcd] Removed stale member %s", p.Target.Label())
	return nil
}

func withoutMember(ms []*etcdserverpb.Member, id uint64) []*etcdserverpb.Member {
	var out []*etcdserverpb.Member
	for _, m := range ms {
		if m.ID != id {
			out = append(out, m)
		}
	}
	return out
}

// addLearner adds a learner, retrying what etcd refuses only for a while:
// "unhealthy cluster" while a peer has been connected for less than five
// seconds (right after another join), and "member not found" because etcd
// derives member IDs from the peer URLs and the current second, so
// re-adding a URL removed within the same second collides with the
// removed ID.
func addLearner(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, peerURL string) (*clientv3.MemberAddResponse, error) {
	var added *clientv3.MemberAddResponse
	err := poll.Until(ctx, "etcd to accept the learner", 500*time.Millisecond, unhealthyRetry, func(ctx context.Context) error {
		actx, cancel := cfg.WithCommandTimeout(ctx)
		resp, err := cli.MemberAddAsLearner(actx, []string{peerURL})
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) && !errors.Is(err, rpctypes.ErrUnhealthy) {
			return poll.Stop(err)
		}
		added = resp
		return err
	})
	return added, poll.Last(err)
}

// writeJoinManifest writes the manifest listing every member, this one
// (id) under this node's name.
func (n *Node) writeJoinManifest(spec staticpod.EtcdPodSpec, members []*etcdserverpb.Member, id uint64) error {
	var initial []staticpod.InitialMember
	for _, m := range members {
		name := m.Name
		if m.ID == id || (id == 0 && name == "") {
			name = n.Name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, staticpod.InitialMember{Name: name, PeerURL: u})
		}
	}
	spec.InitialCluster = initial
	spec.ClusterState = staticpod.ClusterStateExisting
	f, err := n.manifestFile(spec)
	if err != nil {
		return err
	}
	if existing, err := os.ReadFile(f.Path); err == nil && bytes.Equal(existing, f.Data) {
		return nil
	}
	if err := n.apply([]File{f}); err != nil {
		return err
	}
	if !n.DryRun {
		n.logf("[etcd] Wrote static pod manifest %s with %d members, --initial-cluster-state=existing", f.Path, len(members))
	}
	return nil
}

// waitAndPromote waits until the learner has started and promotes it,
// retrying while etcd says it has not caught up with the leader.
func (n *Node) waitAndPromote(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, id uint64, opts JoinOptions) error {
	hexID := cluster.FormatID(id)
	said := map[string]bool{}
	say := func(msg string) {
		if !said[msg] {
			said[msg] = true
			n.logf("[etcd] %s", msg)
		}
	}
	err := poll.Until(ctx, "learner "+hexID+" to be promoted", opts.PollInterval, opts.Timeout, func(wctx context.Context) error {
		members, err := memberList(wctx, cfg, cli)
		if err != nil {
			return err
		}
		m := findByID(members, id)
		switch {
		case m == nil:
			return poll.Stop(fmt.Errorf("learner %s disappeared from the member list: someone removed it", hexID))
		case !m.IsLearner:
			return nil
		case m.Name == "":
			say(fmt.Sprintf("Waiting for learner %s to start", hexID))
			return errors.New("the new member has not started: is the kubelet running the manifest, and can it reach the other members' peer URLs?")
		}
		pctx, pcancel := cfg.WithCommandTimeout(wctx)
		_, err = cli.MemberPromote(pctx, id)
		pcancel()
		switch {
		case err == nil:
			n.logf("[etcd] Promoted learner %s to a voting member", hexID)
			return nil
		case errors.Is(err, rpctypes.ErrMemberNotLearner):
			return nil
		case isLearnerNotReady(err):
			say(fmt.Sprintf("Learner %s started; waiting for it to catch up with the leader", hexID))
			return errors.New("the learner has not caught up with the leader: " + n.behind(wctx, cfg, cli, m))
		default:
			return fmt.Errorf("promoting: %w", err)
		}
	})
	var te *poll.TimeoutError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("learner %s was not promoted within %s: %v", hexID, opts.Timeout, te.Last)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("join interrupted: %w", err)
	}
	return err
}

// behind says how far the learner's applied index trails the leader's.
func (n *Node) behind(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, m *etcdserverpb.Member) string {
	ep := cfg.MemberEndpoint(m.ClientURLs)
	if ep == "" {
		return "its progress is unknown"
	}
	sctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	mine, err := cli.Status(sctx, ep)
	if err != nil {
		return "its progress is unknown"
	}
	for _, lep := range cfg.Endpoints {
		ls, err := cli.Status(sctx, lep)
		if err == nil && ls.Leader == ls.Header.MemberId {
			return fmt.Sprintf("applied index %d, leader at %d", mine.RaftAppliedIndex, ls.RaftIndex)
		}
	}
	return fmt.Sprintf("applied index %d", mine.RaftAppliedIndex)
}

func isLearnerNotReady(err error) bool {
	return errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || errors.Is(err, rpctypes.ErrGRPCLearnerNotReady) ||
		strings.Contains(err.Error(), "in sync with leader")
}

// undoJoin removes the learner, the manifest and the data so the cluster
// and the node are as before the join, and reports the cause with what it
// undid.
func (n *Node) undoJoin(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, id uint64, res *JoinResult, cause error) error {
	// Undo even when ctx was cancelled (Ctrl-C): leaving a learner behind
	// is what this is here to prevent.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var failed []string
	hexID := cluster.FormatID(id)
	if err := removeMember(uctx, cfg, cli, id); err != nil {
		failed = append(failed, fmt.Sprintf("removing learner %s: %v", hexID, err))
	} else {
		res.CleanedUp = append(res.CleanedUp, "removed learner "+hexID)
	}
	if err := os.Remove(n.ManifestPath()); err == nil {
		res.CleanedUp = append(res.CleanedUp, "deleted "+n.ManifestPath())
	} else if !errors.Is(err, os.ErrNotExist) {
		failed = append(failed, err.Error())
	}
	removed, err := clearDir(n.DataDir)
	if err != nil {
		failed = append(failed, err.Error())
	} else if len(removed) > 0 {
		res.CleanedUp = append(res.CleanedUp, "cleared "+n.DataDir)
	}
	msg := fmt.Sprintf("%v; undone: %s", cause, orNothing(res.CleanedUp))
	if len(failed) > 0 {
		msg += "; could not undo: " + strings.Join(failed, "; ")
	}
	return errors.New(msg)
}

func orNothing(list []string) string {
	if len(list) == 0 {
		return "nothing"
	}
	return strings.Join(list, ", ")
}

// removeMember removes a member, retrying for a while when etcd refuses
// because a peer connected too recently to count as healthy (etcd wants
// every remaining voter connected for five seconds).
func removeMember(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, id uint64) error {
	err := poll.Until(ctx, "etcd to accept the removal", 500*time.Millisecond, unhealthyRetry, func(ctx context.Context) error {
		rctx, cancel := cfg.WithCommandTimeout(ctx)
		_, err := cli.MemberRemove(rctx, id)
		cancel()
		switch {
		case err == nil || errors.Is(err, rpctypes.ErrMemberNotFound):
			return nil
		case errors.Is(err, rpctypes.ErrUnhealthy):
			return err
		default:
			return poll.Stop(err)
		}
	})
	if err != nil {
		return fmt.Errorf("removing member %s: %w", cluster.FormatID(id), poll.Last(err))
	}
	return nil
}

// unhealthyRetry bounds retries of a membership change etcd refuses as
// unsafe while peers (re)connect.
const unhealthyRetry = 20 * time.Second

func memberList(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) ([]*etcdserverpb.Member, error) {
	lctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.MemberList(lctx)
	if err != nil && ctx.Err() == nil {
		// Say why: refused, hung, a certificate from another CA, ...
		if probeErrs := cfg.ProbeAll(ctx, cfg.Endpoints); len(probeErrs) == len(cfg.Endpoints) {
			return nil, fmt.Errorf("cannot list members: %w", utilerrors.NewAggregate(probeErrs))
		}
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, fmt.Errorf("listing members via %s: no answer within %s: the cluster has no quorum (are most members down?) or the endpoints are wrong", strings.Join(cfg.Endpoints, ","), cfg.CommandTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("listing members via %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return resp.Members, nil
}

func findMember(members []*etcdserverpb.Member, peerURL string) *etcdserverpb.Member {
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if strings.TrimSuffix(u, "/") == peerURL {
				return m
			}
		}
	}
	return nil
}

func findByID(members []*etcdserverpb.Member, id uint64) *etcdserverpb.Member {
	for _, m := range members {
		if m.ID == id {
			return m
		}
	}
	return nil
}
