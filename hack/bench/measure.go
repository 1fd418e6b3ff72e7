package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// run is one execution of a command.
type run struct {
	Wall time.Duration
	// CPU is user plus system time of the child: on a machine shared with
	// other work it varies less than wall time.
	CPU time.Duration
	// MaxRSS is the child's peak resident memory (wait4's rusage).
	MaxRSS int64
	// Out is how many bytes it wrote to standard output.
	Out int64
	// Events is how many events Count found in that output.
	Events int64
	// Stopped: the command was stopped (tool.Until or tool.Stop), it
	// did not end by itself.
	Stopped bool
	// Machine is the CPU time the whole machine spent busy during the
	// run (/proc/stat): the command's, the etcd members' serving it, this
	// program's reading its output, and anything else running.
	Machine time.Duration
	// Reader is this program's CPU time during the run, nearly all of it
	// reading the command's output from the pipe.
	Reader time.Duration
}

// tool is one side of a comparison: a command line, run with the
// cluster's environment.
type tool struct {
	Name string
	Args []string
	// Env is added to the cluster's environment.
	Env []string
	// Before runs ahead of every execution, outside the measurement (to
	// remove the previous run's output).
	Before func() error
	// Count, when set, returns a fresh counter of the events in the
	// command's standard output (a watch's).
	Count func() eventCounter
	// Until stops the command once Count has found that many events (a
	// watch does not end by itself); the run's wall time then ends when
	// the last of them arrived.
	Until int64
	// Stop, when closed, stops the command however many events arrived.
	Stop <-chan struct{}
}

// eventCounter counts events in a stream written in chunks of any size.
type eventCounter interface {
	// add takes the next chunk and returns the events seen so far.
	add(p []byte) int64
}

type countingWriter struct {
	n int64
	// With counter set, events counts what it found; once there are
	// until of them, reached is when and stop is called, once.
	counter eventCounter
	events  int64
	until   int64
	reached time.Time
	stop    func()
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.counter != nil {
		w.events = w.counter.add(p)
		if w.until > 0 && w.events >= w.until && w.reached.IsZero() {
			w.reached = time.Now()
			w.stop()
		}
	}
	return len(p), nil
}

// drain reads f to its end into w with blocking reads, as cat does. Read
// through Go's poller, a pipe wakes a goroutine for every 64 KiB; on a
// 2 GiB JSON listing that cost this program a fifth more CPU, taken from
// the two cores the measured command and the members share.
func (w *countingWriter) drain(f *os.File) {
	fd := int(f.Fd()) // Fd puts the file in blocking mode
	buf := make([]byte, 128<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 || err != nil {
			return
		}
		w.Write(buf[:n])
	}
}

// rusageHelper is bin/bench-rusage (see hack/bench/rusage).
var rusageHelper string

