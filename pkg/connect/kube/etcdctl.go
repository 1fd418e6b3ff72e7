package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Etcdctl answers etcd client calls by running etcdctl in the members'
// etcd pods with the certificates those pods mount, for a user who has
// RBAC for pods/exec but no etcd client certificate. etcdctl prints JSON
// (-w json), in which keys and values are base64, so binary values such as
// Kubernetes' protobuf objects arrive intact. Only reads, status, member
// list, alarm list, hashkv and defragmentation are supported: the etcd
// image has no shell, cat or tar to stream a snapshot or a watch back.
type Etcdctl struct {
	Pods []EtcdPod
	Run  Runner
	// DialTimeout is etcdctl's --dial-timeout.
	DialTimeout time.Duration
	// CommandTimeout is etcdctl's --command-timeout for calls whose context
	// has no deadline.
	CommandTimeout time.Duration
}

// NeedsTunnelError is an operation etcdctl in the pod cannot do for us.
type NeedsTunnelError struct{ Op string }

func (e *NeedsTunnelError) Error() string {
	return e.Op + " needs a connection to etcd, which --via exec does not give (it runs etcdctl in the etcd pod for get, status, member list, alarm list, hashkv and defrag): use --via port-forward with the etcd client certificate (--cacert, --cert and --key, or --cert-secret NAMESPACE/NAME)"
}

func unsupported(op string) error { return &NeedsTunnelError{Op: op} }

// Client returns a client whose calls run etcdctl against endpoints (the
// members' advertised client URLs), in the pod of the first of them that
// runs.
func (e *Etcdctl) Client(endpoints ...string) *clientv3.Client {
	cli := clientv3.NewCtxClient(context.Background())
	target := &execTarget{e: e, endpoints: endpoints}
	cli.KV = clientv3.NewKVFromKVClient(&execKV{target}, nil)
	cli.Cluster = &execCluster{target}
	cli.Maintenance = &execMaintenance{target}
	cli.Lease = execLease{}
	cli.Watcher = execWatcher{}
	return cli
}

type execTarget struct {
	e         *Etcdctl
	endpoints []string
}

// pod picks where to run etcdctl for endpoints: the pod of the first that
// runs, else any running etcd pod (its etcdctl reaches the others over the
// node network).
func (t *execTarget) pod(endpoints []string) (EtcdPod, error) {
	for _, ep := range endpoints {
		if p, ok := ForURL(t.e.Pods, ep); ok && p.Running() {
			return p, nil
		}
	}
	var why []string
	for _, p := range t.e.Pods {
		if p.Running() {
			return p, nil
		}
		why = append(why, p.NotRunning())
	}
	return EtcdPod{}, fmt.Errorf("no etcd pod runs to exec etcdctl in: %s", strings.Join(why, "; "))
}

// run runs `etcdctl <global flags> -w json args...` and decodes its JSON
// output into out (when not nil).
func (t *execTarget) run(ctx context.Context, endpoints []string, out any, args ...string) error {
	if len(endpoints) == 0 {
		endpoints = t.endpoints
	}
	pod, err := t.pod(endpoints)
	if err != nil {
		return err
	}
	timeout := t.e.CommandTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Second)
	}
	dial := t.e.DialTimeout
	if dial <= 0 {
		dial = 2 * time.Second
	}
	argv := []string{"etcdctl",
		"--endpoints=" + strings.Join(endpoints, ","),
		"--cacert=" + pod.CACert, "--cert=" + pod.Cert, "--key=" + pod.Key,
		"--dial-timeout=" + dial.String(), "--command-timeout=" + timeout.String(),
		"--write-out=json",
	}
	argv = append(argv, args...)
	stdout, _, err := t.e.Run(ctx, pod, argv)
	if err != nil {
		return etcdctlError(ctx, pod, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		return fmt.Errorf("etcdctl in pod %s printed what is not its JSON output (%v): %.200q", pod, err, stdout)
	}
	return nil
}

// etcdctlError turns etcdctl's "Error: ..." line into an error. Server
// errors keep etcd's own words, so the client library maps them back to
// its typed errors (compacted, future revision, ...).
func etcdctlError(ctx context.Context, pod EtcdPod, err error) error {
	var exit *ExitError
	if !errors.As(err, &exit) {
		return err
	}
	msg := ""
	for _, line := range strings.Split(exit.Stderr, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Error: "); ok {
			msg = rest
		}
	}
	switch {
	case msg == "":
		if strings.Contains(exit.Stderr, "executable file not found") || exit.Code == 126 || exit.Code == 127 {
			return fmt.Errorf("etcdctl is not in the etcd container of pod %s (a custom etcd image?): use --via port-forward with client certificates", pod)
		}
		return err
	case strings.HasPrefix(msg, "etcdserver: "):
		return errors.New(msg)
	case strings.Contains(msg, "context deadline exceeded"):
		return fmt.Errorf("etcdctl in pod %s: %w", pod, context.DeadlineExceeded)
	}
	return fmt.Errorf("etcdctl in pod %s: %s", pod, msg)
}

