// Package etcdflags checks the etcd flags `kubectl etcd config set` may
// change on a running member, before any manifest is written: a value etcd
// would refuse at start is refused here with the reason, so a member is
// never restarted into a crash loop for a typo. It knows nothing of
// commands or files: names and values in, a normalized value or an error
// out.
package etcdflags

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"go.etcd.io/etcd/pkg/v3/featuregate"
	"go.etcd.io/etcd/server/v3/features"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

// The flags config set may change.
const (
	AutoCompactionMode      = "auto-compaction-mode"
	AutoCompactionRetention = "auto-compaction-retention"
	ElectionTimeout         = "election-timeout"
	FeatureGates            = "feature-gates"
	HeartbeatInterval       = "heartbeat-interval"
	ListenMetricsURLs       = "listen-metrics-urls"
	LogLevel                = "log-level"
	MaxRequestBytes         = "max-request-bytes"
	QuotaBackendBytes       = "quota-backend-bytes"
	SnapshotCount           = "snapshot-count"
)

// Settable lists the flags config set may change, sorted. Others (URLs,
// names, the data directory, certificates) belong to init, join and
// restore, which keep them consistent with the cluster.
var Settable = []string{
	AutoCompactionMode, AutoCompactionRetention, ElectionTimeout, FeatureGates, HeartbeatInterval,
	ListenMetricsURLs, LogLevel, MaxRequestBytes, QuotaBackendBytes, SnapshotCount,
}

// Hints say in a few words what each settable flag takes, for help.
var Hints = map[string]string{
	AutoCompactionMode:      "periodic or revision",
	AutoCompactionRetention: "hours, a duration (30m), or revisions in revision mode",
	ElectionTimeout:         "milliseconds, at least 5 heartbeats, at most 50000",
	FeatureGates:            "Name=true|false,...",
	HeartbeatInterval:       "milliseconds",
	ListenMetricsURLs:       "http(s)://host:port,...",
	LogLevel:                "debug, info, warn, error, panic or fatal",
	MaxRequestBytes:         "bytes",
	QuotaBackendBytes:       "bytes, or a size such as 8GiB",
	SnapshotCount:           "applied entries between raft snapshots",
}

// MustAgree are the flags every member should have the same value of:
// raft's timing. A member whose election timeout is shorter than its
// peers' heartbeats call elections they never needed.
var MustAgree = []string{ElectionTimeout, HeartbeatInterval}

// AgreementPrefix keeps, per flag of MustAgree, the value `config set`
// gave each member: AgreementPrefix + FLAG + "/" + MEMBER = VALUE (no key:
// the flag unset). Only the cluster can tell a node what the others were
// given: each node's manifest is its own.
const AgreementPrefix = "/kubectl-etcd/config/"

// etcd's defaults and limits for raft's timing, in milliseconds, and the
// quota etcd advises not to exceed.
const (
	DefaultHeartbeatInterval = 100
	DefaultElectionTimeout   = 1000
	MaxElectionTimeout       = 50000
	AdvisedMaxQuota          = 8 << 30
)

// Setting is one flag to set: its name without dashes and its value.
type Setting struct {
	Name  string
	Value string
}

// IsSettable says whether config set may change the flag name.
func IsSettable(name string) bool {
	i := sort.SearchStrings(Settable, name)
	return i < len(Settable) && Settable[i] == name
}

// ParseArg splits FLAG=VALUE, the flag with or without leading dashes,
// and checks the flag is settable and its value on its own.
func ParseArg(arg string) (Setting, error) {
	name, value, ok := strings.Cut(arg, "=")
	name = strings.TrimLeft(name, "-")
	if !ok || name == "" {
		return Setting{}, fmt.Errorf("%q is not FLAG=VALUE (for example quota-backend-bytes=8GiB)", arg)
	}
	v, err := Normalize(name, value)
	if err != nil {
		return Setting{}, err
	}
	return Setting{Name: name, Value: v}, nil
}