func runOnce(ctx context.Context, env []string, t tool) (run, error) {
	if t.Before != nil {
		if err := t.Before(); err != nil {
			return run{}, err
		}
	}
	cmd := exec.CommandContext(ctx, rusageHelper, t.Args...)
	cmd.Env = append(append([]string{}, env...), t.Env...)
	out := &countingWriter{}
	var errOut strings.Builder
	var stopped atomic.Bool
	// The helper passes SIGTERM on to the command and reports its usage.
	stop := func() {
		if !stopped.Swap(true) {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	if t.Count != nil {
		out.counter, out.until, out.stop = t.Count(), t.Until, stop
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return run{}, err
	}
	defer outR.Close()
	cmd.Stdout = outW
	cmd.Stderr = &limitedWriter{w: &errOut, n: 4096}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return run{}, err
	}
	defer reportR.Close()
	cmd.ExtraFiles = []*os.File{reportW}
	machine0, reader0 := machineCPU(), selfCPU()
	start := time.Now()
	err = cmd.Start()
	reportW.Close()
	outW.Close()
	if err == nil {
		drained := make(chan struct{})
		go func() { defer close(drained); out.drain(outR) }()
		if t.Stop != nil {
			exited := make(chan struct{})
			defer close(exited)
			go func() {
				select {
				case <-t.Stop:
					stop()
				case <-exited:
				}
			}()
		}
		err = cmd.Wait()
		<-drained
	}
	wall := time.Since(start)
	machine, reader := machineCPU()-machine0, selfCPU()-reader0
	if !out.reached.IsZero() {
		wall = out.reached.Sub(start)
	}
	if err != nil {
		return run{}, fmt.Errorf("%s: %v\n%s", strings.Join(t.Args, " "), err, errOut.String())
	}
	var usage struct {
		MaxRSSKiB, UserNs, SysNs int64
	}
	if err := json.NewDecoder(reportR).Decode(&usage); err != nil {
		return run{}, fmt.Errorf("%s: no resource usage report: %w", strings.Join(t.Args, " "), err)
	}
	return run{
		Wall:    wall,
		CPU:     time.Duration(usage.UserNs + usage.SysNs),
		MaxRSS:  usage.MaxRSSKiB * 1024,
		Out:     out.n,
		Events:  out.events,
		Stopped: stopped.Load(),
		Machine: machine,
		Reader:  reader,
	}, nil
}

// machineCPU is the CPU time all processors have spent busy since boot:
// the user, nice, system, irq and softirq columns of /proc/stat's first
// line, in USER_HZ (100 a second on Linux); 0 when unreadable.
func machineCPU() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq ...
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100
}

// selfCPU is this process's user and system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		q := p
		if len(q) > l.n {
			q = q[:l.n]
		}
		l.w.Write(q)
		l.n -= len(q)
	}
	return len(p), nil
}

// sample is every run of one tool in a comparison.
type sample []run

func (s sample) median(f func(run) float64) float64 {
	if len(s) == 0 {
		return 0
	}
	v := make([]float64, len(s))
	for i, r := range s {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (s sample) wall() float64 { return s.median(func(r run) float64 { return r.Wall.Seconds() }) }
func (s sample) cpu() float64  { return s.median(func(r run) float64 { return r.CPU.Seconds() }) }
func (s sample) machine() float64 {
	return s.median(func(r run) float64 { return r.Machine.Seconds() })
}
func (s sample) reader() float64 { return s.median(func(r run) float64 { return r.Reader.Seconds() }) }
func (s sample) out() int64      { return int64(s.median(func(r run) float64 { return float64(r.Out) })) }

func (s sample) maxRSS() int64 {
	var m int64
	for _, r := range s {
		m = max(m, r.MaxRSS)
	}
	return m
}

// compare runs a and b alternately reps times (a first, then b first, so
// neither always runs on a warmer cache).
func compare(ctx context.Context, env []string, reps int, a, b tool, progress io.Writer) (sample, sample, error) {
	s, err := rotate(ctx, env, reps, []tool{a, b}, progress)
	if err != nil {
		return nil, nil, err
	}
	return s[0], s[1], nil
}

// rotate runs every tool once per round, reps rounds, in forward order
// and then backward, so that on a shared machine each sees the same
// conditions on average; it returns the runs of each tool.
func rotate(ctx context.Context, env []string, reps int, tools []tool, progress io.Writer) ([]sample, error) {
	samples := make([]sample, len(tools))
	for i := range reps {
		for k := range tools {
			which := k
			if i%2 == 1 {
				which = len(tools) - 1 - k
			}
			t := tools[which]
			r, err := runOnce(ctx, env, t)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(progress, "    %-30s %7.2fs wall %7.2fs cpu %7.1f MiB peak\n", t.Name, r.Wall.Seconds(), r.CPU.Seconds(), float64(r.MaxRSS)/(1<<20))
			samples[which] = append(samples[which], r)
		}
	}
	return samples, nil
}

func removeAll(paths ...string) func() error {
	return func() error {
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		return nil
	}
}
