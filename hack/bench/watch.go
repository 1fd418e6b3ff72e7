package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kubectl-etcd/kubectl-etcd/internal/benchdata"
)

// watchPrefix holds the pods of the watch rows, written one per revision
// as kube-apiserver writes objects (the listing sets are written a hundred
// to a transaction: replayed, their events would come a hundred thousand
// to a watch response).
const watchPrefix = "/bench/watch"

// watchTarget is issue 17's: a watch of a busy prefix keeps up with this
// many events a second decoded to YAML.
const watchTarget = 5000

// watchLive is the watch that runs while its events are written.
type watchLive struct {
	Written int `json:"eventsWritten"`
	// PerRevision is how many puts each transaction holds.
	PerRevision int `json:"putsPerRevision"`
	// Rate is the writes per second asked for, WriteRate what the writers
	// reached.
	Rate      int     `json:"targetWriteRate"`
	WriteRate float64 `json:"writeRate"`
	WriteWall float64 `json:"writeSeconds"`
	Received  int64   `json:"eventsReceived"`
	// Lag is from the last write's return to the watch's exit after
	// printing the last event.
	Lag     float64 `json:"lagSeconds"`
	KeptUp  string  `json:"keptUp"`
	CPU     float64 `json:"cpuSeconds"`
	PeakRSS int64   `json:"peakRSSBytes"`
}

// writeWatchPods writes n pods under prefix + "/pods/", perTxn puts per
// revision from many writers, at rate puts a second (0: as fast as they
// go). It returns how long the writes took.
func writeWatchPods(ctx context.Context, cli *clientv3.Client, prefix string, n, perTxn, rate int) (time.Duration, error) {
	start := time.Now()
	_, err := putAll(ctx, cli, n, perTxn, 32, func(i int) (string, []byte, error) {
		v, err := benchdata.PodValue(i)
		if rate > 0 {
			// Encoded ahead of its turn, sent on it.
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		}
		return benchdata.PodKey(prefix, i), v, err
	})
	return time.Since(start), err
}

// watchRows writes o.watchEvents pods under watchPrefix, with `watch -o
// text` running while they are written at o.watchRate, o.watchPerTxn to a
// transaction (watch-live), then
// replays their history with each format and with etcdctl (watch). They
// run before the benchmark compacts the history away.
func watchRows(ctx context.Context, o options, c *cluster, env []string, plugin, etcdctl string, out io.Writer,
	addRow func(name, target string, a, b tool, sa, sb sample, met func(float64, sample) bool), res *results) error {
	n := o.watchEvents
	prefix := watchPrefix + "/pods/"
	resp, err := c.cli.Get(ctx, "/bench/started")
	if err != nil {
		return err
	}
	from := strconv.FormatInt(resp.Header.Revision+1, 10)
	watch := func(format string) tool {
		return tool{Name: "kubectl-etcd watch -o " + format,
			Args: []string{plugin, "watch", prefix, "--rev", from, "--max-events", strconv.Itoa(n), "-o", format}}
	}

	if !o.wants("watch-live") {
		fmt.Fprintf(out, "== writing %d pods under %s, one per revision\n", n, prefix)
		took, err := writeWatchPods(ctx, c.cli, watchPrefix, n, 1, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   in %.1fs (%.0f puts/s)\n", took.Seconds(), float64(n)/took.Seconds())
	} else {
		fmt.Fprintf(out, "== watch -o text while %d pods are written under %s at %d puts/s, %d per revision\n", n, prefix, o.watchRate, o.watchPerTxn)
		live, err := watchWhileWriting(ctx, c, env, watch("text"), n, o.watchPerTxn, o.watchRate)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "    %d puts in %.1fs (%.0f/s); the watch printed %d events, %.2fs after the last put; %.2fs cpu %.1f MiB peak\n",
			live.Written, live.WriteWall, live.WriteRate, live.Received, live.Lag, live.CPU, float64(live.PeakRSS)/(1<<20))
		res.WatchLive = append(res.WatchLive, live)
	}

	if !o.wants("watch") {
		return nil
	}
	keys := watch("keys")
	fetch := tool{Name: "etcdctl watch -w protobuf", Args: []string{etcdctl, "watch", "--prefix", prefix, "--rev", from, "-w", "protobuf"},
		Count: func() eventCounter { return &watchResponseCounter{} }, Until: int64(n)}
	tools := []tool{keys, fetch, watch("text"), watch("json")}
	fmt.Fprintf(out, "== replay %d events of %s from revision %s: -o keys, etcdctl's watch, -o text, -o json in turn\n", n, prefix, from)
	samples, err := rotate(ctx, env, o.reps, tools, out)
	if err != nil {
		return fmt.Errorf("replaying %d events: %w", n, err)
	}
	for i, s := range samples {
		for _, r := range s {
			if r.Stopped && r.Events < int64(n) {
				return fmt.Errorf("%s: stopped after %d of %d events", tools[i].Name, r.Events, n)
			}
		}
	}
	rate := func(_ float64, sa sample) bool { return float64(n)/sa.wall() >= watchTarget }
	add := func(name, target string, a, b tool, sa, sb sample, met func(float64, sample) bool) {
		addRow(name, target, a, b, sa, sb, met)
		res.Rows[len(res.Rows)-1].Events = int64(n)
	}
	for _, at := range []int{2, 3} {
		add(fmt.Sprintf("watch replay of %d pod events %s vs -o keys", n, tools[at].Name[len("kubectl-etcd watch "):]),
			">= 5,000 events/s", tools[at], keys, samples[at], samples[0], rate)
	}
	add(fmt.Sprintf("watch replay of %d pod events -o keys vs etcdctl's watch", n), "", keys, fetch, samples[0], samples[1], nil)
	return nil
}

