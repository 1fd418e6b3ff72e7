package cmd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/cas"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/diff"
)

func TestPutAndDelAreCareful(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()
	dir := t.TempDir()
	etcd := func(args ...string) (string, string, int, error) {
		t.Helper()
		return cmdtest.RunIn(t, nil, append(append([]string{}, conn...), args...)...)
	}
	file := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := "/registry/configmaps/a/app"
	v1 := file("v1.yaml", cm("a", "app", "one"))
	v2 := file("v2.yaml", cm("a", "app", "two"))

	t.Log("a Kubernetes object is not written without --yes when there is no terminal")
	_, _, code, err := etcd("put", key, "-f", v1)
	if code != 1 || !strings.Contains(err.Error(), "pass --yes") {
		t.Fatalf("put without --yes: exit %d, %v", code, err)
	}
	out, _, _, err := etcd("put", key, "-f", v1, "--yes")
	if err != nil || !strings.Contains(out, key+" written at revision") {
		t.Fatalf("put: %v %q", err, out)
	}
	cur, err := cas.ReadKey(context.Background(), cli, key)
	if err != nil || cur == nil {
		t.Fatal(cur, err)
	}
	o, err := (&storage.Decoder{}).Decode(key, cur.Value, cur.ModRevision)
	if err != nil || o.Format != storage.FormatProtobuf {
		t.Fatalf("stored value: %v %v", err, o)
	}

	t.Log("--dry-run prints the diff and writes nothing")
	out, _, _, err = etcd("put", key, "-f", v2, "--dry-run")
	if err != nil || !strings.Contains(out, `-   v: one`) || !strings.Contains(out, `+   v: two`) {
		t.Errorf("dry run: %v\n%s", err, out)
	}
	if now, _ := cas.ReadKey(context.Background(), cli, key); now.ModRevision != cur.ModRevision {
		t.Error("dry run wrote")
	}

	t.Log("a stale --if-mod-revision is refused")
	_, _, _, err = etcd("put", key, "-f", v2, "--yes", "--if-mod-revision", strconv.FormatInt(cur.ModRevision-1, 10))
	if !errors.Is(err, cas.ErrConflict) {
		t.Errorf("stale revision: %v", err)
	}
	if _, _, _, err = etcd("put", key, "-f", v2, "--yes", "--if-mod-revision", strconv.FormatInt(cur.ModRevision, 10)); err != nil {
		t.Errorf("current revision: %v", err)
	}

	t.Log("an object that does not match its key is refused")
	for _, tt := range []struct{ key, want string }{
		{"/registry/configmaps/b/app", "the object is a/app but the key"},
		{"/registry/secrets/a/app", "a ConfigMap is stored as configmaps"},
	} {
		if _, _, _, err := etcd("put", tt.key, "-f", v1, "--yes"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("put %s: %v, want %q", tt.key, err, tt.want)
		}
	}

	t.Log("plain keys work like etcdctl, without a prompt")
	if _, _, _, err := etcd("put", "/config/db_url", "postgres://db"); err != nil {
		t.Fatal(err)
	}
	out, _, _, _ = etcd("get", "/config/db_url")
	if out != "/config/db_url\npostgres://db\n" {
		t.Errorf("get plain key: %q", out)
	}

	t.Log("del asks, honours --dry-run, and removes")
	if _, _, code, _ := etcd("del", key); code != 1 {
		t.Error("del without --yes succeeded")
	}
	out, _, _, _ = etcd("del", key, "--dry-run")
	if !strings.Contains(out, "-   v: two") {
		t.Errorf("del dry run:\n%s", out)
	}
	if _, _, _, err := etcd("del", key, "--yes"); err != nil {
		t.Fatal(err)
	}
	if now, _ := cas.ReadKey(context.Background(), cli, key); now != nil {
		t.Error("key still there")
	}
	if _, _, _, err := etcd("del", key, "--yes"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("del of a missing key: %v", err)
	}
}

func TestDiff(t *testing.T) {
	got := diff.Lines("a\nb\nc\n", "a\nc\nd\n")
	if got != "  a\n- b\n  c\n+ d\n" {
		t.Errorf("diff:\n%s", got)
	}
}
