package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3compactor"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
)

// DefaultQuotaBackendBytes is etcd's default --quota-backend-bytes, 2 GiB.
const DefaultQuotaBackendBytes = 2 << 30

// Drill is a restore drill: it proves a snapshot would restore without
// touching any cluster. The snapshot is fetched, checked, restored with
// etcdutl into a temporary directory, started in an embedded etcd on a
// loopback port, hashed (HashKV), and every key under the storage prefix
// is decoded (and decrypted with the encryption config), as kube-apiserver
// would have to after a real restore.
type Drill struct {
	Fetcher *Fetcher
	// Encryption is the apiserver's encryption config the restored
	// cluster will run with, nil for none.
	Encryption *encryption.Config
	// StoragePrefix is the apiserver's --etcd-prefix (default /registry).
	StoragePrefix string
	// EtcdVersion, when set ("3.6", "3.6.16"), is the etcd the restored
	// data will run on: data it cannot start fails the drill.
	EtcdVersion string
	// QuotaBackendBytes is the quota of the restored member (default 2 GiB).
	QuotaBackendBytes int64
	// TempDir holds the fetched copy and the restored data (os.TempDir).
	TempDir string
	// Log gets one line per step; nil discards them.
	Log io.Writer
}

// DrillReport is what a drill found. OK is false when anything would fail
// after a real restore; Failures say what.
type DrillReport struct {
	Source string `json:"source"`
	// AgeEncrypted says the snapshot itself was encrypted (and decrypted
	// with the identity).
	AgeEncrypted bool                `json:"ageEncrypted"`
	Snapshot     snapshot.FileStatus `json:"snapshot"`
	// NeedsEtcd is the oldest etcd minor version that starts the data;
	// TargetEtcd the one asked about (--etcd-version).
	NeedsEtcd  string `json:"needsEtcd,omitempty"`
	TargetEtcd string `json:"targetEtcd,omitempty"`
	// HashKV and Revision are what the restored member reports.
	HashKV   uint32 `json:"hashKV"`
	Revision int64  `json:"revision"`
	// Keys under the prefix, how many decoded, how many were encrypted
	// and decrypted.
	Prefix    string `json:"prefix"`
	Keys      int    `json:"keys"`
	Decoded   int    `json:"decoded"`
	Encrypted int    `json:"encryptedValues"`
	Decrypted int    `json:"decryptedValues"`
	// DatabaseSize against the quota.
	DatabaseSize int64 `json:"databaseSize"`
	Quota        int64 `json:"quota"`
	// Undecodable are the keys whose values fail, with why.
	Undecodable []KeyFailure `json:"undecodable,omitempty"`
	Failures    []string     `json:"failures,omitempty"`
	OK          bool         `json:"ok"`
}

// KeyFailure is a key the restored cluster could not serve.
type KeyFailure struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// ErrDrillFailed is returned (wrapped) with a report that is not OK.
var ErrDrillFailed = errors.New("the restore drill failed")

// Run runs the drill on src, a file or URL. An error without a report
// means the drill could not run at all (the snapshot is missing, corrupt,
// or cannot be decrypted); with a report, err wraps ErrDrillFailed.
func (d *Drill) Run(ctx context.Context, src string) (*DrillReport, error) {
	prefix := d.StoragePrefix
	if prefix == "" {
		prefix = "/registry"
	}
	quota := d.QuotaBackendBytes
	if quota == 0 {
		quota = DefaultQuotaBackendBytes
	}
	rep := &DrillReport{Source: src, Prefix: prefix, Quota: quota, TargetEtcd: d.EtcdVersion}

	d.logf("fetching %s", src)
	fetched, err := d.Fetcher.Fetch(ctx, src)
	if err != nil {
		return nil, err
	}
	defer fetched.Close()
	rep.AgeEncrypted = fetched.Encrypted

	d.logf("checking the snapshot (sha256 trailer, every page)")
	st, err := snapshot.Status(fetched.Path, d.TempDir)
	if err != nil {
		var ce *snapshot.CorruptError
		if errors.As(err, &ce) {
			ce.Path = src
		}
		return nil, err
	}
	if st.HashCheck != snapshot.HashOK {
		return nil, &snapshot.CorruptError{Path: src, Reason: "it has no sha256 trailer, so its integrity cannot be checked: a file saved by etcd has one (is it truncated?)"}
	}
	st.Path = src
	rep.Snapshot = *st
	rep.DatabaseSize = st.TotalSize
	rep.NeedsEtcd = snapshot.MinorVersion(st.StorageVersion)

	if d.EtcdVersion != "" {
		if older, err := olderMinor(d.EtcdVersion, rep.NeedsEtcd); err != nil {
			return nil, err
		} else if older {
			rep.Failures = append(rep.Failures, fmt.Sprintf("etcd %s will not start this data: it needs etcd %s or newer (storage version %s)", d.EtcdVersion, rep.NeedsEtcd, st.StorageVersion))
		}
	}
	if st.TotalSize >= quota {
		rep.Failures = append(rep.Failures, fmt.Sprintf("the database (%s) does not fit the quota of %s: the restored member would raise the NOSPACE alarm and refuse writes (raise --quota-backend-bytes, or defragment before the next save)", output.Bytes(st.TotalSize), output.Bytes(quota)))
	}

	work, err := os.MkdirTemp(d.TempDir, "kubectl-etcd-drill-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	peer, client, err := loopbackURLs()
	if err != nil {
		return nil, err
	}
	d.logf("restoring into a temporary data directory")
	r := &snapshot.Restorer{
		SnapshotPath: fetched.Path, DataDir: filepath.Join(work, "data"), Name: "drill",
		PeerURLs: []string{peer}, BumpRevision: snapshot.DefaultBumpRevision, MarkCompacted: true,
	}
	if _, err := r.Restore(); err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("etcdutl cannot restore it: %v", err))
		return rep, d.finish(rep)
	}
	d.logf("starting the restored data in an embedded etcd on %s", client)
	cli, stop, err := startEmbedded(ctx, r.DataDir, peer, client, quota)
	if err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("etcd does not start on the restored data: %v", err))
		return rep, d.finish(rep)
	}
	defer stop()
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	h, err := cli.HashKV(hctx, client, 0)
	cancel()
	if err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("HashKV on the restored member: %v", err))
		return rep, d.finish(rep)
	}
	rep.HashKV, rep.Revision = h.Hash, h.Header.Revision

	d.logf("decoding every key under %s", prefix)
	if err := d.decodeAll(ctx, cli, prefix, rep); err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("reading the keys under %s: %v", prefix, err))
	}
	if n := len(rep.Undecodable); n > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d of %d keys under %s cannot be read after a restore (listed above)", n, rep.Keys, prefix))
	}
	return rep, d.finish(rep)
}

