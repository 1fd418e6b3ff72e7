// Command bench compares kubectl-etcd with etcdctl and etcdutl on the same
// data in the same run (make bench, make bench-smoke; docs/benchmarks.md).
//
// It starts a 3-member cluster of real etcd binaries on 127.0.0.1-3,
// writes the data sets (pods encoded by the project's own encoder, pods
// written one per revision whose history the watch rows replay, small
// keys, rewritten keys that leave a fragmented database), runs each
// comparison A, B, B, A, ... and prints medians, ratios and peak memory.
// It fails when a comparison cannot run, never because of a number.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/weed"
)

type options struct {
	etcdDir, plugin, workDir string
	pods, smallKeys          int
	listPods                 []int
	augerctl                 string
	fragmentBytes            int64
	reps, defragReps         int
	loadRate                 int
	watchEvents, watchRate   int
	watchPerTxn              int
	only                     string
	jsonOut                  string
	keep                     bool
	stopServingOnDefrag      bool
	weed, s3mem              string
}

func main() {
	var o options
	flag.StringVar(&o.etcdDir, "etcd-dir", "", "directory holding etcd, etcdctl and etcdutl (hack/build-etcd.sh prints it)")
	flag.StringVar(&o.plugin, "plugin", "bin/kubectl-etcd", "the kubectl-etcd binary to measure")
	flag.StringVar(&rusageHelper, "rusage", "bin/bench-rusage", "the helper that runs each measured command and reports its resource usage (hack/bench/rusage)")
	flag.StringVar(&o.workDir, "work-dir", "", "where the cluster and files go (default: a new temporary directory, removed at the end)")
	flag.IntVar(&o.pods, "pods", 100000, "pods written under /registry/pods")
	listPods := flag.String("list-pods", "20000", "comma-separated smaller pod counts the listings also run at, each written under /bench/pods-N/pods/ (the listings always run at -pods too)")
	flag.IntVar(&o.smallKeys, "small-keys", 1000000, "small keys written under "+smallPrefix)
	flag.Int64Var(&o.fragmentBytes, "fragment-bytes", 1<<30, "rewrite keys until the database is this large, then compact, leaving it fragmented")
	flag.IntVar(&o.reps, "reps", 3, "runs of each tool per comparison (alternating)")
	flag.IntVar(&o.defragReps, "defrag-reps", 1, "runs of each defragmentation (each on a freshly fragmented database)")
	flag.IntVar(&o.loadRate, "write-rate", 100, "writes per second of the load that runs during defragmentation")
	flag.IntVar(&o.watchEvents, "watch-events", 20000, "pods written one per revision under "+watchPrefix+"/pods/ for the watch rows, and events replayed")
	flag.IntVar(&o.watchRate, "watch-rate", watchTarget, "puts per second asked of the writers while watch -o text runs (watch-live)")
	flag.IntVar(&o.watchPerTxn, "watch-puts-per-txn", 1, "puts per transaction of those writers (watch-live; the replayed history is written one per revision only when it is 1)")
	flag.StringVar(&o.only, "only", "", "comma-separated comparisons to run (get-yaml,get-json,get-name,get-raw,watch,watch-live,stats,snapshot-save,snapshot-save-s3,get-snapshot,snapshot-restore,defrag; snapshot-save-s3-mem is the in-memory store's row of snapshot-save-s3 alone); default all")
	flag.StringVar(&o.weed, "weed", "", "SeaweedFS's weed binary, the S3 store of snapshot-save-s3 (default: hack/build-weed.sh builds or finds it)")
	flag.StringVar(&o.s3mem, "s3mem", "bin/bench-s3mem", "the in-memory S3 store of snapshot-save-s3 (hack/bench/s3mem, built by hack/bench.sh)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results to this file as JSON")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.BoolVar(&o.stopServingOnDefrag, "stop-serving-on-defrag", true, "start the members with --feature-gates=StopGRPCServiceOnDefrag=true (the write load's client checks health and avoids a defragmenting member)")
	writeLoadRate := flag.Int("write-load", 0, "internal: be the write-load process at this rate")
	writeBytesN := flag.Int64("write-bytes", 0, "internal: write this many bytes to standard output and exit (a listing's text written alone)")
	flag.Parse()
	o.augerctl = os.Getenv("AUGERCTL")
	for _, f := range strings.Split(*listPods, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n >= o.pods {
			fmt.Fprintf(os.Stderr, "error: -list-pods: %q is not a count of pods below -pods (%d)\n", f, o.pods)
			os.Exit(1)
		}
		o.listPods = append(o.listPods, n)
	}

	if *writeBytesN > 0 {
		if err := writeBytes(*writeBytesN); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	if *writeLoadRate > 0 {
		if err := runWriteLoad(*writeLoadRate); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := benchmark(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func (o options) wants(name string) bool {
	if o.only == "" {
		return true
	}
	for _, s := range strings.Split(o.only, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// row is one comparison's result.
type row struct {
	Name   string  `json:"name"`
	A      string  `json:"a"`
	B      string  `json:"b"`
	AWall  float64 `json:"aWallSeconds"`
	BWall  float64 `json:"bWallSeconds"`
	ACPU   float64 `json:"aCPUSeconds"`
	BCPU   float64 `json:"bCPUSeconds"`
	ARSS   int64   `json:"aPeakRSSBytes"`
	BRSS   int64   `json:"bPeakRSSBytes"`
	Ratio  float64 `json:"ratio"`
	Target string  `json:"target"`
	Met    string  `json:"met"`
	Runs   int     `json:"runs"`
	// Events is how many events each run of a watch row printed.
	Events int64 `json:"events,omitempty"`
}

// defragRow is one defragmentation under write load.
type defragRow struct {
	Tool       string    `json:"tool"`
	Wall       float64   `json:"wallSeconds"`
	PeakRSS    int64     `json:"peakRSSBytes"`
	Load       writeLoad `json:"writes"`
	Elections  uint64    `json:"leaderElections"`
	DBBefore   int64     `json:"dbBytesBefore"`
	DBAfter    int64     `json:"dbBytesAfter"`
	Reclaimed  int64     `json:"bytesReclaimed"`
	Fragmented int64     `json:"bytesFreeBefore"`
}

type results struct {
	Machine   string       `json:"machine"`
	Command   string       `json:"command"`
	Sizes     string       `json:"sizes"`
	Rows      []row        `json:"rows"`
	Listings  []listingCPU `json:"listings,omitempty"`
	WatchLive []watchLive  `json:"watchLive,omitempty"`
	Defrag    []defragRow  `json:"defrag,omitempty"`
	Duration  float64      `json:"durationSeconds"`
}

func benchmark(ctx context.Context, o options, out io.Writer) error {
	began := time.Now()
	if o.etcdDir == "" {
		return fmt.Errorf("--etcd-dir is required (hack/build-etcd.sh 3.7.3 prints it)")
	}
	etcdctl, etcdutl := filepath.Join(o.etcdDir, "etcdctl"), filepath.Join(o.etcdDir, "etcdutl")
	plugin, err := filepath.Abs(o.plugin)
	if err != nil {
		return err
	}
	if rusageHelper, err = filepath.Abs(rusageHelper); err != nil {
		return err
	}
	bins := []string{plugin, rusageHelper, etcdctl, etcdutl, filepath.Join(o.etcdDir, "etcd")}
	if o.wants("snapshot-save-s3") || o.wants("snapshot-save-s3-mem") {
		if o.s3mem, err = filepath.Abs(o.s3mem); err != nil {
			return err
		}
		bins = append(bins, o.s3mem)
	}
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
	}
	// The S3 store's build takes minutes on a fresh machine: before the
	// cluster, not after the data is loaded.
	if o.wants("snapshot-save-s3") && o.weed == "" {
		fmt.Fprintln(out, "== finding SeaweedFS's weed (hack/build-weed.sh)")
		if o.weed, err = weed.Build(); err != nil {
			return err
		}
	}
	work := o.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "kubectl-etcd-bench-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	// The tools measured run from copies, as a package manager installs
	// them. A binary the Go linker just wrote sits in the page cache in
	// huge pages (it writes through a mapping), and a process maps each
	// one whole: the plugin's `version` peaked at 88 MiB run from the
	// linker's file and at 60 MiB from a copy of the same bytes (kernel
	// 6.18, ext4, FilePmdMapped 64 MiB against 0 in
	// /proc/PID/smaps_rollup).
	for _, bin := range []*string{&plugin, &etcdctl, &etcdutl, &o.augerctl} {
		if *bin == "" {
			continue
		}
		if *bin, err = installCopy(*bin, filepath.Join(work, "bin")); err != nil {
			return err
		}
	}
	res := &results{Machine: machine(), Command: strings.Join(os.Args, " "),
		Sizes: fmt.Sprintf("%d pods, %d pods written one per revision for the watch rows, %d small keys, database fragmented to %d MiB; members stop serving while they defragment (StopGRPCServiceOnDefrag): %v", o.pods, o.watchEvents, o.smallKeys, o.fragmentBytes>>20, o.stopServingOnDefrag)}

	fmt.Fprintf(out, "== starting a 3-member cluster of etcd from %s in %s\n", o.etcdDir, work)
	c, err := startCluster(ctx, work, o.etcdDir, 16<<30, o.stopServingOnDefrag)
	if err != nil {
		return err
	}
	defer c.stop()
	env := c.env()

	addRow := func(name, target string, a, b tool, sa, sb sample, met func(float64, sample) bool) {
		r := row{Name: name, A: a.Name, B: b.Name, AWall: sa.wall(), BWall: sb.wall(), ACPU: sa.cpu(), BCPU: sb.cpu(),
			ARSS: sa.maxRSS(), BRSS: sb.maxRSS(), Target: target, Runs: len(sa), Ratio: sa.wall() / sb.wall(), Met: "-"}
		if met != nil {
			r.Met = map[bool]string{true: "yes", false: "no"}[met(r.Ratio, sa)]
		}
		res.Rows = append(res.Rows, r)
	}
	fmt.Fprintf(out, "== writing %d pods\n", o.pods)
	t := time.Now()
	podBytes, err := loadPods(ctx, c.cli, registryPrefix, o.pods)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   %d MiB of stored pods in %.1fs (%.1f KiB per pod)\n", podBytes>>20, time.Since(t).Seconds(), float64(podBytes)/float64(max(o.pods, 1))/1024)
	for _, n := range o.listPods {
		fmt.Fprintf(out, "== writing %d more pods under %s/pods/ for the listings of that size\n", n, listPrefix(o, n))
		if _, err := loadPods(ctx, c.cli, listPrefix(o, n), n); err != nil {
			return err
		}
	}
	// The watch rows replay history, which the fragmentation below
	// compacts away.
	if o.wants("watch") || o.wants("watch-live") {
		if err := watchRows(ctx, o, c, env, plugin, etcdctl, out, addRow, res); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "== writing %d small keys\n", o.smallKeys)
	t = time.Now()
	if _, err := loadSmall(ctx, c.cli, o.smallKeys); err != nil {
		return err
	}
	fmt.Fprintf(out, "   in %.1fs\n", time.Since(t).Seconds())
	fmt.Fprintf(out, "== rewriting keys until the database holds %d MiB, then compacting\n", o.fragmentBytes>>20)
	t = time.Now()
	churn, err := fragment(ctx, c, o.fragmentBytes, 0, out)
	if err != nil {
		return err
	}
	sts, err := c.status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   %d MiB rewritten in %.1fs; database %d MiB, %d MiB in use\n", churn>>20, time.Since(t).Seconds(), sts[0].DbSize>>20, sts[0].DbSizeInUse>>20)

	add := func(name, target string, a, b tool, met func(float64, sample) bool) error {
		fmt.Fprintf(out, "== %s\n", name)
		sa, sb, err := compare(ctx, env, o.reps, a, b, out)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		addRow(name, target, a, b, sa, sb, met)
		return nil
	}
	ratioAtMost := func(limit float64) func(float64, sample) bool {
		return func(r float64, _ sample) bool { return r <= limit }
	}

	// The listings of each size run in turn, reps rounds: etcdctl's fetch
	// of the range in one response, our own fetch (-o raw, which decodes
	// nothing), each format, and augerctl where AUGERCTL names it.
	const listRSS = 150 << 20
	sizes := append(append([]int{}, o.listPods...), o.pods)
	sort.Ints(sizes)
	for _, n := range sizes {
		if !o.wants("get-yaml") && !o.wants("get-json") && !o.wants("get-name") && !o.wants("get-raw") {
			break
		}
		if err := listingRows(ctx, o, env, n, plugin, etcdctl, out, addRow, res, listRSS); err != nil {
			return err
		}
	}
	if o.augerctl == "" && o.wants("get-yaml") {
		fmt.Fprintln(out, "   (augerctl's rows skipped: set AUGERCTL to its path to add them)")
	}
	if o.wants("stats") {
		const limit = 128 << 20
		err := add(fmt.Sprintf("stats over %d keys vs keys-only fetch", o.smallKeys), "peak RSS < 128 MiB",
			tool{Name: "kubectl-etcd stats", Args: []string{plugin, "stats", smallPrefix + "/"}},
			tool{Name: "etcdctl get --keys-only", Args: []string{etcdctl, "--command-timeout=10m", "get", "--prefix", smallPrefix + "/", "--keys-only"}},
			func(_ float64, sa sample) bool { return sa.maxRSS() < limit })
		if err != nil {
			return err
		}
	}

	// A snapshot of the first member, saved by both tools; later steps
	// read the one etcdctl saved.
	snapA, snapB := filepath.Join(work, "plugin.db"), filepath.Join(work, "etcdctl.db")
	endpoint := c.state.Members[0].ClientURL
	one := []string{"ETCDCTL_ENDPOINTS=" + endpoint}
	saveB := tool{Name: "etcdctl snapshot save", Args: []string{etcdctl, "--command-timeout=10m", "snapshot", "save", snapB}, Env: one, Before: removeAll(snapB)}
	if o.wants("snapshot-save") {
		saveA := tool{Name: "kubectl-etcd snapshot save", Args: []string{plugin, "snapshot", "save", snapA}, Env: one, Before: removeAll(snapA, snapA+".json")}
		err := add("snapshot save (time ratio; throughput = 1/ratio)", "throughput >= 0.95x",
			saveA, saveB, func(r float64, _ sample) bool { return 1/r >= 0.95 })
		if err != nil {
			return err
		}
	}
	if o.wants("snapshot-save-s3") || o.wants("snapshot-save-s3-mem") {
		if err := s3SaveRows(ctx, o, work, env, one, plugin, snapA, out, add); err != nil {
			return err
		}
	}
	if o.wants("get-snapshot") || o.wants("snapshot-restore") {
		if _, err := os.Stat(snapB); err != nil {
			if _, err := runOnce(ctx, env, saveB); err != nil {
				return err
			}
		}
		if st, err := os.Stat(snapB); err == nil {
			fmt.Fprintf(out, "   snapshot file: %d MiB\n", st.Size()>>20)
		}
	}
	if o.wants("get-snapshot") {
		err := add(fmt.Sprintf("list %d pods -o yaml: snapshot file vs live", o.pods), "<= 1.2, peak < 150 MiB",
			tool{Name: "kubectl-etcd get --snapshot -o yaml", Args: []string{plugin, "get", "/registry/pods/", "--prefix", "-o", "yaml", "--snapshot", snapB}},
			tool{Name: "kubectl-etcd get -o yaml (live)", Args: []string{plugin, "get", "/registry/pods/", "--prefix", "-o", "yaml"}},
			func(r float64, sa sample) bool { return r <= 1.2 && sa.maxRSS() < 150<<20 })
		if err != nil {
			return err
		}
	}
	if o.wants("snapshot-restore") {
		dirA, dirB := filepath.Join(work, "restore-plugin"), filepath.Join(work, "restore-etcdutl")
		member := []string{"--name=restored", "--initial-cluster=restored=https://127.0.0.1:2380", "--initial-advertise-peer-urls=https://127.0.0.1:2380"}
		err := add("snapshot restore", "<= 1.1",
			tool{Name: "kubectl-etcd snapshot restore", Args: append([]string{plugin, "snapshot", "restore", snapB, "--data-dir=" + dirA}, member...), Before: removeAll(dirA)},
			tool{Name: "etcdutl snapshot restore", Args: append([]string{etcdutl, "snapshot", "restore", snapB, "--data-dir=" + dirB, "--bump-revision=1000000000", "--mark-compacted"}, member...), Before: removeAll(dirB)},
			ratioAtMost(1.1))
		if err != nil {
			return err
		}
		os.RemoveAll(dirA)
		os.RemoveAll(dirB)
	}
	if !o.keep {
		os.Remove(snapA)
		os.Remove(snapA + ".json")
		os.Remove(snapB)
	}

	if o.wants("defrag") {
		defrags := []tool{
			{Name: "etcdctl defrag --cluster", Args: []string{etcdctl, "--command-timeout=10m", "defrag", "--cluster"}},
			{Name: "kubectl-etcd defrag --all", Args: []string{plugin, "defrag", "--all", "--yes"}},
		}
		for i := range 2 * o.defragReps {
			t := defrags[i%2]
			if i/2%2 == 1 {
				t = defrags[1-i%2]
			}
			if i > 0 {
				fmt.Fprintf(out, "== fragmenting again (%d MiB of rewrites, then compaction)\n", churn>>20)
				if _, err := fragment(ctx, c, 0, churn, io.Discard); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "== %s under %d writes/s\n", t.Name, o.loadRate)
			d, err := defragUnderLoad(ctx, c, env, t, o.loadRate)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "    %.1fs, %d of %d writes failed, p99 %s, %d elections, %d MiB reclaimed\n",
				d.Wall, d.Load.Failed, d.Load.Writes, d.Load.P99.Round(time.Millisecond), d.Elections, d.Reclaimed>>20)
			res.Defrag = append(res.Defrag, d)
		}
	}
	res.Duration = time.Since(began).Seconds()
	if l := loadAverage(); l != "" {
		res.Machine += ", " + l + " at the end"
	}
	fmt.Fprintln(out)
	writeTables(out, res)
	if o.jsonOut != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// listingRows runs the listings of the n pods under listPrefix(o, n) and
// adds their rows: each format against -o raw (the targets), -o raw
// against etcdctl's fetch, augerctl against the same format.
func listingRows(ctx context.Context, o options, env []string, n int, plugin, etcdctl string, out io.Writer,
	addRow func(name, target string, a, b tool, sa, sb sample, met func(float64, sample) bool), res *results, rssLimit int64) error {
	prefix := listPrefix(o, n) + "/pods/"
	get := func(format string) tool {
		return tool{Name: "kubectl-etcd get -o " + format, Args: []string{plugin, "get", prefix, "--prefix", "-o", format}}
	}
	fetch := tool{Name: "etcdctl get -w protobuf", Args: []string{etcdctl, "--command-timeout=10m", "get", "--prefix", prefix, "-w", "protobuf"}}
	raw := get("raw")
	tools := []tool{raw, fetch}
	type listing struct {
		format, target string
		limit          float64
		at             int
	}
	var listings []listing
	for _, l := range []listing{{format: "yaml", target: "<= 1.5", limit: 1.5}, {format: "json", target: "<= 1.2", limit: 1.2}, {format: "name", target: "<= 1.1", limit: 1.1}} {
		if o.wants("get-" + l.format) {
			l.at = len(tools)
			listings = append(listings, l)
			tools = append(tools, get(l.format))
		}
	}
	// augerctl lists resources under /registry only; it reads every pod
	// in one request when its chunk size covers them.
	augerAt := map[string]int{}
	if o.augerctl != "" && prefix == registryPrefix+"/pods/" {
		for _, format := range []string{"yaml", "json"} {
			if o.wants("get-" + format) {
				augerAt[format] = len(tools)
				tools = append(tools, tool{Name: "augerctl get pods -o " + format, Args: append([]string{o.augerctl, "get", "pods", "-A", "-o", format,
					"--chunk-size", strconv.Itoa(n + 1)}, augerctlTLS(env)...)})
			}
		}
	}
	fmt.Fprintf(out, "== list %d pods under %s: -o raw, etcdctl's fetch and each format in turn\n", n, prefix)
	samples, err := rotate(ctx, env, o.reps, tools, out)
	if err != nil {
		return fmt.Errorf("listing %d pods: %w", n, err)
	}
	for _, l := range listings {
		limit := l.limit
		met := func(r float64, sa sample) bool { return r <= limit && sa.maxRSS() < rssLimit }
		addRow(fmt.Sprintf("list %d pods -o %s vs -o raw", n, l.format), l.target+", peak < 150 MiB", tools[l.at], raw, samples[l.at], samples[0], met)
	}
	addRow(fmt.Sprintf("list %d pods -o raw vs etcdctl's fetch", n), "", raw, fetch, samples[0], samples[1], nil)
	if len(listings) > 0 {
		formats, formatSamples := []string{"raw"}, []sample{samples[0]}
		for _, l := range listings {
			formats, formatSamples = append(formats, l.format), append(formatSamples, samples[l.at])
		}
		cpu, err := listingFloors(ctx, env, o.reps, n, formats, formatSamples, out)
		if err != nil {
			return err
		}
		res.Listings = append(res.Listings, cpu...)
	}
	for _, l := range listings {
		if at, ok := augerAt[l.format]; ok {
			addRow(fmt.Sprintf("list %d pods: augerctl -o %s vs kubectl-etcd", n, l.format), "", tools[at], tools[l.at], samples[at], samples[l.at], nil)
		}
	}
	return nil
}

// augerctlTLS turns the ETCDCTL_* variables of env into augerctl's flags.
func augerctlTLS(env []string) []string {
	var args []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "ETCDCTL_ENDPOINTS":
			args = append(args, "--endpoints="+v)
		case "ETCDCTL_CACERT":
			args = append(args, "--cacert="+v)
		case "ETCDCTL_CERT":
			args = append(args, "--cert="+v)
		case "ETCDCTL_KEY":
			args = append(args, "--key="+v)
		}
	}
	return args
}

// defragUnderLoad runs one defragmentation while a separate process
// writes, and reports what the writes saw.
func defragUnderLoad(ctx context.Context, c *cluster, env []string, t tool, rate int) (defragRow, error) {
	d := defragRow{Tool: t.Name}
	before, err := c.status(ctx)
	if err != nil {
		return d, err
	}
	self, err := os.Executable()
	if err != nil {
		return d, err
	}
	load := exec.CommandContext(ctx, self, fmt.Sprintf("-write-load=%d", rate))
	load.Env = env
	var report strings.Builder
	load.Stdout, load.Stderr = &report, os.Stderr
	load.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := load.Start(); err != nil {
		return d, err
	}
	time.Sleep(2 * time.Second)
	r, runErr := runOnce(ctx, env, t)
	time.Sleep(2 * time.Second)
	_ = load.Process.Signal(syscall.SIGTERM)
	if err := load.Wait(); err != nil {
		return d, fmt.Errorf("the write load: %v", err)
	}
	if runErr != nil {
		return d, runErr
	}
	if err := json.Unmarshal([]byte(report.String()), &d.Load); err != nil {
		return d, fmt.Errorf("the write load's report %q: %w", report.String(), err)
	}
	after, err := c.status(ctx)
	if err != nil {
		return d, err
	}
	d.Wall, d.PeakRSS = r.Wall.Seconds(), r.MaxRSS
	var termBefore, termAfter uint64
	for i := range before {
		termBefore = max(termBefore, before[i].RaftTerm)
		termAfter = max(termAfter, after[i].RaftTerm)
		d.DBBefore += before[i].DbSize
		d.DBAfter += after[i].DbSize
		d.Fragmented += before[i].DbSize - before[i].DbSizeInUse
	}
	d.Elections = termAfter - termBefore
	d.Reclaimed = d.DBBefore - d.DBAfter
	return d, nil
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if l := loadAverage(); l != "" {
		load = ", load average " + l + " at the start"
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s%s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, load)
}

// loadAverage is the 1, 5 and 15 minute load average, "" when unknown.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func writeTables(out io.Writer, res *results) {
	fmt.Fprintf(out, "Machine: %s\nData: %s\nDuration: %.0fs\n\n", res.Machine, res.Sizes, res.Duration)
	if len(res.Rows) > 0 {
		fmt.Fprintln(out, "| comparison | A | B | A median | B median | A/B | target | met | A CPU | B CPU | A peak RSS | B peak RSS |")
		fmt.Fprintln(out, "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
		for _, r := range res.Rows {
			fmt.Fprintf(out, "| %s | %s | %s | %.2fs | %.2fs | %.2f | %s | %s | %.2fs | %.2fs | %s | %s |\n",
				r.Name, r.A, r.B, r.AWall, r.BWall, r.Ratio, r.Target, r.Met, r.ACPU, r.BCPU, mib(r.ARSS), mib(r.BRSS))
		}
		fmt.Fprintln(out)
	}
	if len(res.Listings) > 0 {
		// Each listing's CPU, the machine's and the reader's, and what
		// its text costs written alone: the floor of the ratio to -o raw
		// at no rendering cost (listingFloors).
		fmt.Fprintln(out, "| listing | wall | command CPU | machine CPU | machine busy | reader CPU | output | text alone: wall | text alone: CPU | floor vs -o raw |")
		fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, l := range res.Listings {
			floor := "-"
			if l.Floor > 0 {
				floor = fmt.Sprintf("%.2f", l.Floor)
			}
			fmt.Fprintf(out, "| %s | %.2fs | %.2fs | %.2fs | %.0f%% | %.2fs | %s | %.2fs | %.2fs | %s |\n", l.Listing, l.Wall, l.Command, l.Machine,
				100*l.Machine/(float64(runtime.NumCPU())*l.Wall), l.Reader, mib(l.Out), l.AloneWall, l.AloneCPU, floor)
		}
		fmt.Fprintln(out)
	}
	var replays []row
	for _, r := range res.Rows {
		if r.Events > 0 {
			replays = append(replays, r)
		}
	}
	if len(replays) > 0 {
		// Events per CPU-second is what the client could take on one
		// core; events per second is also bounded by how fast etcd
		// replays its history.
		fmt.Fprintln(out, "| watch replay | events | A | A events/s | A events/CPU-s | B | B events/s | B events/CPU-s | target | met |")
		fmt.Fprintln(out, "| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | --- | --- |")
		for _, r := range replays {
			n := float64(r.Events)
			fmt.Fprintf(out, "| %s | %d | %s | %.0f | %.0f | %s | %.0f | %.0f | %s | %s |\n", r.Name, r.Events,
				r.A, n/r.AWall, n/r.ACPU, r.B, n/r.BWall, n/r.BCPU, r.Target, r.Met)
		}
		fmt.Fprintln(out)
	}
	if len(res.WatchLive) > 0 {
		fmt.Fprintln(out, "| watch -o text while writing | puts | asked | reached | events printed | after the last put | kept up | CPU | peak RSS |")
		fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
		for _, w := range res.WatchLive {
			fmt.Fprintf(out, "| %d put(s) per revision, 32 writers | %d | %d/s | %.0f/s | %d | %.2fs | %s | %.2fs | %s |\n",
				w.PerRevision, w.Written, w.Rate, w.WriteRate, w.Received, w.Lag, w.KeptUp, w.CPU, mib(w.PeakRSS))
		}
		fmt.Fprintln(out)
	}
	if len(res.Defrag) > 0 {
		fmt.Fprintln(out, "| defragmentation under write load | time | writes | failed | p50 | p99 | max | elections | free before | reclaimed | peak RSS |")
		fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, d := range res.Defrag {
			fmt.Fprintf(out, "| %s | %.1fs | %d | %d | %s | %s | %s | %d | %s | %s | %s |\n", d.Tool, d.Wall, d.Load.Writes, d.Load.Failed,
				d.Load.P50.Round(time.Millisecond), d.Load.P99.Round(time.Millisecond), d.Load.Max.Round(time.Millisecond), d.Elections, mib(d.Fragmented), mib(d.Reclaimed), mib(d.PeakRSS))
		}
		fmt.Fprintln(out)
	}
}

// installCopy copies the executable bin into dir, as an installer writes
// it, and returns the copy's path.
func installCopy(bin, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer src.Close()
	to := filepath.Join(dir, filepath.Base(bin))
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", fmt.Errorf("copying %s: %w", bin, err)
	}
	return to, dst.Close()
}