// Parse is ParseArg for every argument; a flag given twice is an error.
// The settings are sorted by name.
func Parse(args []string) ([]Setting, error) {
	seen := map[string]bool{}
	var out []Setting
	for _, a := range args {
		s, err := ParseArg(a)
		if err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("--%s is given twice", s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Normalize checks value as etcd would read flag name on its own, and
// returns it as it is to be written: a humanized quota (8GiB) becomes
// its number of bytes.
func Normalize(name, value string) (string, error) {
	if !IsSettable(name) {
		return "", fmt.Errorf("config set cannot change --%s; the flags it sets are %s", name, strings.Join(Settable, ", "))
	}
	if value == "" {
		return "", fmt.Errorf("--%s needs a value", name)
	}
	switch name {
	case QuotaBackendBytes:
		n, err := humanize.ParseBytes(value)
		if err != nil {
			return "", fmt.Errorf("--%s=%s is not a size in bytes (8589934592 or 8GiB)", name, value)
		}
		if n == 0 || n > math.MaxInt64 {
			return "", fmt.Errorf("--%s=%s: the quota must be a positive number of bytes", name, value)
		}
		return strconv.FormatUint(n, 10), nil
	case HeartbeatInterval, ElectionTimeout:
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil || n == 0 {
			return "", fmt.Errorf("--%s=%s: want a positive whole number of milliseconds", name, value)
		}
		if name == ElectionTimeout && n > MaxElectionTimeout {
			return "", fmt.Errorf("--%s=%s is over etcd's limit of %d milliseconds", name, value, MaxElectionTimeout)
		}
		return strconv.FormatUint(n, 10), nil
	case SnapshotCount, MaxRequestBytes:
		n, err := strconv.ParseUint(value, 10, 63)
		if err != nil || n == 0 {
			return "", fmt.Errorf("--%s=%s: want a positive whole number", name, value)
		}
		return strconv.FormatUint(n, 10), nil
	case AutoCompactionMode:
		if value != "periodic" && value != "revision" {
			return "", fmt.Errorf("--%s=%s: want periodic or revision", name, value)
		}
	case AutoCompactionRetention:
		if _, err := strconv.ParseUint(value, 10, 63); err != nil {
			if _, err := time.ParseDuration(value); err != nil {
				return "", fmt.Errorf("--%s=%s: want a whole number (hours, or revisions in revision mode) or a duration such as 30m", name, value)
			}
		}
	case ListenMetricsURLs:
		for _, s := range strings.Split(value, ",") {
			if err := checkMetricsURL(s); err != nil {
				return "", fmt.Errorf("--%s: %q %v", name, s, err)
			}
		}
	case FeatureGates:
		for _, kv := range strings.Split(value, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.TrimSpace(k) != k || (v != "true" && v != "false") {
				return "", fmt.Errorf("--%s: %q is not Name=true or Name=false", name, kv)
			}
			if err := knownGate(k); err != nil {
				return "", fmt.Errorf("--%s: %w", name, err)
			}
		}
	case LogLevel:
		switch value {
		case "debug", "info", "warn", "error", "panic", "fatal":
		default:
			return "", fmt.Errorf("--%s=%s: want debug, info, warn, error, panic or fatal", name, value)
		}
	}
	return value, nil
}

// knownGate refuses a feature gate etcd does not know, by the list of
// the newest release this tool is built with (a superset of the older
// ones'); etcd itself refuses to start on one ("unrecognized feature
// gate"), which a rolling change would find only at its gate.
func knownGate(name string) error {
	if name == "AllAlpha" || name == "AllBeta" {
		return nil
	}
	if _, ok := features.DefaultEtcdServerFeatureGates[featuregate.Feature(name)]; ok {
		return nil
	}
	var known []string
	for f := range features.DefaultEtcdServerFeatureGates {
		known = append(known, string(f))
	}
	sort.Strings(known)
	return fmt.Errorf("etcd has no feature gate %q; its gates are %s", name, strings.Join(known, ", "))
}

func checkMetricsURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("is not an http:// or https:// URL")
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return fmt.Errorf("has no host:port")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("must be scheme://host:port only")
	}
	return nil
}

// Check checks settings against the rest of the command line they join
// (current, the manifest's flags) and the etcd release that reads them
// (nil when the image names none): the election timeout against the
// heartbeat, the retention against the compaction mode, and feature
// gates on etcd 3.5, which takes --experimental-* flags instead (only
// the gates that have one can be set there). It returns warnings that do
// not refuse: a quota over what etcd advises, flags every member must
// share.
func Check(settings []Setting, current map[string]string, release *version.Version) (warnings []string, err error) {
	next := map[string]string{}
	for k, v := range current {
		next[k] = v
	}
	set := map[string]bool{}
	for _, s := range settings {
		next[s.Name] = s.Value
		set[s.Name] = true
	}
	if set[HeartbeatInterval] || set[ElectionTimeout] {
		hb, err := millis(next, HeartbeatInterval, DefaultHeartbeatInterval)
		if err != nil {
			return nil, err
		}
		el, err := millis(next, ElectionTimeout, DefaultElectionTimeout)
		if err != nil {
			return nil, err
		}
		if el < 5*hb {
			return nil, fmt.Errorf("--election-timeout=%d must be at least 5 times --heartbeat-interval=%d, so %d or more; etcd refuses to start otherwise", el, hb, 5*hb)
		}
	}
	if set[AutoCompactionRetention] || set[AutoCompactionMode] {
		if r, ok := next[AutoCompactionRetention]; ok && next[AutoCompactionMode] == "revision" {
			if _, err := strconv.ParseUint(r, 10, 63); err != nil {
				return nil, fmt.Errorf("--auto-compaction-retention=%s: in revision mode the retention is a whole number of revisions", r)
			}
		}
	}
	if set[FeatureGates] && release != nil && release.Major() == 3 && release.Minor() <= 5 {
		rest := upgrade.FlagChanges(map[string]string{FeatureGates: next[FeatureGates]}, release)[FeatureGates]
		if rest != "" {
			return nil, fmt.Errorf("etcd %s has no --feature-gates, and %s has no --experimental-* flag there to write instead; upgrade to 3.6 first", release, rest)
		}
		warnings = append(warnings, fmt.Sprintf("etcd %s has no --feature-gates: the gates are written as its --experimental-* flags", release))
	}
	if set[QuotaBackendBytes] {
		if q, err := strconv.ParseUint(next[QuotaBackendBytes], 10, 63); err == nil && q > AdvisedMaxQuota {
			warnings = append(warnings, fmt.Sprintf("--quota-backend-bytes=%d (%s) is over the 8 GiB etcd advises as the largest quota: a larger database makes snapshots, defragmentation and member catch-up slow", q, humanize.IBytes(q)))
		}
	}
	var agree []string
	for _, name := range MustAgree {
		if set[name] {
			agree = append(agree, "--"+name)
		}
	}
	if len(agree) > 0 {
		warnings = append(warnings, fmt.Sprintf("every member should have the same %s: run this command with the same values on every control-plane node", strings.Join(agree, " and ")))
	}
	return warnings, nil
}

// millis is a raft timing flag of flags, or etcd's default when absent.
func millis(flags map[string]string, name string, def uint64) (uint64, error) {
	v, ok := flags[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("the manifest has --%s=%s, not a positive number of milliseconds; set it too", name, v)
	}
	return n, nil
}
