// Package offline is the doctor for an etcd that does not run: it judges
// what datadir read from a member's files, with this node's etcd manifest,
// and says for each finding what etcd will do with the data at its next
// start and what to do about it. Diagnose is a pure function, so every rule
// is tested on facts as well as on real data directories.
package offline

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/coreos/go-semver/semver"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// DefaultQuotaBackendBytes is etcd's database quota when
// --quota-backend-bytes is not set (2 GiB).
const DefaultQuotaBackendBytes = 2 << 30

// Facts is what Diagnose judges.
type Facts struct {
	Inspection *datadir.Inspection `json:"inspection"`
	// Manifest is this node's etcd static pod, when there is one.
	Manifest *Manifest `json:"manifest,omitempty"`
	// ManifestError says why the manifest could not be read (missing is
	// not an error: the data dir may be a copy).
	ManifestError string `json:"manifestError,omitempty"`
	// Leftovers are what interrupted recoveries and restores left beside
	// the data directory.
	Leftovers []datadir.Leftover `json:"leftovers,omitempty"`
	// ParkedManifest is set when an interrupted restart left the
	// manifest aside; Manifest is then read from there.
	ParkedManifest *doctor.ParkedManifest `json:"parkedManifest,omitempty"`
}

// Manifest is what the offline doctor reads from the etcd static pod.
type Manifest struct {
	Path  string `json:"path"`
	Image string `json:"image"`
	// Flags of the etcd command line.
	Flags map[string]string `json:"flags"`
}

// ManifestFacts takes what Diagnose needs from a parsed manifest.
func ManifestFacts(m *staticpod.EtcdManifest) *Manifest {
	return &Manifest{Path: m.Path, Image: m.Pod.Spec.Containers[m.Container].Image, Flags: m.Flags}
}

// Diagnose judges the facts, one finding per check.
func Diagnose(f *Facts) *doctor.Report {
	ins := f.Inspection
	var out []doctor.Finding
	add := func(sev doctor.Severity, check, msg, fix string) {
		out = append(out, doctor.Finding{Severity: sev, Check: check, Member: memberOf(ins), Message: msg, Fix: fix})
	}
	if ins.Error != "" {
		add(doctor.Error, "data-dir", ins.Error, "point --data-dir at the member's data directory (the manifest's etcd-data hostPath, /var/lib/etcd for kubeadm)")
	}
	if f.ParkedManifest != nil {
		pf := doctor.ParkedManifestFinding(*f.ParkedManifest)
		add(pf.Severity, pf.Check, pf.Message, pf.Fix)
	}
	if f.ManifestError != "" {
		add(doctor.Warning, "manifest", f.ManifestError, "pass the node's etcd manifest with --etcd-manifest to check the quota, image and feature gates against the data")
	}
	walFindings(ins, add)
	dbFindings(ins, add)
	membershipFindings(ins, add)
	if f.Manifest != nil {
		manifestFindings(ins, f.Manifest, add)
	}
	fileFindings(ins, add)
	out = append(out, doctor.LeftoverFindings(f.Leftovers)...)
	return doctor.NewReport(out)
}

type adder func(sev doctor.Severity, check, msg, fix string)

// rebuildFix is what to do with a member whose data etcd cannot use.
const rebuildFix = "this member's data cannot be used as it is: if the others keep quorum, `kubectl etcd member remove NAME` there and `kubectl etcd join` here on an empty data dir; if quorum is lost, `kubectl etcd recover quorum --compare` on the node with the best copy"

