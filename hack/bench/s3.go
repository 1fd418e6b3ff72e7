package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/kubectl-etcd/kubectl-etcd/internal/weed"
)

// The bucket and prefix the s3:// snapshot saves go to.
const (
	s3Bucket = "bench"
	s3Prefix = "snapshots/"
)

// s3SaveRow compares a snapshot save into an S3 store with a save to a
// file, of the same member: SeaweedFS's weed on 127.0.0.1 (plain HTTP,
// requests signed with the keys it is started with), its data on the
// same disk as the file's. Every run starts with an empty bucket.
//
// It adds two rows. In the first, every process shares the machine's
// cores, so the store's own work (weed spends about twice the plugin's
// CPU on each byte) slows the client as a remote store would not. In the
// second (on two or more cores), weed is pinned to CPU 0 and both saves
// to CPU 1 (taskset), so the client has a core of its own, as it has
// beside a store on another machine; the etcd members are not pinned.
func s3SaveRow(ctx context.Context, o options, work string, env, one []string, plugin, file string, out io.Writer,
	add func(name, target string, a, b tool, met func(float64, sample) bool) error) error {
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
	if err := srv.CreateBucket(ctx, s3Bucket); err != nil {
		return fmt.Errorf("creating bucket %s: %w", s3Bucket, err)
	}
	s3env := append(append([]string{}, one...),
		"AWS_ACCESS_KEY_ID="+creds.AccessKey, "AWS_SECRET_ACCESS_KEY="+creds.SecretKey,
		"AWS_ENDPOINT_URL_S3="+srv.Endpoint, "AWS_REGION=us-east-1",
		// Nothing from this machine's AWS files, no instance metadata.
		"AWS_CONFIG_FILE="+filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
	url := "s3://" + s3Bucket + "/" + s3Prefix
	// weedCPU is the store's CPU over the measured s3 saves of a row:
	// /proc/PID/stat read as each starts (after the bucket is emptied) and
	// before whatever runs next.
	var weedCPU time.Duration
	saves, start := 0, time.Duration(-1)
	stopCount := func() {
		if now, err := procCPU(srv.PID()); err == nil && start >= 0 {
			weedCPU += now - start
		}
		start = -1
	}
	empty := func() error {
		stopCount()
		if err := srv.Empty(ctx, s3Bucket, s3Prefix); err != nil {
			return err
		}
		if now, err := procCPU(srv.PID()); err == nil {
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
	// row adds one comparison: the s3 save and the file save with extra
	// flags, weed on weedCPUs, both saves on pluginCPU ("": unpinned);
	// met judges throughput unless memoryOnly.
	row := func(name, weedCPUs, pluginCPU string, extra []string, memoryOnly bool) error {
		if err := exec.CommandContext(ctx, "taskset", "-a", "-p", "-c", weedCPUs, strconv.Itoa(srv.PID())).Run(); err != nil {
			return fmt.Errorf("pinning weed to CPUs %s: %w", weedCPUs, err)
		}
		flags := strings.Join(extra, " ")
		if flags != "" {
			flags = " " + flags
		}
		toS3 := tool{Name: "kubectl-etcd snapshot save s3://" + flags, Args: pinned(pluginCPU, append([]string{plugin, "snapshot", "save", url, "--s3-path-style"}, extra...)), Env: s3env, Before: empty}
		// The store's first writes create its volumes (seconds): one save
		// before the measured ones.
		if _, err := runOnce(ctx, env, toS3); err != nil {
			return fmt.Errorf("a first save into the store: %w", err)
		}
		weedCPU, saves, start = 0, 0, -1
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
		err := add(name, target,
			toS3,
			tool{Name: "kubectl-etcd snapshot save FILE" + fileFlags, Args: pinned(pluginCPU, append([]string{plugin, "snapshot", "save", file}, fileExtra...)), Env: one, Before: func() error {
				stopCount()
				return removeAll(file, file+".json")()
			}},
			met)
		if err != nil {
			return err
		}
		stopCount()
		if saves > 0 {
			fmt.Fprintf(out, "    weed's CPU: %.2fs per s3 save (mean of %d)\n", weedCPU.Seconds()/float64(saves), saves)
		}
		return nil
	}
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	if err := row("snapshot save to s3:// vs to a file, unpinned (time ratio; throughput = 1/ratio)", all, "", nil, false); err != nil {
		return err
	}
	if runtime.NumCPU() >= 2 {
		if err := row("snapshot save to s3:// vs to a file, weed on CPU 0, saves on CPU 1 (time ratio; throughput = 1/ratio)", "0", "1", nil, false); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out, "   (the pinned row needs two CPUs)")
	}
	// The memory of a save that compresses and encrypts as it streams
	// (the CronJob's form): the encoder's buffers come on top of the parts.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	return row("snapshot save --compress zstd to s3:// (encrypted) vs to a file, unpinned", all, "",
		[]string{"--compress", "zstd", "--encrypt-to", id.Recipient().String()}, true)
}

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
