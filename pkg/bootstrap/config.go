package bootstrap

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcdflags"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

// EtcdFlag is one flag of the etcd command line of this node's manifest.
type EtcdFlag struct {
	Name  string `json:"flag"`
	Value string `json:"value"`
}

// EtcdFlags reads the etcd flags of this node's manifest: every flag,
// sorted by name, or the named ones (with or without leading dashes) in
// the order given. A name the manifest does not set is an error.
func (n *Node) EtcdFlags(names ...string) ([]EtcdFlag, error) {
	m, err := staticpod.Read(n.ManifestPath())
	if err != nil {
		return nil, err
	}
	var out []EtcdFlag
	if len(names) == 0 {
		for k, v := range m.Flags {
			out = append(out, EtcdFlag{Name: k, Value: v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	for _, name := range names {
		name = strings.TrimLeft(name, "-")
		v, ok := m.Flags[name]
		if !ok {
			return nil, fmt.Errorf("--%s is not set in %s", name, m.Path)
		}
		out = append(out, EtcdFlag{Name: name, Value: v})
	}
	return out, nil
}

// ConfigOptions shape a change of the etcd flags of this node's manifest.
type ConfigOptions struct {
	// RestartOptions bound the waits and the restart lock, shared with
	// RestartEtcd and UpgradeEtcd so changes on several nodes take turns.
	RestartOptions
	// Set maps each flag to set, named without dashes, to its value. Only
	// etcdflags.Settable flags, with values etcd accepts.
	Set map[string]string
	// BackupDir receives the old manifest; by default a new directory
	// beside the manifests directory (/etc/kubernetes/etcd-config-TIME).
	BackupDir string
	// Now stamps the backup directory; time.Now when nil.
	Now func() time.Time
	// Confirm, when set, is asked with the changes once they are known
	// and checked, before anything changes (not in a dry run); an error
	// stops with nothing changed.
	Confirm func(changes []FlagChange) error
}

// FlagChange is one flag the change rewrites.
type FlagChange struct {
	Name string `json:"flag"`
	// Old is empty when the manifest did not set the flag; New when the
	// change removes it (a flag etcd 3.5 spells differently).
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// String is the change as progress lines show it.
func (c FlagChange) String() string {
	return fmt.Sprintf("--%s: %s -> %s", c.Name, orUnset(c.Old), orUnset(c.New))
}

func orUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// ConfigResult says what a change of flags did.
type ConfigResult struct {
	Changes    []FlagChange
	BackupDir  string
	RolledBack bool
}

// ConfigSet changes etcd flags in this node's static pod manifest while
// the cluster serves. The flags and values are checked first (package
// etcdflags: only settable flags, values etcd accepts, the election
// timeout against the heartbeat, feature gates written as an etcd 3.5
// image takes them); values the manifest already has are nothing to do.
// Then, as UpgradeEtcd, under the restart lock and the restart preflight:
// a copy of the old manifest into the backup directory, leadership moved
// away, the new manifest written, and the gate: the member serves and
// catches up with the leader within Timeout, and reports the new
// --quota-backend-bytes when that changed. Otherwise the old manifest
// goes back and the error says what happened.
func (n *Node) ConfigSet(ctx context.Context, opts ConfigOptions) (*ConfigResult, error) {
	if len(opts.Set) == 0 {
		return nil, fmt.Errorf("no flag to set; the flags config set changes are %s", strings.Join(etcdflags.Settable, ", "))
	}
	var settings []etcdflags.Setting
	for name, value := range opts.Set {
		v, err := etcdflags.Normalize(name, value)
		if err != nil {
			return nil, err
		}
		settings = append(settings, etcdflags.Setting{Name: name, Value: v})
	}
	sort.Slice(settings, func(i, j int) bool { return settings[i].Name < settings[j].Name })

	m, oldData, err := n.readManifest()
	if err != nil {
		return nil, fmt.Errorf("changing etcd's flags: %w", err)
	}
	path := n.ManifestPath()
	image := m.Pod.Spec.Containers[m.Container].Image
	var release *version.Version
	if img, err := upgrade.ParseImage(image); err == nil {
		release = img.Version
	}
	warnings, err := etcdflags.Check(settings, m.Flags, release)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		n.logf("[config] Note: %s", w)
	}

	newManifest, newFlags, err := withFlags(m, settings, image)
	if err != nil {
		return nil, err
	}
	res := &ConfigResult{Changes: flagChanges(m.Flags, newFlags)}
	// What the gate checks: the changes, or, when the manifest already
	// has the values, the values asked (an interrupted run may have
	// written them).
	inPlace, checked := len(res.Changes) == 0, res.Changes
	var from, to []string
	for _, c := range res.Changes {
		n.logf("[config] %s", c)
		from = append(from, flagWord(c.Name, c.Old))
		to = append(to, flagWord(c.Name, c.New))
	}
	if inPlace {
		newManifest = oldData
		to = []string{describeSettings(settings)}
		for _, st := range settings {
			checked = append(checked, FlagChange{Name: st.Name, Old: st.Value, New: st.Value})
		}
	}
	if opts.Confirm != nil && !n.DryRun && !inPlace {
		if err := opts.Confirm(res.Changes); err != nil {
			return res, err
		}
	}

	name := m.Flags["name"]
	r := manifestRollout{
		RestartOptions: opts.RestartOptions,
		Verb:           "config",
		Title:          fmt.Sprintf("config change of %s", name),
		From:           strings.Join(from, " "),
		To:             strings.Join(to, " "),
		Old:            oldData,
		M:              m,
		New:            newManifest,
		BackupDir:      opts.BackupDir,
		Now:            opts.Now,
		InPlace:        inPlace,
		GoBack: func(prev *staticpod.EtcdManifest) string {
			var words []string
			for _, c := range flagChanges(m.Flags, prev.Flags) {
				if c.New != "" && etcdflags.IsSettable(c.Name) {
					words = append(words, c.Name+"="+c.New)
				}
			}
			if len(words) == 0 {
				return ""
			}
			return "kubectl etcd config set " + strings.Join(words, " ")
		},
	}
	gate := "serves and catches up"
	if q, ok := changedQuota(checked); ok {
		// etcd reports its quota in its status from 3.6 on.
		if release == nil || release.Major() > 3 || release.Minor() >= 6 {
			r.Ready = func(s cluster.MemberStatus) error {
				if s.DBQuota != q {
					return fmt.Errorf("reports a quota of %d bytes, want %d", s.DBQuota, q)
				}
				return nil
			}
			r.Serve = fmt.Sprintf("serve with a quota of %d bytes", q)
			r.Serves = fmt.Sprintf("serves with a quota of %d bytes", q)
			gate = fmt.Sprintf("serves, reports a quota of %d bytes and catches up", q)
		} else {
			n.logf("[config] Note: etcd %s does not report its quota; the gate cannot check it", release)
		}
	}
	agree := mustAgree(checked)
	if len(agree) > 0 {
		r.Preflight = func(ctx context.Context, env *rolloutEnv, _ *restartPlan) error {
			err := n.checkAgreement(ctx, env, agree)
			if err != nil && opts.Force {
				n.logf("[config] Warning: %v; --force: changing it anyway", err)
				return nil
			}
			return err
		}
		r.Done = func(ctx context.Context, env *rolloutEnv) error {
			return n.recordAgreement(ctx, env, agree)
		}
	}
	r.DryRun = func(env *rolloutEnv) {
		n.logf("[dry-run] would copy %s into %s", path, env.backupDir)
		n.logf("[dry-run] would write %s with %s, then wait until %s %s, or put the old manifest back", path, r.To, env.localURL, gate)
	}
	out, err := n.rollOut(ctx, r)
	res.BackupDir, res.RolledBack = out.BackupDir, out.RolledBack
	if err != nil {
		return res, err
	}
	return res, nil
}

// withFlags is the manifest with settings on the etcd command line. When
// feature gates change, the flags the image's release spells otherwise
// are renamed as an upgrade to it renames them (flagsForImage): etcd 3.5
// takes gates as --experimental-* flags, and 3.6 refuses a gate given
// both ways.
func withFlags(m *staticpod.EtcdManifest, settings []etcdflags.Setting, image string) ([]byte, map[string]string, error) {
	pod := m.Pod.DeepCopy()
	nm, err := staticpod.FromPod(m.Path, pod)
	if err != nil {
		return nil, nil, err
	}
	gates := false
	for _, s := range settings {
		nm.SetFlag(s.Name, s.Value)
		gates = gates || s.Name == etcdflags.FeatureGates
	}
	if gates {
		if err := flagsForImage(pod, image); err != nil {
			return nil, nil, err
		}
		if nm, err = staticpod.FromPod(m.Path, pod); err != nil {
			return nil, nil, err
		}
	}
	data, err := staticpod.Marshal(pod)
	if err != nil {
		return nil, nil, err
	}
	return data, nm.Flags, nil
}

// flagChanges are the flags that differ between two command lines,
// sorted by name.
func flagChanges(old, cur map[string]string) []FlagChange {
	var out []FlagChange
	for k, v := range cur {
		if o, ok := old[k]; !ok || o != v {
			out = append(out, FlagChange{Name: k, Old: old[k], New: v})
		}
	}
	for k, v := range old {
		if _, ok := cur[k]; !ok {
			out = append(out, FlagChange{Name: k, Old: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func changedQuota(changes []FlagChange) (int64, bool) {
	for _, c := range changes {
		if c.Name == etcdflags.QuotaBackendBytes {
			q, err := strconv.ParseInt(c.New, 10, 64)
			return q, err == nil
		}
	}
	return 0, false
}

func flagWord(name, value string) string {
	if value == "" {
		return "--" + name + " unset"
	}
	return "--" + name + "=" + value
}

func describeSettings(settings []etcdflags.Setting) string {
	var words []string
	for _, s := range settings {
		words = append(words, flagWord(s.Name, s.Value))
	}
	return strings.Join(words, " ")
}

// agreementPrefix keeps what config set gave each member of the flags
// that must agree.
const agreementPrefix = etcdflags.AgreementPrefix

// mustAgree are the changes to flags every member must agree on.
func mustAgree(changes []FlagChange) []FlagChange {
	var out []FlagChange
	for _, c := range changes {
		for _, f := range etcdflags.MustAgree {
			if c.Name == f {
				out = append(out, c)
			}
		}
	}
	return out
}

// checkAgreement refuses a value of a must-agree flag that differs from
// the one config set already gave another current member: that change is
// under way, and a second value would leave the members disagreeing on
// raft's timing. It is finished by giving every member the same value.
func (n *Node) checkAgreement(ctx context.Context, env *rolloutEnv, changes []FlagChange) error {
	current := map[string]bool{}
	for _, m := range env.list {
		current[m.Name] = true
	}
	for _, c := range changes {
		rctx, cancel := env.cfg.WithCommandTimeout(ctx)
		resp, err := env.cli.Get(rctx, agreementPrefix+c.Name+"/", clientv3.WithPrefix())
		cancel()
		if err != nil {
			return fmt.Errorf("reading what the other members were given of --%s: %w", c.Name, err)
		}
		for _, kv := range resp.Kvs {
			member := strings.TrimPrefix(string(kv.Key), agreementPrefix+c.Name+"/")
			if member == env.self.Name || !current[member] || string(kv.Value) == c.New {
				continue
			}
			return fmt.Errorf("refused: config set gave member %s --%s=%s, and every member must have the same --%s: give this one %s too (or, to change it again, give every member the new value, starting with %s; --force overrides)",
				member, c.Name, kv.Value, c.Name, kv.Value, member)
		}
	}
	return nil
}

// recordAgreement records the values this member now runs, and says which
// members the change is still to be made on.
func (n *Node) recordAgreement(ctx context.Context, env *rolloutEnv, changes []FlagChange) error {
	for _, c := range changes {
		key := agreementPrefix + c.Name + "/" + env.self.Name
		rctx, cancel := env.cfg.WithCommandTimeout(ctx)
		var err error
		if c.New == "" {
			_, err = env.cli.Delete(rctx, key)
		} else {
			_, err = env.cli.Put(rctx, key, c.New)
		}
		if err == nil {
			var resp *clientv3.GetResponse
			resp, err = env.cli.Get(rctx, agreementPrefix+c.Name+"/", clientv3.WithPrefix())
			if err == nil {
				have := map[string]bool{}
				for _, kv := range resp.Kvs {
					if string(kv.Value) == c.New {
						have[strings.TrimPrefix(string(kv.Key), agreementPrefix+c.Name+"/")] = true
					}
				}
				var left []string
				for _, m := range env.list {
					if !have[m.Name] {
						left = append(left, m.Name)
					}
				}
				if len(left) > 0 {
					n.logf("[config] Note: every member must have the same --%s: run this change on %s too", c.Name, strings.Join(left, ", "))
				} else {
					n.logf("[config] Every member now has --%s=%s", c.Name, c.New)
				}
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("recording --%s=%s of %s in the cluster (%s): %w", c.Name, c.New, env.self.Name, key, err)
		}
	}
	return nil
}