// argOK refuses what cannot travel as a command-line argument.
func argOK(b []byte) error {
	if strings.ContainsRune(string(b), 0) {
		return fmt.Errorf("key %q holds a NUL byte, which cannot be passed to etcdctl in the pod: use --via port-forward", b)
	}
	return nil
}

type execKV struct{ t *execTarget }

var sortTargets = map[pb.RangeRequest_SortTarget]string{
	pb.RangeRequest_KEY: "KEY", pb.RangeRequest_VERSION: "VERSION", pb.RangeRequest_CREATE: "CREATE",
	pb.RangeRequest_MOD: "MODIFY", pb.RangeRequest_VALUE: "VALUE",
}

// GetArgs is the etcdctl get command line for a range request.
func GetArgs(in *pb.RangeRequest) ([]string, error) {
	if err := argOK(in.Key); err != nil {
		return nil, err
	}
	if err := argOK(in.RangeEnd); err != nil && string(in.RangeEnd) != "\x00" {
		return nil, err
	}
	args := []string{"get"}
	num := func(flag string, v int64) {
		if v != 0 {
			args = append(args, "--"+flag+"="+strconv.FormatInt(v, 10))
		}
	}
	num("limit", in.Limit)
	num("rev", in.Revision)
	num("min-mod-rev", in.MinModRevision)
	num("max-mod-rev", in.MaxModRevision)
	num("min-create-rev", in.MinCreateRevision)
	num("max-create-rev", in.MaxCreateRevision)
	if in.Serializable {
		args = append(args, "--consistency=s")
	}
	if in.KeysOnly {
		args = append(args, "--keys-only")
	}
	if in.CountOnly {
		args = append(args, "--count-only")
	}
	if in.SortOrder != pb.RangeRequest_NONE {
		args = append(args, "--order="+in.SortOrder.String(), "--sort-by="+sortTargets[in.SortTarget])
	}
	if string(in.RangeEnd) == "\x00" {
		args = append(args, "--from-key")
	}
	// "--" so that a key starting with a dash is not read as a flag.
	args = append(args, "--", string(in.Key))
	if len(in.RangeEnd) > 0 && string(in.RangeEnd) != "\x00" {
		args = append(args, string(in.RangeEnd))
	}
	return args, nil
}

func (kv *execKV) Range(ctx context.Context, in *pb.RangeRequest, _ ...grpc.CallOption) (*pb.RangeResponse, error) {
	args, err := GetArgs(in)
	if err != nil {
		return nil, err
	}
	resp := &pb.RangeResponse{}
	if err := kv.t.run(ctx, nil, resp, args...); err != nil {
		return nil, err
	}
	return resp, nil
}

// RangeStream answers as a server before etcd 3.7 does, so readers fall
// back to paged Get requests, which etcdctl serves.
func (kv *execKV) RangeStream(context.Context, *pb.RangeRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[pb.RangeStreamResponse], error) {
	return nil, status.Error(codes.Unimplemented, "etcdctl in the etcd pod has no streamed range")
}

func (kv *execKV) Put(context.Context, *pb.PutRequest, ...grpc.CallOption) (*pb.PutResponse, error) {
	return nil, unsupported("writing a key")
}

func (kv *execKV) DeleteRange(context.Context, *pb.DeleteRangeRequest, ...grpc.CallOption) (*pb.DeleteRangeResponse, error) {
	return nil, unsupported("deleting keys")
}

func (kv *execKV) Txn(context.Context, *pb.TxnRequest, ...grpc.CallOption) (*pb.TxnResponse, error) {
	return nil, unsupported("a transaction")
}

func (kv *execKV) Compact(context.Context, *pb.CompactionRequest, ...grpc.CallOption) (*pb.CompactionResponse, error) {
	return nil, unsupported("compaction")
}

type execCluster struct{ t *execTarget }

func (c *execCluster) MemberList(ctx context.Context, _ ...clientv3.OpOption) (*clientv3.MemberListResponse, error) {
	resp := &pb.MemberListResponse{}
	if err := c.t.run(ctx, nil, resp, "member", "list"); err != nil {
		return nil, err
	}
	return (*clientv3.MemberListResponse)(resp), nil
}

func (c *execCluster) MemberAdd(context.Context, []string) (*clientv3.MemberAddResponse, error) {
	return nil, unsupported("member add")
}

