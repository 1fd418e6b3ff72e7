package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// Saver saves a snapshot of one member into a file or a directory.
type Saver struct {
	Config *connect.Config
	// Client reaches the cluster; it picks the member when Endpoint is
	// empty.
	Client *clientv3.Client
	// Endpoint is the client URL of the member to stream from; empty picks
	// the healthiest member (ChooseMember).
	Endpoint string
	// Path is the file to write, or the directory to write into when Dir.
	Path string
	Dir  bool
	// Compression is None, Gzip or Zstd.
	Compression string
	// Retain, with Dir, keeps this many snapshots in the directory and
	// removes older ones; 0 keeps all.
	Retain int
	// Overwrite allows replacing an existing Path.
	Overwrite bool
	// NoMetadata skips the PATH.json file written beside the snapshot.
	NoMetadata bool
	// Verify is how much of the saved file is checked: VerifyQuick (the
	// default when empty) or VerifyFull.
	Verify string
	// Progress, when set, is called once the member and size are known; the
	// Meter it returns receives a copy of every byte streamed.
	Progress func(member string, total int64) Meter
	// Log gets one line per step; nil discards them.
	Log io.Writer
	// Now gives the time of the snapshot; time.Now when nil.
	Now func() time.Time
}

// Result describes a saved snapshot; it is also the metadata file.
type Result struct {
	FileStatus
	// EtcdVersion is the version of the server that streamed the snapshot;
	// SnapshotVersion the version it declared for the snapshot (etcd 3.6
	// and later), the oldest that can restore it.
	EtcdVersion     string    `json:"etcdVersion"`
	SnapshotVersion string    `json:"snapshotVersion,omitempty"`
	Member          string    `json:"member"`
	MemberID        string    `json:"memberID"`
	Endpoint        string    `json:"endpoint"`
	ClusterID       string    `json:"clusterID"`
	Taken           time.Time `json:"taken"`
	// MetadataFile is the path of the metadata file, Pruned the snapshots
	// removed by retention.
	MetadataFile string   `json:"-"`
	Pruned       []string `json:"-"`
	// Verified says how the file was checked: VerifyQuick or VerifyFull.
	Verified string `json:"verified"`
	// Encryption names how the stored bytes are encrypted ("age"), empty
	// when they are not; Recipients are the public keys that can read
	// them.
	Encryption string   `json:"encryption,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
}

// How much of a saved snapshot is checked (--verify).
const (
	// VerifyQuick checks every byte the member sent against the sha256
	// trailer while it streams, then the database header and size, the
	// newest revision, and the storage version; the member counts the
	// live keys at that revision. It costs no second pass over the file,
	// so a save is as fast as etcdctl's.
	VerifyQuick = "quick"
	// VerifyFull also walks the whole database once written: bbolt's
	// integrity check of every page, etcdutl's hash, and the live keys
	// counted from the file itself. About 2 s of CPU per GiB.
	VerifyFull = "full"
)

// Verifications lists the accepted --verify values.
var Verifications = []string{VerifyQuick, VerifyFull}

// Meter follows a stream: it receives a copy of every byte, then Done with
// whether the stream completed.
type Meter interface {
	io.Writer
	Done(complete bool)
}

// source is the member a snapshot streams from.
type source struct {
	name, id, endpoint string
	dbSize             int64
}

// Save streams a snapshot into PATH.part (a hidden name in a directory),
// checks the sha256 trailer and the database, compresses it when asked,
// syncs it to disk and only then renames it into place. On any failure,
// an interrupted context included, the partial file is removed: no file
// that looks complete is left behind.
func (s *Saver) Save(ctx context.Context) (*Result, error) {
	taken, err := s.begin()
	if err != nil {
		return nil, err
	}
	if !s.Dir && !s.Overwrite {
		if _, err := os.Stat(s.Path); err == nil {
			return nil, fmt.Errorf("%s already exists: choose another name, pass --overwrite, or save into a directory", s.Path)
		}
	}
	src, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	s.logf("saving a snapshot of %s (%s), database %s", src.name, src.endpoint, output.Bytes(src.dbSize))

	base := s.Path
	if s.Dir {
		// The process ID keeps two saves started in the same second apart.
		base = filepath.Join(s.Path, fmt.Sprintf("etcd-snapshot-%s-%d", taken.Format(timeLayout), os.Getpid()))
	}
	part := base + ".part"
	rawPart := part
	if s.Compression != None {
		rawPart = base + ".download.part"
	}
	// Whatever happens from here, no .part file outlives this call.
	defer os.Remove(rawPart)
	defer os.Remove(part)

	cli, err := s.Config.ClientFor(src.endpoint)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	res := &Result{Member: src.name, MemberID: src.id, Endpoint: src.endpoint, Taken: taken, Verified: s.verify()}
	st, err := s.download(ctx, cli, src, rawPart, res)
	if err != nil {
		return nil, err
	}
	// The disk writes the file while the database is checked from the page
	// cache. A download that is compressed next is read back and removed:
	// only the file that keeps the snapshot is synced.
	synced := make(chan error, 1)
	if s.Compression == None {
		go func() { synced <- syncFile(rawPart) }()
	} else {
		synced <- nil
	}
	checkErr := s.check(ctx, cli, rawPart, st)
	if err := <-synced; err != nil {
		return nil, fmt.Errorf("syncing %s: %w", rawPart, err)
	}
	if checkErr != nil {
		return nil, fmt.Errorf("checking the snapshot from %s: %w", src.name, checkErr)
	}
	if s.Compression != None {
		if err := compressFile(rawPart, part, s.Compression, st); err != nil {
			return nil, err
		}
	}
	final := s.Path
	if s.Dir {
		final = filepath.Join(s.Path, FileName(taken, st.Revision, s.Compression))
	}
	st.Path = final
	res.FileStatus = *st
	if err := os.Rename(part, final); err != nil {
		return nil, fmt.Errorf("renaming %s to %s: %w", part, final, err)
	}
	if err := fileutil.SyncDir(filepath.Dir(final)); err != nil {
		return nil, err
	}
	if !s.NoMetadata {
		res.MetadataFile = final + ".json"
		if err := writeJSON(res.MetadataFile, res); err != nil {
			return res, fmt.Errorf("the snapshot %s is saved, but its metadata file is not: %w", final, err)
		}
	}
	if s.Dir && s.Retain > 0 {
		pruned, err := Prune(s.Path, s.Retain)
		res.Pruned = pruned
		if err != nil {
			return res, fmt.Errorf("the snapshot %s is saved, but pruning old ones failed: %w", final, err)
		}
		for _, p := range pruned {
			s.logf("pruned %s (keeping the newest %d)", p, s.Retain)
		}
	}
	if s.Dir {
		stale, err := RemoveStaleParts(s.Path, taken)
		res.Pruned = append(res.Pruned, stale...)
		if err != nil {
			return res, fmt.Errorf("the snapshot %s is saved, but removing stale partial files failed: %w", final, err)
		}
	}
	return res, nil
}

// begin checks the compression and verification settings and returns the
// time the snapshot is taken.
func (s *Saver) begin() (time.Time, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	taken := now().UTC()
	if _, err := compressor(s.Compression, io.Discard); err != nil {
		return time.Time{}, err
	}
	if v := s.verify(); v != VerifyQuick && v != VerifyFull {
		return time.Time{}, fmt.Errorf("unknown verification %q: use %s", v, strings.Join(Verifications, " or "))
	}
	return taken, nil
}

func (s *Saver) verify() string {
	if s.Verify == "" {
		return VerifyQuick
	}
	return s.Verify
}

// check reads the database just saved at path into st, as deeply as
// --verify asks.
func (s *Saver) check(ctx context.Context, cli *clientv3.Client, path string, st *FileStatus) error {
	if s.verify() == VerifyFull {
		return inspect(path, path, st)
	}
	if err := peek(path, path, st); err != nil {
		return err
	}
	// The member that streamed the snapshot still knows the revision it was
	// taken at, unless a compaction has passed it since: then the file
	// itself is counted.
	n, err := s.countKeys(ctx, cli, st.Revision)
	if err == nil {
		st.TotalKeys = n
		return nil
	}
	if !errors.Is(err, rpctypes.ErrCompacted) {
		return err
	}
	ds, err := readDBStatus(path)
	if err != nil {
		return &CorruptError{Path: path, Reason: err.Error()}
	}
	st.TotalKeys = ds.TotalKeys
	return nil
}

// countKeys counts the live keys at revision rev through the member that
// streamed the snapshot taken there: a quick count that needs no pass over
// the database. Once a compaction has passed rev the error wraps
// rpctypes.ErrCompacted.
func (s *Saver) countKeys(ctx context.Context, cli *clientv3.Client, rev int64) (int, error) {
	ctx, cancel := s.Config.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly(), clientv3.WithRev(rev), clientv3.WithSerializable())
	if err != nil {
		return 0, fmt.Errorf("counting the keys at revision %d: %w", rev, err)
	}
	return int(resp.Count), nil
}

// download streams the snapshot into path and checks its sha256 trailer.
// It returns the status of what it wrote so far. The file is not synced
// yet.
func (s *Saver) download(ctx context.Context, cli *clientv3.Client, src source, path string, res *Result) (_ *FileStatus, err error) {
	resp, err := openStream(ctx, s.Config, cli, &src, res, "")
	if err != nil {
		return nil, err
	}
	defer resp.Snapshot.Close()

	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	th := newTrailerHash()
	// The hash, about a second of CPU per GiB, runs beside the stream.
	hashing := newBackgroundWriter(th)
	defer hashing.Close()
	sinks, done := s.meter([]io.Writer{bw, hashing}, src)
	defer func() { done(err == nil) }()
	n, err := io.Copy(io.MultiWriter(sinks...), resp.Snapshot)
	if err != nil {
		return nil, streamError(ctx, src, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := checkTrailer(hashing, th, src, n); err != nil {
		return nil, err
	}
	return &FileStatus{Path: path, FileSize: n, SHA256: hex.EncodeToString(th.fileSum()), HashCheck: HashOK}, nil
}

// meter adds the progress meter of the stream from src to sinks, when
// the caller wants one; done tells it how the stream ended.
func (s *Saver) meter(sinks []io.Writer, src source) (_ []io.Writer, done func(complete bool)) {
	if s.Progress == nil {
		return sinks, func(bool) {}
	}
	// The stream is the database plus the 32-byte trailer.
	p := s.Progress(src.name, src.dbSize+sha256.Size)
	return append(sinks, p), p.Done
}

// syncFile flushes a written file to disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openStream asks the member for its status, which gives the server
// version and a fresh size for the progress bar, and then starts its
// snapshot stream. statusSuffix ends the error of a failed status call.
// Closing the stream cancels it too, so that a caller that stops reading
// early does not leave the member sending.
func openStream(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, src *source, res *Result, statusSuffix string) (_ *clientv3.SnapshotResponse, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	rctx, rcancel := cfg.WithCommandTimeout(ctx)
	sresp, err := cli.Status(rctx, src.endpoint)
	rcancel()
	if err != nil {
		return nil, fmt.Errorf("status of %s (%s): %w%s", src.name, src.endpoint, err, statusSuffix)
	}
	res.EtcdVersion = sresp.Version
	res.ClusterID = cluster.FormatID(sresp.Header.ClusterId)
	src.dbSize = sresp.DbSize
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return nil, streamError(ctx, *src, err)
	}
	res.SnapshotVersion = resp.Version
	resp.Snapshot = cancelOnClose{resp.Snapshot, cancel}
	return resp, nil
}

// cancelOnClose is a stream whose Close also cancels the context it was
// opened under.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// checkTrailer waits for the hash beside the stream and checks the n bytes
// streamed from src against their sha256 trailer.
func checkTrailer(hashing *backgroundWriter, th *trailerHash, src source, n int64) error {
	hashing.Close()
	if err := th.check(); err != nil {
		return fmt.Errorf("the snapshot stream from %s (%d bytes) ended early or was damaged: %v; nothing was saved", src.name, n, err)
	}
	return nil
}

func streamError(ctx context.Context, src source, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("snapshot of %s interrupted (%v); nothing was saved", src.name, context.Cause(ctx))
	}
	return fmt.Errorf("streaming the snapshot from %s (%s): %w; nothing was saved", src.name, src.endpoint, err)
}

// compressFile compresses the plain database in from into to, syncs it, and
// records the compressed file's size and sha256 in st.
func compressFile(from, to, compression string, st *FileStatus) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", to, err)
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	h := sha256.New()
	cw, err := compressor(compression, io.MultiWriter(bw, h))
	if err != nil {
		return err
	}
	if _, err := io.Copy(cw, bufio.NewReaderSize(in, 1<<20)); err != nil {
		return fmt.Errorf("compressing into %s: %w", to, err)
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("compressing into %s: %w", to, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", to, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", to, err)
	}
	fi, err := out.Stat()
	if err != nil {
		return err
	}
	st.Compression = compression
	st.FileSize = fi.Size()
	st.SHA256 = hex.EncodeToString(h.Sum(nil))
	return out.Close()
}

// source finds the member to stream from and its database size.
func (s *Saver) source(ctx context.Context) (source, error) {
	if s.Endpoint != "" {
		return s.explicitSource(ctx)
	}
	statuses, err := cluster.Collect(ctx, s.Config, s.Client)
	if err != nil {
		return source{}, err
	}
	m, err := ChooseMember(statuses)
	if err != nil {
		return source{}, err
	}
	return source{name: m.Name, id: m.ID, endpoint: m.Endpoint, dbSize: m.DBSize}, nil
}

func (s *Saver) explicitSource(ctx context.Context) (source, error) {
	ep := s.Endpoint
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	// Through port-forward, a member's advertised URL leads to its tunnel.
	ep = s.Config.MemberEndpoint([]string{strings.TrimSuffix(ep, "/")})
	if _, err := s.Config.Probe(ctx, ep); err != nil {
		return source{}, err
	}
	cli, err := s.Config.ClientFor(ep)
	if err != nil {
		return source{}, err
	}
	defer cli.Close()
	rctx, cancel := s.Config.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.Status(rctx, ep)
	if err != nil {
		return source{}, fmt.Errorf("status of %s: %w", ep, err)
	}
	src := source{name: ep, id: cluster.FormatID(resp.Header.MemberId), endpoint: ep, dbSize: resp.DbSize}
	if ml, err := cli.MemberList(rctx); err == nil {
		for _, m := range ml.Members {
			if m.ID == resp.Header.MemberId && m.Name != "" {
				src.name = m.Name
			}
		}
	}
	return src, nil
}

// ChooseMember picks the member to take a snapshot from: one that answers
// without errors, a voter rather than a learner, the most raft entries
// applied (the freshest data), a follower rather than the leader (which
// has the most work already), then by name. It fails when no member is
// healthy, naming why each is not.
func ChooseMember(statuses []cluster.MemberStatus) (cluster.MemberStatus, error) {
	var ok []cluster.MemberStatus
	var why []string
	for _, s := range statuses {
		if s.Healthy() && s.Endpoint != "" {
			ok = append(ok, s)
			continue
		}
		why = append(why, fmt.Sprintf("%s: %s", s.Name, strings.Join(s.Errors, "; ")))
	}
	if len(ok) == 0 {
		if len(why) == 0 {
			return cluster.MemberStatus{}, errors.New("the cluster lists no members")
		}
		return cluster.MemberStatus{}, fmt.Errorf("no healthy member to take a snapshot from: %s", strings.Join(why, ", "))
	}
	sort.SliceStable(ok, func(i, j int) bool {
		a, b := ok[i], ok[j]
		if a.Learner != b.Learner {
			return !a.Learner
		}
		if a.RaftAppliedIndex != b.RaftAppliedIndex {
			return a.RaftAppliedIndex > b.RaftAppliedIndex
		}
		if a.Leader != b.Leader {
			return !a.Leader
		}
		return a.Name < b.Name
	})
	return ok[0], nil
}

func (s *Saver) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, format+"\n", args...)
	}
}

// writeJSON writes v to path through a synced temporary file and a rename.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteFileAtomic(path, append(data, '\n'), 0o600, 0o755)
}