func walFindings(ins *datadir.Inspection, add adder) {
	w := ins.WAL
	if w == nil {
		return
	}
	if w.Error != "" {
		add(doctor.Error, "wal", fmt.Sprintf("the WAL in %s cannot be read: %s; etcd will not start (\"failed to open WAL\")", w.Dir, w.Error), rebuildFix)
		return
	}
	switch w.Tail {
	case datadir.TailTorn:
		add(doctor.Warning, "wal", fmt.Sprintf("%s ends in a partly written record at offset %d (%s): a crash mid-write. etcd repairs it at start (it logs \"repairing\", keeps %s.broken and truncates at the last whole record); the torn entry was never acknowledged",
			w.TailFile, w.TailOffset, w.TailError, w.TailFile), "nothing to do but start etcd; keep the .broken copy until the member is healthy")
	case datadir.TailCorrupt:
		add(doctor.Error, "wal", fmt.Sprintf("%s is damaged at offset %d (%s): etcd will refuse to start with \"failed to read WAL, cannot be repaired\"", w.TailFile, w.TailOffset, w.TailError), rebuildFix)
	default:
		add(doctor.OK, "wal", fmt.Sprintf("%d %s, %d records, ends cleanly", len(w.Files), plural(len(w.Files), "file"), w.Records), "")
	}
	if w.Term > 0 || w.Commit > 0 {
		msg := fmt.Sprintf("member %s of cluster %s: term %d, committed index %d, last index %d", w.MemberID, w.ClusterID, w.Term, w.Commit, w.LastIndex)
		if w.LastIndex > w.Commit {
			msg += fmt.Sprintf(" (%d entries not known to be committed)", w.LastIndex-w.Commit)
		}
		if w.MinimalVersion != "" {
			msg += "; the entries need etcd " + w.MinimalVersion + " or newer"
		}
		add(doctor.OK, "raft", msg, "")
	}
	if s := ins.Snapshot; s != nil && w.Tail != datadir.TailCorrupt {
		switch {
		case s.Error != "":
			add(doctor.Error, "snapshot", "the newest raft snapshot cannot be loaded: "+s.Error+"; etcd will not start", rebuildFix)
		case s.File == "":
			add(doctor.OK, "snapshot", "no raft snapshot yet: etcd replays the WAL from its start", "")
		default:
			add(doctor.OK, "snapshot", fmt.Sprintf("newest raft snapshot %s: index %d, term %d", filepath.Base(s.File), s.Index, s.Term), "")
		}
	}
}

func dbFindings(ins *datadir.Inspection, add adder) {
	d := ins.DB
	if d == nil {
		return
	}
	switch {
	case d.Locked:
		add(doctor.Error, "db", fmt.Sprintf("%s is %s", d.Path, d.OpenError), "this etcd runs: use `kubectl etcd doctor` without --offline, or stop it first")
		return
	case d.OpenError != "":
		add(doctor.Error, "db", fmt.Sprintf("bbolt cannot open %s (%s): %s; etcd will fail at start opening its backend", d.Path, bytes(d.Size), d.OpenError), rebuildFix)
		return
	case len(d.CheckErrors) > 0:
		add(doctor.Error, "db", fmt.Sprintf("%s (%s) fails bbolt's consistency check: %s", d.Path, bytes(d.Size), strings.Join(d.CheckErrors, "; ")), rebuildFix)
	default:
		add(doctor.OK, "db", fmt.Sprintf("%s: %s, %s in use, passes bbolt's consistency check; consistent index %d, term %d", d.Path, bytes(d.Size), bytes(d.InUse), d.ConsistentIndex, d.Term), "")
	}
	if w := ins.WAL; w != nil && w.Error == "" && w.Commit > 0 && d.ConsistentIndex > w.Commit {
		add(doctor.Error, "db", fmt.Sprintf("the backend has applied index %d, past the WAL's committed index %d: the WAL is older than the database (restored or copied apart)", d.ConsistentIndex, w.Commit), rebuildFix)
	}
}

func membershipFindings(ins *datadir.Inspection, add adder) {
	w, d := ins.WAL, ins.DB
	if w == nil || w.Error != "" || w.Tail == datadir.TailCorrupt || !sound(d) || len(ins.WALMembers) == 0 {
		return
	}
	inRaft := map[string]datadir.Member{}
	for _, m := range ins.WALMembers {
		inRaft[m.ID] = m
	}
	inStore := map[string]datadir.Member{}
	for _, m := range d.Members {
		inStore[m.ID] = m
	}
	var zombies, missing []string
	for id, m := range inStore {
		if _, ok := inRaft[id]; !ok {
			zombies = append(zombies, describe(m))
		}
	}
	for id, m := range inRaft {
		if _, ok := inStore[id]; !ok {
			missing = append(missing, describe(m))
		}
	}
	sort.Strings(zombies)
	sort.Strings(missing)
	evidence := fmt.Sprintf("raft's membership (snapshot and WAL up to index %d): %s; the v3 store's members bucket: %s", upTo(ins), strings.Join(names(ins.WALMembers), ", "), strings.Join(names(d.Members), ", "))
	if len(zombies) > 0 {
		add(doctor.Error, "membership", fmt.Sprintf("zombie %s %s: in the v3 store's members bucket but not in raft's membership, so the member list shows %s though raft never counts %s; %s",
			plural(len(zombies), "member"), strings.Join(zombies, ", "), them(len(zombies)), them(len(zombies)), evidence),
			"rebuild this member from one whose membership agrees (`kubectl etcd member remove` it and `kubectl etcd join` with an empty data dir), or `kubectl etcd recover quorum` from such a copy: a one-member cluster is made from raft's view")
	}
	if len(missing) > 0 {
		add(doctor.Error, "membership", fmt.Sprintf("%s %s: in raft's membership but not in the v3 store's members bucket; %s", plural(len(missing), "member"), strings.Join(missing, ", "), evidence),
			"rebuild this member from one whose membership agrees (member remove and join with an empty data dir)")
	}
	if len(zombies) == 0 && len(missing) == 0 {
		msg := "raft and the v3 store agree: " + strings.Join(names(ins.WALMembers), ", ")
		if ins.PendingConfChanges > 0 {
			msg += fmt.Sprintf(" (%d committed membership %s past the backend's index, applied at start)", ins.PendingConfChanges, plural(ins.PendingConfChanges, "change"))
		}
		add(doctor.OK, "membership", msg, "")
	}
}