func (c *execCluster) MemberAddAsLearner(context.Context, []string) (*clientv3.MemberAddResponse, error) {
	return nil, unsupported("member add")
}

func (c *execCluster) MemberRemove(context.Context, uint64) (*clientv3.MemberRemoveResponse, error) {
	return nil, unsupported("member remove")
}

func (c *execCluster) MemberUpdate(context.Context, uint64, []string) (*clientv3.MemberUpdateResponse, error) {
	return nil, unsupported("member update")
}

func (c *execCluster) MemberPromote(context.Context, uint64) (*clientv3.MemberPromoteResponse, error) {
	return nil, unsupported("member promote")
}

type execMaintenance struct{ t *execTarget }

func (m *execMaintenance) AlarmList(ctx context.Context) (*clientv3.AlarmResponse, error) {
	resp := &pb.AlarmResponse{}
	if err := m.t.run(ctx, nil, resp, "alarm", "list"); err != nil {
		return nil, err
	}
	return (*clientv3.AlarmResponse)(resp), nil
}

func (m *execMaintenance) AlarmDisarm(context.Context, *clientv3.AlarmMember) (*clientv3.AlarmResponse, error) {
	return nil, unsupported("alarm disarm")
}

func (m *execMaintenance) Defragment(ctx context.Context, endpoint string) (*clientv3.DefragmentResponse, error) {
	// etcdctl prints no JSON for defrag: success is its exit code.
	if err := m.t.run(ctx, []string{endpoint}, nil, "defrag"); err != nil {
		return nil, err
	}
	return &clientv3.DefragmentResponse{}, nil
}

func (m *execMaintenance) Status(ctx context.Context, endpoint string) (*clientv3.StatusResponse, error) {
	var out []struct {
		Status *pb.StatusResponse `json:"Status"`
	}
	if err := m.t.run(ctx, []string{endpoint}, &out, "endpoint", "status"); err != nil {
		return nil, err
	}
	if len(out) != 1 || out[0].Status == nil {
		return nil, fmt.Errorf("etcdctl endpoint status for %s printed %d answers, want 1", endpoint, len(out))
	}
	return (*clientv3.StatusResponse)(out[0].Status), nil
}

func (m *execMaintenance) HashKV(ctx context.Context, endpoint string, rev int64) (*clientv3.HashKVResponse, error) {
	var out []struct {
		HashKV *pb.HashKVResponse `json:"HashKV"`
	}
	if err := m.t.run(ctx, []string{endpoint}, &out, "endpoint", "hashkv", "--rev="+strconv.FormatInt(rev, 10)); err != nil {
		return nil, err
	}
	if len(out) != 1 || out[0].HashKV == nil {
		return nil, fmt.Errorf("etcdctl endpoint hashkv for %s printed %d answers, want 1", endpoint, len(out))
	}
	return (*clientv3.HashKVResponse)(out[0].HashKV), nil
}

func (m *execMaintenance) SnapshotWithVersion(context.Context) (*clientv3.SnapshotResponse, error) {
	return nil, unsupported("a snapshot")
}

func (m *execMaintenance) Snapshot(context.Context) (io.ReadCloser, error) {
	return nil, unsupported("a snapshot")
}

func (m *execMaintenance) MoveLeader(context.Context, uint64) (*clientv3.MoveLeaderResponse, error) {
	return nil, unsupported("moving the leader")
}

func (m *execMaintenance) Downgrade(context.Context, clientv3.DowngradeAction, string) (*clientv3.DowngradeResponse, error) {
	return nil, unsupported("a downgrade")
}

type execLease struct{}

func (execLease) Grant(context.Context, int64) (*clientv3.LeaseGrantResponse, error) {
	return nil, unsupported("a lease")
}

func (execLease) Revoke(context.Context, clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	return nil, unsupported("a lease")
}

func (execLease) TimeToLive(context.Context, clientv3.LeaseID, ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	return nil, unsupported("a lease")
}

func (execLease) Leases(context.Context) (*clientv3.LeaseLeasesResponse, error) {
	return nil, unsupported("a lease")
}

func (execLease) KeepAlive(context.Context, clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	return nil, unsupported("a lease")
}

func (execLease) KeepAliveOnce(context.Context, clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	return nil, unsupported("a lease")
}

func (execLease) Close() error { return nil }

// execWatcher cannot watch; the commands that watch check for exec first
// (connect.Config.RequireConnection) and this closed channel is the
// backstop.
type execWatcher struct{}

func (execWatcher) Watch(context.Context, string, ...clientv3.OpOption) clientv3.WatchChan {
	ch := make(chan clientv3.WatchResponse)
	close(ch)
	return ch
}

func (execWatcher) RequestProgress(context.Context) error { return unsupported("a watch") }

func (execWatcher) Close() error { return nil }
