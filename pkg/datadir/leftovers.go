package datadir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// What recover quorum and snapshot restore write beside a data directory
// while they work, and remove when they are done. A command killed
// meanwhile leaves them behind, and a later run does not reuse them: each
// run names its files after a time stamp of its own.
const (
	// WorkSuffix ends recover quorum's copy of the data it recovers
	// from: NEW-DATA-DIR.work, as large as that data.
	WorkSuffix = ".work"
	// SnapshotSuffix ends the snapshot it saves of that copy once it
	// serves alone: NEW-DATA-DIR.work.snapshot.db.
	SnapshotSuffix = ".snapshot.db"
	// StagingInfix is in the name of the directory snapshot restore
	// restores into before it renames it: NEW-DATA-DIR.restoring-RANDOM.
	StagingInfix = ".restoring-"
)

// Leftover is a file or directory an interrupted command left beside a
// data directory, or a data directory of the member's it no longer runs
// on.
type Leftover struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	// By names the command that left it, or, for Data, what the data is.
	By string `json:"by"`
	// Data marks a whole etcd data directory the member does not run on:
	// the data it ran on before a recovery or restore, kept for going
	// back, or one a recovery or restore made and the member is not on
	// (the run was killed or rolled back), kept for a look. Not scratch:
	// only the operator knows when it is no longer needed.
	Data bool `json:"data,omitempty"`
}

// String says what l is and what left it, for the doctor's findings
// and the preflights.
func (l Leftover) String() string {
	if l.Data {
		return fmt.Sprintf("%s (%s) is an etcd data directory this member does not run on: %s", l.Path, output.Bytes(l.Bytes), l.By)
	}
	return fmt.Sprintf("%s (%s) was left by an interrupted %s", l.Path, output.Bytes(l.Bytes), l.By)
}

// Removal says when and how to remove l.
func (l Leftover) Removal() string {
	if l.Data {
		return "keep it while you may go back to it or look into it, then rm -rf " + l.Path
	}
	return "rm -rf " + l.Path + " (unless that command is running now)"
}

// madeDataDir matches the names of the data directories recover quorum
// and restore --manifest make by default, DATA-DIR-recover-STAMP and
// DATA-DIR-restore-STAMP (again for a member recovered before), and
// keeps DATA-DIR.
var madeDataDir = regexp.MustCompile(`^(.+?)(-(recover|restore)-[0-9]{8}T[0-9]{6}Z)+$`)

// Leftovers lists what recover quorum and snapshot restore of the member
// whose data is in dataDir left in the same parent directory, named as
// their default data directories are: the copies of interrupted runs
// (DATA-DIR-recover-STAMP.work, DATA-DIR-restore-STAMP.restoring-X), and
// the etcd data directories (DATA-DIR, DATA-DIR-recover-STAMP,
// DATA-DIR-restore-STAMP) other than dataDir, marked Data. DATA-DIR is
// dataDir's name, or, when dataDir is itself one a recovery or restore
// made, the name it was made beside: a recovery that succeeds moves the
// member to its new data directory, and the copies of the runs killed
// before it are still there. Nothing is listed when the parent cannot be
// read.
func Leftovers(dataDir string) []Leftover {
	dataDir = filepath.Clean(dataDir)
	parent, current := filepath.Dir(dataDir), filepath.Base(dataDir)
	base := current
	if m := madeDataDir.FindStringSubmatch(base); m != nil {
		base = m[1]
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var out []Leftover
	for _, e := range entries {
		name := e.Name()
		if name != current && e.IsDir() && isDataDirOf(name, base) {
			path := filepath.Join(parent, name)
			if _, err := os.Stat(filepath.Join(path, "member")); err != nil {
				continue
			}
			by := "a recovery or restore made it, and the member is not on it (that run was interrupted or rolled back, or a later one moved the member on)"
			if strings.HasPrefix(current, name+"-") {
				by = "the member ran on it before a recovery or restore moved it to " + dataDir
			}
			out = append(out, Leftover{Path: path, Bytes: diskUsage(path), By: by, Data: true})
			continue
		}
		if !strings.HasPrefix(name, base+"-") {
			continue
		}
		by := ""
		switch {
		case strings.HasSuffix(name, WorkSuffix):
			by = "recover quorum (its copy of the data)"
		case strings.HasSuffix(name, WorkSuffix+SnapshotSuffix):
			by = "recover quorum (its snapshot of the copy)"
		case strings.Contains(name, StagingInfix):
			by = "snapshot restore (its data half restored)"
		default:
			continue
		}
		path := filepath.Join(parent, name)
		out = append(out, Leftover{Path: path, Bytes: diskUsage(path), By: by})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// isDataDirOf says whether name is base or one of the data directories
// recover quorum and restore --manifest make for the member whose data
// was in base.
func isDataDirOf(name, base string) bool {
	if name == base {
		return true
	}
	m := madeDataDir.FindStringSubmatch(name)
	return m != nil && m[1] == base
}

// diskUsage is the size of the files under path; what cannot be read
// counts nothing.
func diskUsage(path string) int64 {
	var n int64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
