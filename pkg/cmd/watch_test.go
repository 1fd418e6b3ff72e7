package cmd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/watch"
)

func TestWatchReplaysAndFollows(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()

	first := put(t, cli, "/registry/configmaps/a/w", encode(t, cm("a", "w", "1")))
	put(t, cli, "/registry/configmaps/a/w", encode(t, cm("a", "w", "2")))
	put(t, cli, "/registry/configmaps/b/other", encode(t, cm("b", "other", "x")))
	if _, err := cli.Delete(context.Background(), "/registry/configmaps/a/w"); err != nil {
		t.Fatal(err)
	}

	t.Log("--rev replays: ADDED, MODIFIED, DELETED of one namespace, decoded")
	out, _ := cmdtest.MustRun(t, append(conn, "watch", "configmaps", "-n", "a", "-o", "json", "--rev", strconv.FormatInt(first, 10), "--max-events", "3")...)
	var events []watch.EventJSON
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e watch.EventJSON
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		events = append(events, e)
	}
	if len(events) != 3 || events[0].Type != "ADDED" || events[1].Type != "MODIFIED" || events[2].Type != "DELETED" {
		t.Fatalf("events:\n%s", out)
	}
	if events[1].Object["data"].(map[string]any)["v"] != "2" || events[0].Revision != first {
		t.Errorf("decoded events:\n%s", out)
	}

	t.Log("a live watch of a plain prefix sees a new key")
	done := make(chan string)
	go func() {
		out, _, _, err := cmdtest.RunIn(t, nil, append(conn, "watch", "/config/", "--max-events", "1")...)
		if err != nil {
			out = "error: " + err.Error()
		}
		done <- out
	}()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case out := <-done:
			if !strings.HasPrefix(out, "ADDED /config/k (revision ") && !strings.HasPrefix(out, "MODIFIED /config/k (revision ") || !strings.Contains(out, "\nvalue\n") {
				t.Errorf("live watch printed %q", out)
			}
			return
		case <-deadline:
			t.Fatal("live watch saw nothing")
		case <-tick.C:
			// Keep writing until the watcher, started concurrently, sees one.
			put(t, cli, "/config/k", []byte("value"))
		}
	}
}

func TestHistory(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()
	key := "/registry/configmaps/a/h"
	put(t, cli, key, encode(t, cm("a", "h", "1")))
	put(t, cli, "/registry/configmaps/a/unrelated", encode(t, cm("a", "unrelated", "1")))
	put(t, cli, key, encode(t, cm("a", "h", "2")))
	if _, err := cli.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	last := put(t, cli, key, encode(t, cm("a", "h", "3")))

	check := func(out string) {
		t.Helper()
		var events []watch.EventJSON
		if err := json.Unmarshal([]byte(out), &events); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var got []string
		for _, e := range events {
			v := ""
			if e.Object != nil {
				v = e.Object["data"].(map[string]any)["v"].(string)
			}
			got = append(got, e.Type+":"+v)
		}
		if strings.Join(got, " ") != "ADDED:1 MODIFIED:2 DELETED: ADDED:3" || events[3].Revision != last {
			t.Errorf("history %v:\n%s", got, out)
		}
	}
	t.Log("every revision of the key, deletion included, from the cluster")
	out, _ := cmdtest.MustRun(t, append(conn, "history", key, "-o", "json")...)
	check(out)

	t.Log("the same from a snapshot file, in one pass")
	snap := saveSnapshot(t, cli)
	out, _ = cmdtest.MustRun(t, "history", key, "-o", "json", "--snapshot", snap)
	check(out)

	t.Log("--diff shows what changed")
	out, _ = cmdtest.MustRun(t, append(conn, "history", key, "--diff")...)
	if !strings.Contains(out, "-   v: \"1\"") || !strings.Contains(out, "+   v: \"2\"") {
		t.Errorf("history --diff:\n%s", out)
	}
	if _, err := cli.Compact(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	out, _ = cmdtest.MustRun(t, append(conn, "history", key, "-o", "json")...)
	if strings.Count(out, `"type"`) != 1 {
		t.Errorf("after compaction only the last revision is kept:\n%s", out)
	}
}
