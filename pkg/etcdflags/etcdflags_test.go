package etcdflags

import (
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/version"
)

func TestSettableIsSorted(t *testing.T) {
	if !sort.StringsAreSorted(Settable) {
		t.Fatalf("Settable is not sorted, IsSettable's binary search misses: %v", Settable)
	}
	for _, name := range Settable {
		if !IsSettable(name) {
			t.Errorf("IsSettable(%q) = false", name)
		}
	}
}

func TestParseArg(t *testing.T) {
	for _, tt := range []struct {
		arg, name, value, err string
	}{
		// Accepted forms.
		{arg: "quota-backend-bytes=8589934592", name: "quota-backend-bytes", value: "8589934592"},
		{arg: "--quota-backend-bytes=8589934592", name: "quota-backend-bytes", value: "8589934592"},
		{arg: "-quota-backend-bytes=2147483648", name: "quota-backend-bytes", value: "2147483648"},
		{arg: "quota-backend-bytes=8GiB", name: "quota-backend-bytes", value: "8589934592"},
		{arg: "quota-backend-bytes=8 GiB", name: "quota-backend-bytes", value: "8589934592"},
		{arg: "quota-backend-bytes=2GB", name: "quota-backend-bytes", value: "2000000000"},
		{arg: "quota-backend-bytes=1.5GiB", name: "quota-backend-bytes", value: "1610612736"},
		{arg: "heartbeat-interval=250", name: "heartbeat-interval", value: "250"},
		{arg: "election-timeout=50000", name: "election-timeout", value: "50000"},
		{arg: "snapshot-count=10000", name: "snapshot-count", value: "10000"},
		{arg: "max-request-bytes=1572864", name: "max-request-bytes", value: "1572864"},
		{arg: "auto-compaction-mode=revision", name: "auto-compaction-mode", value: "revision"},
		{arg: "auto-compaction-retention=8", name: "auto-compaction-retention", value: "8"},
		{arg: "auto-compaction-retention=30m", name: "auto-compaction-retention", value: "30m"},
		{arg: "listen-metrics-urls=http://127.0.0.1:2381", name: "listen-metrics-urls", value: "http://127.0.0.1:2381"},
		{arg: "listen-metrics-urls=http://127.0.0.1:2381,https://[::1]:2382/", name: "listen-metrics-urls", value: "http://127.0.0.1:2381,https://[::1]:2382/"},
		{arg: "feature-gates=InitialCorruptCheck=true,StopGRPCServiceOnDefrag=false", name: "feature-gates", value: "InitialCorruptCheck=true,StopGRPCServiceOnDefrag=false"},
		{arg: "log-level=warn", name: "log-level", value: "warn"},
		// Refusals, each with its reason.
		{arg: "quota-backend-bytes", err: `"quota-backend-bytes" is not FLAG=VALUE`},
		{arg: "=8GiB", err: `"=8GiB" is not FLAG=VALUE`},
		{arg: "--=1", err: `"--=1" is not FLAG=VALUE`},
		{arg: "data-dir=/tmp", err: "config set cannot change --data-dir; the flags it sets are auto-compaction-mode, auto-compaction-retention, election-timeout, feature-gates, heartbeat-interval, listen-metrics-urls, log-level, max-request-bytes, quota-backend-bytes, snapshot-count"},
		{arg: "quota-backend-bytes=", err: "--quota-backend-bytes needs a value"},
		{arg: "quota-backend-bytes=lots", err: "--quota-backend-bytes=lots is not a size in bytes"},
		{arg: "quota-backend-bytes=-1", err: "--quota-backend-bytes=-1 is not a size in bytes"},
		{arg: "quota-backend-bytes=0", err: "the quota must be a positive number of bytes"},
		{arg: "quota-backend-bytes=100EiB", err: "quota-backend-bytes=100EiB"},
		{arg: "heartbeat-interval=0", err: "--heartbeat-interval=0: want a positive whole number of milliseconds"},
		{arg: "heartbeat-interval=100ms", err: "--heartbeat-interval=100ms: want a positive whole number of milliseconds"},
		{arg: "election-timeout=-5", err: "--election-timeout=-5: want a positive whole number of milliseconds"},
		{arg: "election-timeout=50001", err: "--election-timeout=50001 is over etcd's limit of 50000 milliseconds"},
		{arg: "snapshot-count=0", err: "--snapshot-count=0: want a positive whole number"},
		{arg: "max-request-bytes=1.5MiB", err: "--max-request-bytes=1.5MiB: want a positive whole number"},
		{arg: "auto-compaction-mode=hourly", err: "--auto-compaction-mode=hourly: want periodic or revision"},
		{arg: "auto-compaction-retention=soon", err: "--auto-compaction-retention=soon: want a whole number"},
		{arg: "listen-metrics-urls=127.0.0.1:2381", err: `--listen-metrics-urls: "127.0.0.1:2381" is not an http:// or https:// URL`},
		{arg: "listen-metrics-urls=unix://x:1", err: `"unix://x:1" is not an http:// or https:// URL`},
		{arg: "listen-metrics-urls=http://127.0.0.1", err: `"http://127.0.0.1" has no host:port`},
		{arg: "listen-metrics-urls=http://127.0.0.1:2381,", err: `"" is not an http:// or https:// URL`},
		{arg: "listen-metrics-urls=http://127.0.0.1:2381/metrics", err: "must be scheme://host:port only"},
		{arg: "feature-gates=InitialCorruptCheck", err: `--feature-gates: "InitialCorruptCheck" is not Name=true or Name=false`},
		{arg: "feature-gates=InitialCorruptCheck=yes", err: `"InitialCorruptCheck=yes" is not Name=true or Name=false`},
		{arg: "feature-gates=InitialCorruptCheck=true,,CompactHashCheck=false", err: `"" is not Name=true or Name=false`},
		{arg: "feature-gates=StopGrpcServiceOnDefrag=true", err: `--feature-gates: etcd has no feature gate "StopGrpcServiceOnDefrag"; its gates are CompactHashCheck, `},
		{arg: "log-level=verbose", err: "--log-level=verbose: want debug, info, warn, error, panic or fatal"},
	} {
		t.Run(tt.arg, func(t *testing.T) {
			s, err := ParseArg(tt.arg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseArg(%q) = %+v, %v; want error %q", tt.arg, s, err, tt.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil || s.Name != tt.name || s.Value != tt.value {
				t.Fatalf("ParseArg(%q) = %+v, %v; want %s=%s", tt.arg, s, err, tt.name, tt.value)
			}
		})
	}
}

