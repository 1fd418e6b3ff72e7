package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/kubectl-etcd/kubectl-etcd/internal/proc"
	"github.com/kubectl-etcd/kubectl-etcd/internal/s3bucket"
	"github.com/kubectl-etcd/kubectl-etcd/internal/weed"
)

// The bucket and prefix the s3:// snapshot saves go to.
const (
	s3Bucket = "bench"
	s3Prefix = "snapshots/"
)

// s3Store is an S3 store the s3:// saves go to.
type s3Store struct {
	// Name names it in the report ("weed").
	Name string
	// PID is its process: the rows read its CPU time and pin it.
	PID int
	// Env are the variables that point the plugin at it (endpoint, keys).
	Env []string
	// Empty removes every object and unfinished upload under s3Prefix.
	Empty func() error
}

// s3Rows adds the rows of snapshot saves into an S3 store, each against a
// save of the same member to a file.
type s3Rows struct {
	ctx          context.Context
	env, one     []string
	plugin, file string
	out          io.Writer
	add          func(name, target string, a, b tool, met func(float64, sample) bool) error
}

// s3SaveRows compares snapshot saves into S3 stores with saves to a file,
// of the same member. The stores run on this machine, plain HTTP on
// 127.0.0.1, and every run starts with an empty bucket.
//
// SeaweedFS's weed (requests signed with the keys it is started with, its
// data on the same disk as the file's) adds three rows (-only
// snapshot-save-s3). In the first, every process shares the machine's
// cores, so the store's own work (weed spends about twice the plugin's
// CPU on each byte) slows the client as a remote store would not. In the
// second (on two or more cores), weed is pinned to CPU 0 and both saves
// to CPU 1 (taskset), so the client has a core of its own, as it has
// beside a store on another machine; the etcd members are not pinned. The
// third measures the memory of a compressed, encrypted save.
//
// The in-memory store of hack/bench/s3mem (gofakes3, which checks neither
// signatures nor checksums) adds one more, unpinned (also alone with
// -only snapshot-save-s3-mem): how close the plugin comes to the file save
// when the store costs little CPU.
func s3SaveRows(ctx context.Context, o options, work string, env, one []string, plugin, file string, out io.Writer,
	add func(name, target string, a, b tool, met func(float64, sample) bool) error) error {
	r := &s3Rows{ctx: ctx, env: env, one: one, plugin: plugin, file: file, out: out, add: add}
	if o.wants("snapshot-save-s3") {
		if err := r.weedRows(o, work); err != nil {
			return err
		}
	}
	return r.memRow(o, work)
}

// weedRows runs the rows against SeaweedFS's weed.
func (r *s3Rows) weedRows(o options, work string) error {
	dir := filepath.Join(work, "weed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	creds := &weed.Credentials{AccessKey: "AKIDKUBECTLETCDBENCH", SecretKey: "kubectl-etcd-bench-secret"}
	// Deleted objects stay in weed's volumes until it compacts them: room
	// for 400 volumes of 64 MiB (25 GiB, written only as needed) holds
	// every run of the three rows on a 1 GiB database (200 ran out in the
	// third row: "InternalError" on a part).
	srv, err := weed.Start(o.weed, dir, creds, "-volume.max", "400")
	if err != nil {
		return err
	}
	defer srv.Stop()
	if err := srv.CreateBucket(r.ctx, s3Bucket); err != nil {
		return fmt.Errorf("creating bucket %s: %w", s3Bucket, err)
	}
	st := s3Store{Name: "weed", PID: srv.PID(),
		Env:   append(s3Env(dir, srv.Endpoint), "AWS_ACCESS_KEY_ID="+creds.AccessKey, "AWS_SECRET_ACCESS_KEY="+creds.SecretKey),
		Empty: func() error { return srv.Empty(r.ctx, s3Bucket, s3Prefix) }}
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	if err := r.row(st, "snapshot save to s3:// vs to a file, unpinned (time ratio; throughput = 1/ratio)", all, "", nil, false); err != nil {
		return err
	}
	if runtime.NumCPU() >= 2 {
		if err := r.row(st, "snapshot save to s3:// vs to a file, weed on CPU 0, saves on CPU 1 (time ratio; throughput = 1/ratio)", "0", "1", nil, false); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(r.out, "   (the pinned row needs two CPUs)")
	}
	// The memory of a save that compresses and encrypts as it streams
	// (the CronJob's form): the encoder's buffers come on top of the parts.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	return r.row(st, "snapshot save --compress zstd to s3:// (encrypted) vs to a file, unpinned", all, "",
		[]string{"--compress", "zstd", "--encrypt-to", id.Recipient().String()}, true)
}

// memRow runs the row against the in-memory store.
func (r *s3Rows) memRow(o options, work string) error {
	srv, err := startMemStore(o.s3mem, s3Bucket)
	if err != nil {
		return err
	}
	defer srv.stop()
	// The store checks no signature; the SDK still signs, so it needs keys.
	st := s3Store{Name: "the in-memory store", PID: srv.cmd.Process.Pid,
		Env: append(s3Env(work, srv.endpoint), "AWS_ACCESS_KEY_ID=AKIDKUBECTLETCDBENCH", "AWS_SECRET_ACCESS_KEY=kubectl-etcd-bench-secret"),
		Empty: func() error {
			return s3bucket.Empty(r.ctx, s3bucket.Client(srv.endpoint, "any", "any", nil), s3Bucket, s3Prefix)
		}}
	return r.row(st, "snapshot save to s3:// (in-memory store) vs to a file, unpinned (time ratio; throughput = 1/ratio)",
		fmt.Sprintf("0-%d", runtime.NumCPU()-1), "", nil, false)
}

