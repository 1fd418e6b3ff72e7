// Package datadir reads what an etcd member left on disk (its WAL, raft
// snapshots and bbolt backend) without starting etcd and without writing a
// byte: the facts an operator needs when a member will not start. It reads
// through etcd's own wal, snap, schema and membership packages, so what it
// sees is what etcd will see at its next start.
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-semver/semver"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Tail says how the WAL ends.
type Tail string

// How a WAL can end.
const (
	// TailClean: every record decodes; etcd starts from it as it is.
	TailClean Tail = "clean"
	// TailTorn: the last file ends in a partly written record (a crash
	// mid-write). etcd repairs it at start: it keeps a .broken copy and
	// truncates the file at the last whole record.
	TailTorn Tail = "torn"
	// TailCorrupt: a record fails its checksum, or a torn record sits in a
	// file other than the last. etcd refuses to start ("failed to read WAL,
	// cannot be repaired").
	TailCorrupt Tail = "corrupt"
)

// WAL is what the write-ahead log says.
type WAL struct {
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
	// Records decoded before the end (or the damage).
	Records int  `json:"records"`
	Tail    Tail `json:"tail"`
	// TailFile and TailOffset say where decoding stopped, TailError why.
	TailFile   string `json:"tailFile,omitempty"`
	TailOffset int64  `json:"tailOffset,omitempty"`
	TailError  string `json:"tailError,omitempty"`
	// Term, Vote and Commit are the last raft hard state written.
	Term   uint64 `json:"term"`
	Vote   string `json:"vote,omitempty"`
	Commit uint64 `json:"commit"`
	// LastIndex is the index of the last entry in the WAL (it may be past
	// Commit: entries not yet known to be committed).
	LastIndex uint64 `json:"lastIndex"`
	// LastTerm is the term of the entry at LastIndex (of the snapshot
	// when no entry follows it): with LastIndex, what raft compares to
	// tell which of two logs is more up to date.
	LastTerm uint64 `json:"lastTerm"`
	// TailTerms are the terms of the entries past Commit, Commit+1 to
	// LastIndex in order: two logs that hold an entry of the same index
	// and term hold the same entries up to it (raft's log matching).
	TailTerms []uint64 `json:"-"`
	// MemberID and ClusterID come from the WAL's metadata.
	MemberID  string `json:"memberID,omitempty"`
	ClusterID string `json:"clusterID,omitempty"`
	// MinimalVersion is the oldest etcd that understands every entry.
	MinimalVersion string `json:"minimalVersion,omitempty"`
	// V2Entries counts the entries after the snapshot that etcd 3.5 wrote
	// as v2 requests, and LastV2Index is the newest of them. etcd 3.6
	// replays them; etcd 3.7 cannot decode them and panics at start
	// ("unmarshal should never fail"), so a member must have taken a raft
	// snapshot past them before it runs 3.7.
	V2Entries   int    `json:"v2Entries,omitempty"`
	LastV2Index uint64 `json:"lastV2Index,omitempty"`
	// Error is set when the WAL could not be read at all.
	Error string `json:"error,omitempty"`
}

// Snapshot is the newest raft snapshot etcd would load.
type Snapshot struct {
	File  string `json:"file,omitempty"`
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	Error string `json:"error,omitempty"`
}

// Member is one member as the WAL (raft) or the backend knows it.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// DB is what the bbolt backend (member/snap/db) says.
type DB struct {
	Path string `json:"path"`
	// Size is the file's size; InUse the bytes of pages in use.
	Size  int64 `json:"size"`
	InUse int64 `json:"inUse,omitempty"`
	// OpenError is set when bbolt cannot open the file (truncated,
	// not a database, locked by a running etcd).
	OpenError string `json:"openError,omitempty"`
	// Locked: a running etcd holds the file.
	Locked bool `json:"locked,omitempty"`
	// CheckErrors are bbolt's consistency check findings.
	CheckErrors []string `json:"checkErrors,omitempty"`
	// StorageVersion is the schema version etcd wrote (3.6 and later);
	// empty for a 3.5 database.
	StorageVersion  string `json:"storageVersion,omitempty"`
	ConsistentIndex uint64 `json:"consistentIndex"`
	Term            uint64 `json:"term"`
	// Members and Removed are the v3 store's members and members_removed
	// buckets.
	Members []Member `json:"members"`
	Removed []string `json:"removed,omitempty"`
}

// File is one file of the data directory, its mode and owner.
type File struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode"`
	UID  int         `json:"uid"`
	GID  int         `json:"gid"`
	Dir  bool        `json:"dir,omitempty"`
}