// watchWhileWriting runs the watch (from the revision before the writes)
// while n pods are written at rate puts a second, and reports whether it
// kept up: every event printed within a second of the last put.
func watchWhileWriting(ctx context.Context, c *cluster, env []string, watch tool, n, perTxn, rate int) (watchLive, error) {
	live := watchLive{Written: n, Rate: rate, PerRevision: perTxn}
	stop := make(chan struct{})
	watch.Count = func() eventCounter { return &watchTextCounter{} }
	watch.Stop = stop
	type result struct {
		r   run
		end time.Time
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := runOnce(ctx, env, watch)
		done <- result{r, time.Now(), err}
	}()
	took, err := writeWatchPods(ctx, c.cli, watchPrefix, n, perTxn, rate)
	wrote := time.Now()
	if err != nil {
		close(stop)
		<-done
		return live, err
	}
	live.WriteWall, live.WriteRate = took.Seconds(), float64(n)/took.Seconds()
	// A watch that fell behind gets half a minute to catch up.
	var w result
	select {
	case w = <-done:
	case <-time.After(30 * time.Second):
		close(stop)
		w = <-done
	}
	if w.err != nil {
		return live, w.err
	}
	live.Received, live.Lag = w.r.Events, w.end.Sub(wrote).Seconds()
	live.CPU, live.PeakRSS = w.r.CPU.Seconds(), w.r.MaxRSS
	live.KeptUp = map[bool]string{true: "yes", false: "no"}[live.Received == int64(n) && live.Lag < 1]
	return live, nil
}

// watchTextCounter counts the event lines of `watch -o text`: an event
// line starts with its type, a YAML document's lines never do.
type watchTextCounter struct {
	n int64
	// head is the start of the line being written, as long as the
	// longest type; rest: it is whole, the rest of the line is skipped.
	head [9]byte
	len  int
	rest bool
}

var watchEventTypes = []string{"ADDED ", "MODIFIED ", "DELETED "}

func (c *watchTextCounter) add(p []byte) int64 {
	for len(p) > 0 {
		if c.rest {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				break
			}
			p, c.rest, c.len = p[i+1:], false, 0
			continue
		}
		take := min(len(p), len(c.head)-c.len)
		end := bytes.IndexByte(p[:take], '\n')
		if end >= 0 {
			take = end
		}
		c.len += copy(c.head[c.len:], p[:take])
		p = p[take:]
		if end < 0 && c.len < len(c.head) {
			break
		}
		for _, t := range watchEventTypes {
			if strings.HasPrefix(string(c.head[:c.len]), t) {
				c.n++
				break
			}
		}
		if end >= 0 {
			p, c.len = p[1:], 0
		} else {
			c.rest = true
		}
	}
	return c.n
}

// watchResponseCounter counts the events in `etcdctl watch -w protobuf`:
// its watch responses, marshalled one after the other with nothing
// between them, read as one stream of fields; each event is a field 11.
type watchResponseCounter struct {
	n int64
	// pending is the start of a field not yet whole; skip is how many
	// bytes of a field's value are still to come, event whether it is an
	// event's.
	pending []byte
	skip    int
	event   bool
}

func (c *watchResponseCounter) add(p []byte) int64 {
	if c.skip > 0 {
		k := min(c.skip, len(p))
		c.skip -= k
		p = p[k:]
		if c.skip > 0 {
			return c.n
		}
		if c.event {
			c.n++
		}
	}
	buf := p
	if len(c.pending) > 0 {
		buf = append(c.pending, p...)
	}
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			break
		}
		rest := buf[n:]
		size := -1
		switch typ {
		case protowire.VarintType:
			if _, m := protowire.ConsumeVarint(rest); m >= 0 {
				size = m
			}
		case protowire.Fixed64Type:
			size = 8
		case protowire.Fixed32Type:
			size = 4
		case protowire.BytesType:
			if l, m := protowire.ConsumeVarint(rest); m >= 0 {
				rest, size = rest[m:], int(l)
			}
		}
		if size < 0 {
			break // the rest of the tag or length is still to come
		}
		event := typ == protowire.BytesType && num == 11
		if size > len(rest) {
			c.skip, c.event, buf = size-len(rest), event, nil
			break
		}
		if event {
			c.n++
		}
		buf = rest[size:]
	}
	c.pending = append(c.pending[:0], buf...)
	return c.n
}
