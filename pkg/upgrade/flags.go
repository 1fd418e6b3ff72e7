package upgrade

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// renamedGates are the experimental flags of etcd 3.5 that became feature
// gates in 3.6 (and are gone in 3.7): the flag, and the gate it became.
var renamedGates = map[string]string{
	"experimental-initial-corrupt-check":             "InitialCorruptCheck",
	"experimental-compact-hash-check-enabled":        "CompactHashCheck",
	"experimental-txn-mode-write-with-shared-buffer": "TxnModeWriteWithSharedBuffer",
	"experimental-stop-grpc-service-on-defrag":       "StopGRPCServiceOnDefrag",
}

// renamedFlags are the experimental flags of etcd 3.5 that lost their
// prefix in 3.6 (and are gone in 3.7): the 3.5 name, and the new one.
var renamedFlags = map[string]string{
	"experimental-watch-progress-notify-interval": "watch-progress-notify-interval",
	"experimental-warning-apply-duration":         "warning-apply-duration",
	"experimental-snapshot-catchup-entries":       "snapshot-catchup-entries",
	"experimental-compaction-batch-limit":         "compaction-batch-limit",
}

// FlagChanges are the etcd flags of a manifest to change so that release
// target accepts them: 3.6 and later take --feature-gates=Gate=true where
// 3.5 took --experimental-*=true, and 3.5 knows no --feature-gates. It
// maps a flag name to its new value; an empty value removes the flag.
func FlagChanges(flags map[string]string, target *version.Version) map[string]string {
	out := map[string]string{}
	gates := parseGates(flags["feature-gates"])
	old := target.Major() == 3 && target.Minor() <= 5
	for oldName, newName := range renamedFlags {
		from, to := oldName, newName
		if old {
			from, to = newName, oldName
		}
		if v, ok := flags[from]; ok {
			out[from], out[to] = "", v
		}
	}
	if old {
		if len(gates) == 0 {
			return out
		}
		for flag, gate := range renamedGates {
			if v, ok := gates[gate]; ok {
				out[flag] = v
				delete(gates, gate)
			}
		}
		out["feature-gates"] = formatGates(gates)
		return out
	}
	changed := false
	for flag, gate := range renamedGates {
		if v, ok := flags[flag]; ok {
			if _, set := gates[gate]; !set {
				gates[gate] = v
			}
			out[flag] = ""
			changed = true
		}
	}
	if changed {
		out["feature-gates"] = formatGates(gates)
	}
	return out
}

func parseGates(s string) map[string]string {
	gates := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k != "" {
			gates[k] = v
		}
	}
	return gates
}

func formatGates(gates map[string]string) string {
	var parts []string
	for k, v := range gates {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