// Inspection is everything read from one data directory.
type Inspection struct {
	DataDir string `json:"dataDir"`
	// Error is set when the directory is not an etcd data directory.
	Error    string    `json:"error,omitempty"`
	WAL      *WAL      `json:"wal,omitempty"`
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	// WALMembers is the raft membership: the snapshot's voters and
	// learners with the WAL's committed configuration changes applied, up
	// to the backend's consistent index when it is known (so both sides
	// describe the same moment).
	WALMembers []Member `json:"walMembers,omitempty"`
	// PendingConfChanges are committed configuration changes past the
	// backend's consistent index: etcd applies them at start.
	PendingConfChanges int    `json:"pendingConfChanges,omitempty"`
	DB                 *DB    `json:"db,omitempty"`
	Files              []File `json:"files,omitempty"`
}

// Paths of a data directory, as etcd lays it out.
func walDir(dataDir string) string  { return filepath.Join(dataDir, "member", "wal") }
func snapDir(dataDir string) string { return filepath.Join(dataDir, "member", "snap") }

// DBPath is the backend file of a data directory.
func DBPath(dataDir string) string { return filepath.Join(snapDir(dataDir), "db") }

// Inspect reads dataDir. It never fails: what cannot be read is part of the
// answer.
func Inspect(dataDir string) *Inspection {
	ins := &Inspection{DataDir: dataDir}
	st, err := os.Stat(dataDir)
	if err != nil {
		ins.Error = err.Error()
		return ins
	}
	if !st.IsDir() {
		ins.Error = dataDir + " is not a directory"
		return ins
	}
	ins.Files = listFiles(dataDir)
	if !wal.Exist(walDir(dataDir)) {
		ins.Error = fmt.Sprintf("%s holds no WAL (no %s): not an etcd data directory, or one whose member never started", dataDir, walDir(dataDir))
	}
	lg := zap.NewNop()
	var ents []*raftpb.Entry
	var conf *raftpb.ConfState
	if ins.Error == "" {
		ins.WAL = scanWAL(walDir(dataDir))
		ins.Snapshot, conf = newestSnapshot(lg, dataDir)
		ents = readWAL(lg, ins.WAL, ins.Snapshot)
	}
	ins.DB = readDB(DBPath(dataDir))
	if ins.WAL != nil && ins.WAL.Error == "" {
		upTo := ins.WAL.Commit
		if ins.DB.OpenError == "" && ins.DB.ConsistentIndex > 0 && ins.DB.ConsistentIndex < upTo {
			upTo = ins.DB.ConsistentIndex
		}
		ins.WALMembers, ins.PendingConfChanges = membersFromRaft(conf, ents, upTo, ins.WAL.Commit)
	}
	return ins
}

// scanWAL decodes every record of every WAL file with etcd's decoder, as
// etcd does at start, to learn where and how the log ends.
func scanWAL(dir string) *WAL {
	w := &WAL{Dir: dir, Tail: TailClean}
	names, err := walNames(dir)
	if err != nil {
		w.Error = err.Error()
		return w
	}
	w.Files = names
	var readers []fileutil.FileReader
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			w.Error = err.Error()
			return w
		}
		defer f.Close()
		readers = append(readers, fileutil.NewFileReader(f))
	}
	dec := wal.NewDecoder(readers...)
	rec := &walpb.Record{}
	for {
		err := dec.Decode(rec)
		if err == nil {
			w.Records++
			if rec.GetType() == wal.CrcType {
				dec.UpdateCRC(rec.GetCrc())
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			return w
		}
		w.TailOffset, w.TailError = dec.LastOffset(), err.Error()
		w.TailFile = fileOf(err, names)
		// etcd repairs only a torn record at the end of the last file.
		if errors.Is(err, io.ErrUnexpectedEOF) && w.TailFile == names[len(names)-1] {
			w.Tail = TailTorn
		} else {
			w.Tail = TailCorrupt
		}
		return w
	}
}

// fileOf names the file an error of the decoder is about; the decoder
// says it for a checksum or torn record, else it is the last file.
func fileOf(err error, names []string) string {
	msg := err.Error()
	for _, n := range names {
		if strings.Contains(msg, "'"+n+"'") || strings.Contains(msg, `"`+n+`"`) {
			return n
		}
	}
	return names[len(names)-1]
}

func walNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".wal") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s has no .wal file", dir)
	}
	sort.Strings(names) // seq-index names sort in log order
	return names, nil
}

