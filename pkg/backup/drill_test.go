package backup_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
)

func aescbcConfig(t *testing.T, keys ...[2]string) *encryption.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "      - name: %s\n        secret: %s\n", k[0], k[1])
	}
	b.WriteString("  - identity: {}\n")
	cfg, err := encryption.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cfg.Close)
	return cfg
}

func newKey(t *testing.T) string {
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// TestDrill runs the restore drill on a snapshot holding Secrets
// encrypted with an old key and a new one: with the config that still has
// both it passes; after the old key was removed it names exactly the
// Secrets it cannot decrypt. A quota the database exceeds, an etcd too
// old for its storage version, and a truncated file fail it too.
func TestDrill(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	ctx := context.Background()
	old, current := [2]string{"old", newKey(t)}, [2]string{"current", newKey(t)}
	before := aescbcConfig(t, old)
	after := aescbcConfig(t, current, old)
	put := func(cfg *encryption.Config, name string) {
		key := "/registry/secrets/default/" + name
		plain, _, err := storage.Encode([]byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  namespace: default\ndata:\n  password: c2VjcmV0\n"))
		if err != nil {
			t.Fatal(err)
		}
		value, err := cfg.Encrypt("secrets", key, plain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, key, string(value)); err != nil {
			t.Fatal(err)
		}
	}
	put(before, "db-old")
	put(before, "api-old")
	put(after, "db-new")
	cm, _, _ := storage.Encode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\n"))
	if _, err := cli.Put(ctx, "/registry/configmaps/default/app", string(cm)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "etcd.db")
	if _, err := (&snapshot.Saver{Config: c.Config(), Client: cli, Path: file}).Save(ctx); err != nil {
		t.Fatal(err)
	}
	drill := func(enc *encryption.Config, mod func(*backup.Drill)) (*backup.DrillReport, error) {
		d := &backup.Drill{Fetcher: &backup.Fetcher{}, Encryption: enc}
		if mod != nil {
			mod(d)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return d.Run(cctx, file)
	}

	t.Log("With both keys every key decodes: the drill passes")
	rep, err := drill(aescbcConfig(t, current, old), nil)
	if err != nil || !rep.OK || rep.Keys != 4 || rep.Decoded != 4 || rep.Encrypted != 3 || rep.Decrypted != 3 || rep.HashKV == 0 || rep.NeedsEtcd == "" {
		t.Fatalf("drill with both keys: %v %+v", err, rep)
	}

	t.Log("After the old key was removed from the config: the Secrets under it are named")
	rep, err = drill(aescbcConfig(t, current), nil)
	if !errors.Is(err, backup.ErrDrillFailed) || rep == nil || rep.OK {
		t.Fatalf("drill without the old key: %v %+v; want a failed drill", err, rep)
	}
	var names []string
	for _, u := range rep.Undecodable {
		names = append(names, u.Key)
		if !strings.Contains(u.Reason, `"old"`) {
			t.Errorf("%s: reason %q does not name the missing key", u.Key, u.Reason)
		}
	}
	if strings.Join(names, ",") != "/registry/secrets/default/api-old,/registry/secrets/default/db-old" {
		t.Errorf("undecodable %v, want the two Secrets under the old key", names)
	}

	t.Log("Without any config every encrypted Secret fails")
	if rep, _ := drill(nil, nil); rep == nil || len(rep.Undecodable) != 3 {
		t.Errorf("drill without a config: %+v", rep)
	}

	t.Log("A quota smaller than the database, and an etcd older than the data needs")
	rep, err = drill(after, func(d *backup.Drill) { d.QuotaBackendBytes = 4096; d.EtcdVersion = "3.6" })
	if !errors.Is(err, backup.ErrDrillFailed) || len(rep.Failures) != 2 ||
		!strings.Contains(rep.Failures[0], "etcd 3.6 will not start this data: it needs etcd 3.7") ||
		!strings.Contains(rep.Failures[1], "does not fit the quota") {
		t.Errorf("drill: %v, failures %q", err, rep.Failures)
	}

	t.Log("A truncated file is corrupt, and no drill runs")
	data, _ := os.ReadFile(file)
	truncated := filepath.Join(t.TempDir(), "truncated.db")
	os.WriteFile(truncated, data[:len(data)/2], 0o600)
	file = truncated
	_, err = drill(after, nil)
	var ce *snapshot.CorruptError
	if !errors.As(err, &ce) {
		t.Errorf("drill of a truncated file: %v, want a corrupt snapshot", err)
	}
}