// s3Env is the environment of a save into the store at endpoint, apart
// from its keys: nothing from this machine's AWS files (dir holds none),
// no instance metadata.
func s3Env(dir, endpoint string) []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + endpoint, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// row adds one comparison: the save into st and the file save with extra
// flags, st on storeCPUs, both saves on pluginCPU ("": unpinned); met
// judges throughput unless memoryOnly. It prints the store's CPU per
// measured save.
func (r *s3Rows) row(st s3Store, name, storeCPUs, pluginCPU string, extra []string, memoryOnly bool) error {
	// storeCPU is the store's CPU over the measured s3 saves of the row:
	// /proc/PID/stat read as each starts (after the bucket is emptied) and
	// before whatever runs next.
	var storeCPU time.Duration
	saves, start := 0, time.Duration(-1)
	stopCount := func() {
		if now, err := procCPU(st.PID); err == nil && start >= 0 {
			storeCPU += now - start
		}
		start = -1
	}
	empty := func() error {
		stopCount()
		if err := st.Empty(); err != nil {
			return err
		}
		if now, err := procCPU(st.PID); err == nil {
			start = now
			saves++
		}
		return nil
	}
	pinned := func(cpu string, args []string) []string {
		if cpu == "" {
			return args
		}
		return append([]string{"taskset", "-c", cpu}, args...)
	}
	if err := exec.CommandContext(r.ctx, "taskset", "-a", "-p", "-c", storeCPUs, strconv.Itoa(st.PID)).Run(); err != nil {
		return fmt.Errorf("pinning %s to CPUs %s: %w", st.Name, storeCPUs, err)
	}
	// The row's name says RECIPIENT where the command has the key: the
	// name goes into docs/benchmarks.md, a throwaway key would only be noise.
	var named []string
	for i, a := range extra {
		if i > 0 && extra[i-1] == "--encrypt-to" {
			a = "RECIPIENT"
		}
		named = append(named, a)
	}
	flags := strings.Join(named, " ")
	if flags != "" {
		flags = " " + flags
	}
	url := "s3://" + s3Bucket + "/" + s3Prefix
	toS3 := tool{Name: "kubectl-etcd snapshot save s3://" + flags, Args: pinned(pluginCPU, append([]string{r.plugin, "snapshot", "save", url, "--s3-path-style"}, extra...)),
		Env: append(append([]string{}, r.one...), st.Env...), Before: empty}
	// A store's first writes may set it up (weed creates its volumes, for
	// seconds): one save before the measured ones.
	if _, err := runOnce(r.ctx, r.env, toS3); err != nil {
		return fmt.Errorf("a first save into %s: %w", st.Name, err)
	}
	storeCPU, saves, start = 0, 0, -1
	const rssLimit = 150 << 20
	target := "throughput >= 0.9x, peak < 150 MiB"
	met := func(r float64, sa sample) bool { return 1/r >= 0.9 && sa.maxRSS() < rssLimit }
	if memoryOnly {
		target = "peak < 150 MiB"
		met = func(_ float64, sa sample) bool { return sa.maxRSS() < rssLimit }
	}
	// The file save compresses as the s3 save does; encryption is the
	// s3 save's alone (a file save encrypts only into a directory).
	var fileExtra []string
	for i := 0; i < len(extra); i++ {
		if extra[i] == "--encrypt-to" {
			i++
			continue
		}
		fileExtra = append(fileExtra, extra[i])
	}
	fileFlags := strings.Join(fileExtra, " ")
	if fileFlags != "" {
		fileFlags = " " + fileFlags
	}
	err := r.add(name, target,
		toS3,
		tool{Name: "kubectl-etcd snapshot save FILE" + fileFlags, Args: pinned(pluginCPU, append([]string{r.plugin, "snapshot", "save", r.file}, fileExtra...)), Env: r.one, Before: func() error {
			stopCount()
			return removeAll(r.file, r.file+".json")()
		}},
		met)
	if err != nil {
		return err
	}
	stopCount()
	if saves > 0 {
		fmt.Fprintf(r.out, "    %s's CPU: %.2fs per s3 save (mean of %d)\n", st.Name, storeCPU.Seconds()/float64(saves), saves)
	}
	return st.Empty()
}

// memStore is the in-memory store of hack/bench/s3mem, running.
type memStore struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	endpoint string
	errOut   *strings.Builder
}

// startMemStore runs the in-memory store program bin with bucket created
// and waits for the endpoint it prints.
func startMemStore(bin, bucket string) (*memStore, error) {
	cmd := exec.Command(bin, "-bucket", bucket)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &memStore{cmd: cmd, exited: make(chan struct{}), errOut: &strings.Builder{}}
	cmd.Stderr = &limitedWriter{w: s.errOut, n: 4096}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(s.exited)
	}()
	select {
	case line, ok := <-lines:
		if ok && strings.HasPrefix(line, "http://") {
			s.endpoint = line
			return s, nil
		}
		s.stop()
		return nil, fmt.Errorf("%s printed no endpoint (%q): %s", bin, line, s.errOut.String())
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s printed no endpoint in 30s: %s", bin, s.errOut.String())
	}
}

func (s *memStore) stop() { proc.Stop(s.cmd.Process, s.exited) }

// procCPU is a process's user and system time so far (/proc/PID/stat),
// its threads included.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count after its ")".
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	// USER_HZ is 100 on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