// newestSnapshot finds the raft snapshot etcd would start from: the newest
// snap file that the WAL also records.
func newestSnapshot(lg *zap.Logger, dataDir string) (*Snapshot, *raftpb.ConfState) {
	s := &Snapshot{}
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir(dataDir))
	if err != nil {
		s.Error = fmt.Sprintf("reading the WAL's snapshot records: %v", err)
		return s, nil
	}
	rs, err := snap.New(lg, snapDir(dataDir)).LoadNewestAvailable(walSnaps)
	if errors.Is(err, snap.ErrNoSnapshot) {
		return s, nil
	}
	if err != nil {
		s.Error = err.Error()
		return s, nil
	}
	s.Index, s.Term = rs.Metadata.GetIndex(), rs.Metadata.GetTerm()
	s.File = filepath.Join(snapDir(dataDir), fmt.Sprintf("%016x-%016x.snap", s.Term, s.Index))
	cs := rs.Metadata.GetConfState()
	return s, cs
}

// readWAL reads the hard state and entries after the snapshot, read-only.
// A torn tail is read up to the last whole record, as etcd will after
// repairing it.
func readWAL(lg *zap.Logger, w *WAL, s *Snapshot) []*raftpb.Entry {
	if w.Error != "" {
		return nil
	}
	start := &walpb.Snapshot{Index: &s.Index, Term: &s.Term}
	r, err := wal.OpenForRead(lg, w.Dir, start)
	if err != nil {
		w.Error = err.Error()
		return nil
	}
	defer r.Close()
	meta, hs, ents, err := r.ReadAll()
	if err != nil && hs.GetTerm() == 0 && len(ents) == 0 {
		if w.Tail == TailClean {
			w.Error = err.Error()
		}
		return nil
	}
	w.Term, w.Commit = hs.GetTerm(), hs.GetCommit()
	if hs.GetVote() != 0 {
		w.Vote = types.ID(hs.GetVote()).String()
	}
	w.LastIndex, w.LastTerm = s.Index, s.Term
	if len(ents) > 0 {
		w.LastIndex, w.LastTerm = ents[len(ents)-1].GetIndex(), ents[len(ents)-1].GetTerm()
	}
	for _, e := range ents {
		if e.GetIndex() > w.Commit {
			w.TailTerms = append(w.TailTerms, e.GetTerm())
		}
	}
	var md etcdserverpb.Metadata
	if meta != nil && proto.Unmarshal(meta, &md) == nil {
		w.MemberID, w.ClusterID = types.ID(md.GetNodeID()).String(), types.ID(md.GetClusterID()).String()
	}
	// etcd's MinimalEtcdVersion panics on a v2 request: give it the rest.
	v3 := make([]*raftpb.Entry, 0, len(ents))
	for _, e := range ents {
		if isV2Request(e) {
			w.V2Entries++
			w.LastV2Index = e.GetIndex()
			continue
		}
		v3 = append(v3, e)
	}
	if err := guarded(func() {
		if v := wal.MinimalEtcdVersion(v3); v != nil {
			w.MinimalVersion = v.String()
		}
	}); err != nil {
		w.Error = "reading the versions its entries need: " + err.Error()
	}
	return ents
}

// isV2Request says whether an entry is one etcd 3.7 cannot apply: a
// normal entry whose data is not a v3 InternalRaftRequest with an ID or a
// header, which is how etcd 3.5 wrote v2 requests (member attributes,
// the cluster version). Empty entries (a new leader's) are not applied.
func isV2Request(e *raftpb.Entry) bool {
	if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
		return false
	}
	var req etcdserverpb.InternalRaftRequest
	if err := proto.Unmarshal(e.GetData(), &req); err != nil {
		return true
	}
	return req.GetID() == 0 && req.GetHeader() == nil
}

// ReadWAL reads the WAL of dataDir after its newest raft snapshot,
// read-only; the member may be running (what it writes meanwhile may be
// missed). It never fails: what cannot be read is in WAL.Error.
func ReadWAL(dataDir string) (*WAL, *Snapshot) {
	if !wal.Exist(walDir(dataDir)) {
		return &WAL{Dir: walDir(dataDir), Error: fmt.Sprintf("%s holds no WAL", dataDir)}, &Snapshot{}
	}
	lg := zap.NewNop()
	w := scanWAL(walDir(dataDir))
	s, _ := newestSnapshot(lg, dataDir)
	readWAL(lg, w, s)
	return w, s
}