func TestParseSortsAndRefusesDuplicates(t *testing.T) {
	got, err := Parse([]string{"log-level=info", "--election-timeout=1500"})
	if err != nil || len(got) != 2 || got[0].Name != "election-timeout" || got[1].Name != "log-level" {
		t.Fatalf("Parse = %+v, %v; want sorted election-timeout, log-level", got, err)
	}
	if _, err := Parse([]string{"log-level=info", "--log-level=warn"}); err == nil || err.Error() != "--log-level is given twice" {
		t.Fatalf("Parse of a flag given twice = %v", err)
	}
}

func TestCheck(t *testing.T) {
	v35, v36 := version.MustParseGeneric("3.5.35"), version.MustParseGeneric("3.6.16")
	kubeadm := map[string]string{"name": "cp-1", "feature-gates": "InitialCorruptCheck=true"}
	for _, tt := range []struct {
		name     string
		set      []Setting
		current  map[string]string
		release  *version.Version
		err      string
		warnings []string
	}{
		{name: "election at 5x the default heartbeat", set: []Setting{{ElectionTimeout, "500"}}, current: kubeadm,
			warnings: []string{"every member should have the same --election-timeout"}},
		{name: "election under 5x the default heartbeat", set: []Setting{{ElectionTimeout, "499"}}, current: kubeadm,
			err: "--election-timeout=499 must be at least 5 times --heartbeat-interval=100, so 500 or more"},
		{name: "heartbeat against the default election", set: []Setting{{HeartbeatInterval, "201"}}, current: kubeadm,
			err: "--election-timeout=1000 must be at least 5 times --heartbeat-interval=201, so 1005 or more"},
		{name: "heartbeat against the manifest's election", set: []Setting{{HeartbeatInterval, "300"}}, current: map[string]string{"election-timeout": "1200"},
			err: "--election-timeout=1200 must be at least 5 times --heartbeat-interval=300"},
		{name: "election against the manifest's heartbeat", set: []Setting{{ElectionTimeout, "2500"}}, current: map[string]string{"heartbeat-interval": "500"},
			warnings: []string{"every member should have the same --election-timeout: run this command with the same values on every control-plane node"}},
		{name: "both at once", set: []Setting{{ElectionTimeout, "2500"}, {HeartbeatInterval, "500"}}, current: map[string]string{"heartbeat-interval": "100", "election-timeout": "1000"},
			warnings: []string{"every member should have the same --election-timeout and --heartbeat-interval"}},
		{name: "manifest's heartbeat unreadable", set: []Setting{{ElectionTimeout, "2500"}}, current: map[string]string{"heartbeat-interval": "fast"},
			err: "the manifest has --heartbeat-interval=fast, not a positive number of milliseconds; set it too"},
		{name: "revision mode needs a count", set: []Setting{{AutoCompactionMode, "revision"}}, current: map[string]string{"auto-compaction-retention": "1h"},
			err: "--auto-compaction-retention=1h: in revision mode the retention is a whole number of revisions"},
		{name: "periodic takes a duration", set: []Setting{{AutoCompactionMode, "periodic"}, {AutoCompactionRetention, "1h"}}, current: kubeadm},
		{name: "quota at the advice", set: []Setting{{QuotaBackendBytes, "8589934592"}}, current: kubeadm},
		{name: "quota over the advice", set: []Setting{{QuotaBackendBytes, "8589934593"}}, current: kubeadm,
			warnings: []string{"--quota-backend-bytes=8589934593 (8.0 GiB) is over the 8 GiB etcd advises"}},
		{name: "gates on 3.6", set: []Setting{{FeatureGates, "StopGRPCServiceOnDefrag=true"}}, current: kubeadm, release: v36},
		{name: "gates 3.5 has as flags", set: []Setting{{FeatureGates, "InitialCorruptCheck=true,CompactHashCheck=true"}}, current: kubeadm, release: v35,
			warnings: []string{"etcd 3.5.35 has no --feature-gates: the gates are written as its --experimental-* flags"}},
		{name: "a gate 3.5 lacks", set: []Setting{{FeatureGates, "InitialCorruptCheck=true,SomethingNew=true"}}, current: kubeadm, release: v35,
			err: "etcd 3.5.35 has no --feature-gates, and SomethingNew=true has no --experimental-* flag there to write instead; upgrade to 3.6 first"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			warnings, err := Check(tt.set, tt.current, tt.release)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Check = %v; want error %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check = %v", err)
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %q", warnings, tt.warnings)
			}
			for i := range warnings {
				if !strings.Contains(warnings[i], tt.warnings[i]) {
					t.Errorf("warning %q, want %q", warnings[i], tt.warnings[i])
				}
			}
		})
	}
}