// sound says the database opened and passed its check, so what was read
// from its buckets can be trusted.
func sound(d *datadir.DB) bool { return d != nil && d.OpenError == "" && len(d.CheckErrors) == 0 }

func upTo(ins *datadir.Inspection) uint64 {
	if ins.DB != nil && ins.DB.ConsistentIndex > 0 && ins.DB.ConsistentIndex < ins.WAL.Commit {
		return ins.DB.ConsistentIndex
	}
	return ins.WAL.Commit
}

func manifestFindings(ins *datadir.Inspection, m *Manifest, add adder) {
	quota := int64(DefaultQuotaBackendBytes)
	source := "etcd's default"
	if v := m.Flags["quota-backend-bytes"]; v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			quota, source = n, "--quota-backend-bytes in "+m.Path
		}
	}
	if d := ins.DB; d != nil && d.OpenError == "" {
		share := float64(d.Size) / float64(quota)
		msg := fmt.Sprintf("database file %s of a %s quota (%s): %.0f%%", bytes(d.Size), bytes(quota), source, share*100)
		switch {
		case share >= 1:
			add(doctor.Error, "quota", msg+": etcd raises the NOSPACE alarm at start and refuses writes",
				fmt.Sprintf("defragment it offline (`etcdutl defrag --data-dir %s`, after compaction if it is mostly old revisions), or raise --quota-backend-bytes in the manifest (etcd advises at most 8 GiB); then `kubectl etcd alarm disarm`", ins.DataDir))
		case share >= doctor.QuotaWarn:
			add(doctor.Warning, "quota", msg+": near the quota", "compact and defragment once it runs (`kubectl etcd compact`, `kubectl etcd defrag`), or raise --quota-backend-bytes")
		default:
			add(doctor.OK, "quota", msg, "")
		}
	}
	image := imageVersion(m.Image)
	if image != nil {
		var needs []string
		var need *semver.Version
		consider := func(v, what string) {
			sv, err := semver.NewVersion(v)
			if err != nil {
				return
			}
			minor := &semver.Version{Major: sv.Major, Minor: sv.Minor}
			if minor.Compare(semver.Version{Major: image.Major, Minor: image.Minor}) > 0 {
				needs = append(needs, what+" "+sv.String())
				if need == nil || need.LessThan(*minor) {
					need = minor
				}
			}
		}
		if sound(ins.DB) && ins.DB.StorageVersion != "" {
			consider(ins.DB.StorageVersion, "the database's storage version")
		}
		if ins.WAL != nil && ins.WAL.MinimalVersion != "" {
			consider(ins.WAL.MinimalVersion, "the WAL's entries need")
		}
		if len(needs) > 0 {
			add(doctor.Error, "storage-version", fmt.Sprintf("the manifest's image %s runs etcd %d.%d, older than this data: %s; it refuses it at start (`version \"%s\" is not supported`)",
				m.Image, image.Major, image.Minor, strings.Join(needs, ", "), need.String()),
				fmt.Sprintf("run etcd %d.%d (set the manifest's image to registry.k8s.io/etcd:%d.%d.x-0), or downgrade the data with etcdutl %d.%d: `etcdutl migrate --data-dir %s --target-version %d.%d`", need.Major, need.Minor, need.Major, need.Minor, need.Major, need.Minor, ins.DataDir, image.Major, image.Minor))
		} else if sound(ins.DB) {
			sv := ins.DB.StorageVersion
			if sv == "" {
				sv = "3.5 (none recorded)"
			}
			add(doctor.OK, "storage-version", fmt.Sprintf("storage version %s; the image %s runs etcd %d.%d", sv, m.Image, image.Major, image.Minor), "")
		}
		if w := ins.WAL; w != nil && w.V2Entries > 0 && image.Major == 3 && image.Minor >= 7 {
			add(doctor.Error, "v2-entries", fmt.Sprintf("the WAL holds %d %s etcd 3.5 wrote as v2 requests after the newest raft snapshot (the last at index %d); the manifest's image %s runs etcd %d.%d, which cannot decode them and panics replaying them at start (\"unmarshal should never fail\")",
				w.V2Entries, map[bool]string{true: "entry", false: "entries"}[w.V2Entries == 1], w.LastV2Index, m.Image, image.Major, image.Minor),
				"run this member on etcd 3.6 until it takes a raft snapshot past them (every --snapshot-count applied entries, 10000 by default), then upgrade to 3.7 again")
		}
	}
	var off []string
	if !gateOn(m.Flags, "InitialCorruptCheck", "experimental-initial-corrupt-check") {
		off = append(off, "InitialCorruptCheck")
	}
	if !gateOn(m.Flags, "CompactHashCheck", "experimental-compact-hash-check-enabled") {
		off = append(off, "CompactHashCheck")
	}
	if len(off) > 0 {
		add(doctor.Warning, "corruption-checks", fmt.Sprintf("%s %s off in %s: a member whose data has diverged starts and serves it instead of refusing (initial check) or being flagged CORRUPT (compaction hash check)", strings.Join(off, " and "), isAre(len(off)), m.Path),
			"add --feature-gates=InitialCorruptCheck=true,CompactHashCheck=true to the etcd command (etcd 3.6 and later; before: --experimental-initial-corrupt-check=true --experimental-compact-hash-check-enabled=true)")
	} else {
		add(doctor.OK, "corruption-checks", "InitialCorruptCheck and CompactHashCheck are on", "")
	}
}