// membersFromRaft applies the committed configuration changes after the
// snapshot to its configuration, up to index upTo; changes between upTo
// and commit are counted as pending.
func membersFromRaft(cs *raftpb.ConfState, ents []*raftpb.Entry, upTo, commit uint64) ([]Member, int) {
	members := map[uint64]*Member{}
	if cs != nil {
		for _, id := range cs.GetVoters() {
			members[id] = &Member{ID: types.ID(id).String()}
		}
		for _, id := range cs.GetLearners() {
			members[id] = &Member{ID: types.ID(id).String(), IsLearner: true}
		}
	}
	pending := 0
	for _, e := range ents {
		if e.GetIndex() > upTo {
			if e.GetType() == raftpb.EntryConfChange && e.GetIndex() <= commit {
				pending++
			}
			continue
		}
		if e.GetType() == raftpb.EntryNormal {
			// A member names itself once it starts: the attributes it
			// publishes through raft.
			var req etcdserverpb.InternalRaftRequest
			if proto.Unmarshal(e.GetData(), &req) == nil && req.GetClusterMemberAttrSet() != nil {
				set := req.GetClusterMemberAttrSet()
				if m, ok := members[set.GetMember_ID()]; ok {
					m.Name, m.ClientURLs = set.GetMemberAttributes().GetName(), set.GetMemberAttributes().GetClientUrls()
				}
			}
			continue
		}
		if e.GetType() != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			continue
		}
		id := cc.GetNodeId()
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			learner := cc.GetType() == raftpb.ConfChangeAddLearnerNode
			// etcd 3.5+ wraps the member in a context saying whether the
			// change promotes a learner; older entries hold the member.
			var ctx membership.ConfigChangeContext
			if json.Unmarshal(cc.GetContext(), &ctx) != nil || ctx.Member.ID == 0 {
				ctx = membership.ConfigChangeContext{}
				_ = json.Unmarshal(cc.GetContext(), &ctx.Member)
			}
			if m, ok := members[id]; ok && (ctx.IsPromote || !learner) {
				m.IsLearner = learner
				continue
			}
			members[id] = &Member{ID: types.ID(id).String(), IsLearner: learner, Name: ctx.Member.Name, PeerURLs: ctx.Member.PeerURLs, ClientURLs: ctx.Member.ClientURLs}
		case raftpb.ConfChangeRemoveNode:
			delete(members, id)
		case raftpb.ConfChangeUpdateNode:
			var mm membership.Member
			if m, ok := members[id]; ok && json.Unmarshal(cc.GetContext(), &mm) == nil {
				m.PeerURLs = mm.PeerURLs
			}
		}
	}
	out := make([]Member, 0, len(members))
	for _, m := range members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, pending
}

// readDB opens the backend read-only (a shared lock: it fails at once on a
// file a running etcd holds) and reads its schema version, consistent
// index and members, then runs bbolt's consistency check.
func readDB(path string) *DB {
	d := &DB{Path: path}
	st, err := os.Stat(path)
	if err != nil {
		d.OpenError = err.Error()
		return d
	}
	d.Size = st.Size()
	// bbolt would wait its whole Timeout on a held file: ask first. The
	// short Timeout covers an etcd that starts in between.
	locked, err := dbLocked(path)
	var db *bolt.DB
	if err == nil && !locked {
		db, err = bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	}
	switch {
	case locked || errors.Is(err, bolt.ErrTimeout):
		d.Locked = true
		d.OpenError = "locked: a running etcd holds it"
		return d
	case err != nil:
		d.OpenError = err.Error()
		return d
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		// A file shorter than its pages is truncated: reading them would
		// fault, so say so and read nothing more.
		if tx.Size() > d.Size {
			d.CheckErrors = append(d.CheckErrors, fmt.Sprintf("truncated: the file is %d bytes but its pages reach %d", d.Size, tx.Size()))
			return nil
		}
		stats := db.Stats()
		d.InUse = tx.Size() - int64(stats.FreePageN+stats.PendingPageN)*int64(db.Info().PageSize)
		if perr := guarded(func() {
			for cerr := range tx.Check() {
				d.CheckErrors = append(d.CheckErrors, cerr.Error())
			}
		}); perr != nil {
			d.CheckErrors = append(d.CheckErrors, perr.Error())
		}
		if len(d.CheckErrors) > 10 {
			d.CheckErrors = append(d.CheckErrors[:10], fmt.Sprintf("and %d more", len(d.CheckErrors)-10))
		}
		if len(d.CheckErrors) > 0 {
			return nil // what follows would read the broken pages
		}
		return guarded(func() { readSchema(tx, d) })
	})
	if err != nil {
		d.CheckErrors = append(d.CheckErrors, err.Error())
	}
	sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].ID < d.Members[j].ID })
	sort.Strings(d.Removed)
	return d
}