func (d *Drill) finish(rep *DrillReport) error {
	rep.OK = len(rep.Failures) == 0
	if rep.OK {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrDrillFailed, strings.Join(rep.Failures, "; "))
}

// decodeAll pages through the prefix and decodes every value.
func (d *Drill) decodeAll(ctx context.Context, cli *clientv3.Client, prefix string, rep *DrillReport) error {
	dec := &storage.Decoder{Encryption: d.Encryption}
	start := prefix + "/"
	end := clientv3.GetPrefixRangeEnd(start)
	for {
		gctx, cancel := context.WithTimeout(ctx, time.Minute)
		resp, err := cli.Get(gctx, start, clientv3.WithRange(end), clientv3.WithLimit(500), clientv3.WithSerializable())
		cancel()
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			rep.Keys++
			encrypted := encryption.IsEncrypted(kv.Value)
			if encrypted {
				rep.Encrypted++
			}
			if _, err := dec.Decode(string(kv.Key), kv.Value, kv.ModRevision); err != nil {
				rep.Undecodable = append(rep.Undecodable, KeyFailure{Key: string(kv.Key), Reason: err.Error()})
				continue
			}
			rep.Decoded++
			if encrypted {
				rep.Decrypted++
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	sort.Slice(rep.Undecodable, func(i, j int) bool { return rep.Undecodable[i].Key < rep.Undecodable[j].Key })
	return nil
}

// startEmbedded runs etcd in this process on the restored data.
func startEmbedded(ctx context.Context, dataDir, peer, client string, quota int64) (*clientv3.Client, func(), error) {
	cfg := embed.NewConfig()
	cfg.Name = "drill"
	cfg.Dir = dataDir
	pu, _ := url.Parse(peer)
	cu, _ := url.Parse(client)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.InitialCluster = "drill=" + peer
	cfg.QuotaBackendBytes = quota
	cfg.AutoCompactionMode = v3compactor.ModePeriodic
	cfg.AutoCompactionRetention = "0"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, nil, err
	case <-time.After(2 * time.Minute):
		e.Close()
		return nil, nil, errors.New("not ready after 2 minutes")
	case <-ctx.Done():
		e.Close()
		return nil, nil, context.Cause(ctx)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.Close()
		return nil, nil, err
	}
	return cli, func() { cli.Close(); e.Close() }, nil
}

// loopbackURLs picks two free loopback ports for the drill's member.
func loopbackURLs() (peer, client string, err error) {
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1]), nil
}

// olderMinor reports whether etcd version target (3.6, v3.6.16) is older
// than the minor version needs (3.7); false when needs is empty (data of
// etcd before 3.6 records none).
func olderMinor(target, needs string) (bool, error) {
	if needs == "" {
		return false, nil
	}
	t, err := parseMinor(target)
	if err != nil {
		return false, fmt.Errorf("--etcd-version %q: %v", target, err)
	}
	n, err := parseMinor(needs)
	if err != nil {
		return false, err
	}
	return t[0] < n[0] || t[0] == n[0] && t[1] < n[1], nil
}

func parseMinor(v string) ([2]int, error) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return [2]int{}, errors.New("want a version such as 3.6 or 3.6.16")
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return [2]int{}, errors.New("want a version such as 3.6 or 3.6.16")
	}
	return [2]int{major, minor}, nil
}

func (d *Drill) logf(format string, args ...any) {
	if d.Log != nil {
		fmt.Fprintf(d.Log, format+"\n", args...)
	}
}