// gateOn says whether a feature gate is on, by --feature-gates or its
// older experimental flag.
func gateOn(flags map[string]string, gate, oldFlag string) bool {
	for _, kv := range strings.Split(flags["feature-gates"], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k == gate {
			return strings.EqualFold(v, "true")
		}
	}
	return strings.EqualFold(flags[oldFlag], "true")
}

// imageVersion is the etcd version of an image tag: registry.k8s.io/etcd:3.6.16-0
// is 3.6.16.
func imageVersion(image string) *semver.Version {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return nil
	}
	tag := strings.TrimPrefix(image[i+1:], "v")
	if j := strings.Index(tag, "-"); j >= 0 {
		tag = tag[:j]
	}
	v, err := semver.NewVersion(tag)
	if err != nil {
		return nil
	}
	return v
}

func fileFindings(ins *datadir.Inspection, add adder) {
	if len(ins.Files) == 0 {
		return
	}
	root := ins.Files[0]
	var problems []string
	if root.Mode != 0o700 {
		problems = append(problems, fmt.Sprintf("%s has mode %04o, etcd wants 0700 (it warns \"check file permission\")", root.Path, root.Mode))
	}
	var others []string
	for _, f := range ins.Files[1:] {
		if f.UID != root.UID || f.GID != root.GID {
			others = append(others, fmt.Sprintf("%s (%d:%d)", f.Path, f.UID, f.GID))
		}
		if !f.Dir && f.Mode&0o600 != 0o600 {
			problems = append(problems, fmt.Sprintf("%s has mode %04o: its owner cannot read and write it", f.Path, f.Mode))
		}
	}
	if len(others) > 0 {
		if len(others) > 5 {
			others = append(others[:5], fmt.Sprintf("and %d more", len(others)-5))
		}
		problems = append(problems, fmt.Sprintf("owned by another user than %s (%d:%d): %s", root.Path, root.UID, root.GID, strings.Join(others, ", ")))
	}
	if len(problems) > 0 {
		add(doctor.Warning, "files", strings.Join(problems, "; "), fmt.Sprintf("chmod 0700 %s and chown -R the data dir to the user etcd runs as", ins.DataDir))
		return
	}
	add(doctor.OK, "files", fmt.Sprintf("%d files and directories, owner %d:%d, %s mode 0700", len(ins.Files), root.UID, root.GID, root.Path), "")
}

func memberOf(ins *datadir.Inspection) string {
	if ins.WAL != nil && ins.WAL.MemberID != "" {
		for _, m := range ins.WALMembers {
			if m.ID == ins.WAL.MemberID && m.Name != "" {
				return m.Name
			}
		}
		if ins.DB != nil {
			for _, m := range ins.DB.Members {
				if m.ID == ins.WAL.MemberID && m.Name != "" {
					return m.Name
				}
			}
		}
		return ins.WAL.MemberID
	}
	return ""
}

func describe(m datadir.Member) string {
	if m.Name != "" {
		return m.ID + " (" + m.Name + ")"
	}
	return m.ID
}

func names(ms []datadir.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, describe(m))
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func bytes(n int64) string { return output.Bytes(n) }