// readSchema reads what etcd's schema keeps in a sound database.
func readSchema(tx *bolt.Tx, d *DB) {
	r := boltReader{tx}
	if v := schema.ReadStorageVersionFromSnapshot(tx); v != nil {
		d.StorageVersion = semver.Version{Major: v.Major, Minor: v.Minor}.String()
	}
	d.ConsistentIndex, d.Term = schema.UnsafeReadConsistentIndex(r)
	_ = r.UnsafeForEach(schema.Members, func(k, v []byte) error {
		var m membership.Member
		if err := json.Unmarshal(v, &m); err != nil {
			d.CheckErrors = append(d.CheckErrors, fmt.Sprintf("members bucket: key %s: %v", k, err))
			return nil
		}
		d.Members = append(d.Members, Member{ID: string(k), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
		return nil
	})
	_ = r.UnsafeForEach(schema.MembersRemoved, func(k, _ []byte) error {
		d.Removed = append(d.Removed, string(k))
		return nil
	})
}

// guarded runs fn, turning a panic of bbolt on a damaged page (it asserts,
// or faults on a page past the end of the mapping) into an error.
func guarded(fn func()) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the database is damaged: %v", r)
		}
	}()
	fn()
	return nil
}

// boltReader lets etcd's schema functions read a read-only bbolt
// transaction (they take etcd's backend reader, which wants a writable
// file to open).
type boltReader struct{ tx *bolt.Tx }

var _ backend.UnsafeReader = boltReader{}

func (r boltReader) UnsafeRange(bucket backend.Bucket, key, endKey []byte, limit int64) ([][]byte, [][]byte) {
	b := r.tx.Bucket(bucket.Name())
	if b == nil {
		return nil, nil
	}
	if len(endKey) == 0 {
		if v := b.Get(key); v != nil {
			return [][]byte{key}, [][]byte{v}
		}
		return nil, nil
	}
	var keys, vals [][]byte
	c := b.Cursor()
	for k, v := c.Seek(key); k != nil && string(k) < string(endKey); k, v = c.Next() {
		keys, vals = append(keys, k), append(vals, v)
		if limit > 0 && int64(len(keys)) >= limit {
			break
		}
	}
	return keys, vals
}

func (r boltReader) UnsafeForEach(bucket backend.Bucket, visitor func(k, v []byte) error) error {
	b := r.tx.Bucket(bucket.Name())
	if b == nil {
		return nil
	}
	return b.ForEach(visitor)
}

// listFiles records the mode and owner of the directory and everything in
// member/ (not deeper than etcd's own layout).
func listFiles(dataDir string) []File {
	var files []File
	_ = filepath.WalkDir(dataDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		f := File{Path: path, Mode: info.Mode().Perm(), Dir: e.IsDir()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			f.UID, f.GID = int(st.Uid), int(st.Gid)
		}
		files = append(files, f)
		return nil
	})
	return files
}

// MemberIDs are the IDs of members, for messages.
func MemberIDs(ms []Member) []string {
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// Held lists the files of the data directory that a process still holds
// locked: the WAL files (etcd's own file lock) and the backend (bbolt's
// flock). etcd closes its client port before it has let go of them, so a
// closed port alone does not mean the files can be moved, copied or
// removed; an empty list does. A missing data directory holds nothing.
func Held(dataDir string) ([]string, error) {
	var held []string
	entries, err := os.ReadDir(walDir(dataDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		p := filepath.Join(walDir(dataDir), e.Name())
		l, err := fileutil.TryLockFile(p, os.O_WRONLY, fileutil.PrivateFileMode)
		switch {
		case errors.Is(err, fileutil.ErrLocked):
			held = append(held, p)
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			l.Close()
		}
	}
	db := DBPath(dataDir)
	locked, err := dbLocked(db)
	if err != nil {
		return nil, err
	}
	if locked {
		held = append(held, db)
	}
	return held, nil
}

// dbLocked reports whether a process holds the bbolt file at path: bbolt
// takes an exclusive flock for a writer, so a shared one fails at once
// while etcd has the file open. A missing file is not locked.
func dbLocked(path string) (bool, error) {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return false, fmt.Errorf("%s: %w", path, err)
		}
		return true, nil
	}
	return false, nil
}
