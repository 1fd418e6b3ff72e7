package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/stats"
)

func encode(t *testing.T, doc string) []byte {
	t.Helper()
	v, _, err := storage.Encode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func put(t *testing.T, cli *clientv3.Client, key string, value []byte) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), key, string(value))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func cm(ns, name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", namespace: " + ns + "}\ndata: {v: \"" + value + "\"}\n"
}

type list struct {
	Kind  string           `json:"kind"`
	Items []map[string]any `json:"items"`
}

func parseList(t *testing.T, out string) list {
	t.Helper()
	var l list
	if err := yaml.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("not a YAML/JSON list: %v\n%s", err, out)
	}
	if l.Kind != "List" {
		t.Fatalf("kind %q, want List:\n%s", l.Kind, out)
	}
	return l
}

func meta(obj map[string]any) map[string]any { return obj["metadata"].(map[string]any) }

// writeEncryptionConfig writes dir/enc.yaml, an EncryptionConfiguration
// for secrets that writes with provider (an item of the providers list)
// and reads plain values too, and returns its path.
func writeEncryptionConfig(t *testing.T, dir, provider string) string {
	t.Helper()
	path := filepath.Join(dir, "enc.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
`+provider+`
  - identity: {}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGetAgainstEmbeddedCluster(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()
	get := func(args ...string) (string, string) {
		t.Helper()
		return cmdtest.MustRun(t, append(append([]string{}, conn...), append([]string{"get"}, args...)...)...)
	}

	t.Log("Kubernetes objects are written as kube-apiserver stores them")
	revA1 := put(t, cli, "/registry/configmaps/a/one", encode(t, cm("a", "one", "first")))
	put(t, cli, "/registry/configmaps/a/two", encode(t, cm("a", "two", "x")))
	put(t, cli, "/registry/configmaps/b/three", encode(t, cm("b", "three", "x")))
	put(t, cli, "/registry/namespaces/a", encode(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"))
	put(t, cli, "/registry/services/specs/a/web", encode(t, "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\nspec: {ports: [{port: 80}]}\n"))
	put(t, cli, "/registry/minions/node-1", encode(t, "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n"))
	put(t, cli, "/registry/deployments/a/api", encode(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: a}\nspec: {selector: {matchLabels: {app: api}}, template: {metadata: {labels: {app: api}}, spec: {containers: [{name: c, image: busybox}]}}}\n"))
	put(t, cli, "/registry/example.com/widgets/a/w1", encode(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: a}\nspec: {size: 3}\n"))
	put(t, cli, "/config/db_url", []byte("postgres://db:5432"))
	revA2 := put(t, cli, "/registry/configmaps/a/one", encode(t, cm("a", "one", "second")))

	t.Log("a resource list is a table of keys, in the default namespace unless -n or -A")
	out, _ := get("configmaps", "-A")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "RESOURCE") || !strings.Contains(lines[3], "b") || !strings.Contains(lines[1], strconv.FormatInt(revA2, 10)) {
		t.Errorf("get configmaps -A:\n%s", out)
	}
	noKubeconfig := filepath.Join(t.TempDir(), "no-kubeconfig")
	out, errOut := get("cm", "--kubeconfig", noKubeconfig)
	if strings.TrimSpace(out) != "" || !strings.Contains(errOut, "No resources found") {
		t.Errorf("get cm in namespace default: %q %q", out, errOut)
	}

	t.Log("without -n, the kubeconfig context's namespace, as kubectl; -n wins")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts:
- {name: in-b, context: {cluster: c, user: u, namespace: b}}
- {name: in-a, context: {cluster: c, user: u, namespace: a}}
current-context: in-b
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--kubeconfig", kubeconfig}, "configmap/three"},
		{[]string{"--kubeconfig", kubeconfig, "--context", "in-a"}, "configmap/one\nconfigmap/two"},
		{[]string{"--kubeconfig", kubeconfig, "-n", "a"}, "configmap/one\nconfigmap/two"},
	} {
		if out, _ := get(append([]string{"cm", "-o", "name"}, tt.args...)...); strings.TrimSpace(out) != tt.want {
			t.Errorf("get cm %s: %q, want %q", strings.Join(tt.args, " "), out, tt.want)
		}
	}

	t.Log("-o yaml prints a kubectl List with resourceVersion from the mod revision")
	out, _ = get("configmaps", "-n", "a", "-o", "yaml")
	l := parseList(t, out)
	if len(l.Items) != 2 || meta(l.Items[0])["name"] != "one" || meta(l.Items[0])["resourceVersion"] != strconv.FormatInt(revA2, 10) ||
		l.Items[0]["data"].(map[string]any)["v"] != "second" {
		t.Errorf("get configmaps -n a -o yaml:\n%s", out)
	}
	out, _ = get("configmaps", "-A", "-o", "json", "--chunk-size", "1")
	if l := parseList(t, out); len(l.Items) != 3 {
		t.Errorf("paged by one key, %d items:\n%s", len(l.Items), out)
	}

	t.Log("--rev reads the past")
	out, _ = get("configmap", "one", "-n", "a", "-o", "json", "--rev", strconv.FormatInt(revA1, 10))
	var one map[string]any
	if err := json.Unmarshal([]byte(out), &one); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if one["data"].(map[string]any)["v"] != "first" || meta(one)["resourceVersion"] != strconv.FormatInt(revA1, 10) {
		t.Errorf("at revision %d: %s", revA1, out)
	}

	t.Log("paths are learned from the data: services/specs, minions, custom resource groups")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"svc", "-A", "-o", "name"}, "service/web"},
		{[]string{"nodes", "-o", "name"}, "node/node-1"},
		{[]string{"deploy", "-n", "a", "-o", "name"}, "deployment.apps/api"},
		{[]string{"widgets", "-A", "-o", "name"}, "widget.example.com/w1"},
		{[]string{"widgets.example.com", "w1", "-n", "a", "-o", "name"}, "widget.example.com/w1"},
		{[]string{"namespaces", "-o", "name"}, "namespace/a"},
		{[]string{"/registry/", "--prefix", "--limit", "2", "-o", "keys"}, "/registry/configmaps/a/one\n/registry/configmaps/a/two"},
		{[]string{"/config/db_url"}, "/config/db_url\npostgres://db:5432"},
		{[]string{"/config/db_url", "-o", "raw"}, "postgres://db:5432"},
	} {
		out, _ := get(tt.args...)
		if strings.TrimSpace(out) != tt.want {
			t.Errorf("get %s: %q, want %q", strings.Join(tt.args, " "), out, tt.want)
		}
	}
	if _, _, code, err := cmdtest.RunIn(t, nil, append(conn, "get", "configmaps", "nope", "-n", "a")...); code != 1 || !strings.Contains(err.Error(), `"nope" not found`) {
		t.Errorf("missing object: exit %d, %v", code, err)
	}

	t.Log("an unknown kind does not stop a listing")
	var unk runtime.Unknown
	v := encode(t, cm("a", "future", "x"))
	if err := unk.Unmarshal(v[4:]); err != nil {
		t.Fatal(err)
	}
	unk.APIVersion, unk.Kind = "future.k8s.io/v1", "Gizmo"
	b, _ := unk.Marshal()
	put(t, cli, "/registry/configmaps/a/zz-future", append([]byte("k8s\x00"), b...))
	out, errOut = get("configmaps", "-n", "a", "-o", "yaml")
	if l := parseList(t, out); len(l.Items) != 3 || l.Items[2]["kind"] != "Gizmo" || meta(l.Items[2])["name"] != "future" {
		t.Errorf("listing with an unknown kind:\n%s", out)
	}
	if !strings.Contains(errOut, "warning: /registry/configmaps/a/zz-future: kind Gizmo.future.k8s.io/v1 is not known") {
		t.Errorf("no warning for the unknown kind: %q", errOut)
	}
}

func TestGetEncryptedSecretsAndSnapshots(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()
	dir := t.TempDir()

	key32 := make([]byte, 32)
	if _, err := rand.Read(key32); err != nil {
		t.Fatal(err)
	}
	encConfig := writeEncryptionConfig(t, dir, `  - aesgcm:
      keys: [{name: k1, secret: `+base64.StdEncoding.EncodeToString(key32)+`}]`)
	secretFile := filepath.Join(dir, "secret.yaml")
	if err := os.WriteFile(secretFile, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {}\ndata: {password: aHVudGVyMg==}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Log("encode writes what kube-apiserver would store, encrypted with the write key")
	enc, _ := cmdtest.MustRun(t, "encode", "-f", secretFile, "--encryption-provider-config", encConfig)
	if !strings.HasPrefix(enc, "k8s:enc:aesgcm:v1:k1:") {
		t.Fatalf("encode: %q", enc[:min(len(enc), 40)])
	}
	put(t, cli, "/registry/secrets/prod/db", []byte(enc))
	put(t, cli, "/registry/secrets/prod/gone", encode(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: gone, namespace: prod}\n"))
	beforeDelete := put(t, cli, "/registry/configmaps/prod/keep", encode(t, cm("prod", "keep", "x")))
	if _, err := cli.Delete(context.Background(), "/registry/secrets/prod/gone"); err != nil {
		t.Fatal(err)
	}

	t.Log("without the config an encrypted value is an error naming the key; with it, it decodes")
	_, errOut, code, err := cmdtest.RunIn(t, nil, append(conn, "get", "secrets", "-A", "-o", "yaml")...)
	if code != 1 || !strings.Contains(errOut, `/registry/secrets/prod/db: value is encrypted with aesgcm key "k1"`) {
		t.Errorf("without config: exit %d, %v, stderr %q", code, err, errOut)
	}
	out, _ := cmdtest.MustRun(t, append(conn, "get", "secrets", "db", "-n", "prod", "-o", "json", "--encryption-provider-config", encConfig)...)
	if !strings.Contains(out, `"password": "aHVudGVyMg=="`) {
		t.Errorf("decrypted secret:\n%s", out)
	}

	t.Log("decode reads a value from standard input")
	out, _, _, err = cmdtest.RunIn(t, []byte(enc), "decode", "--encryption-provider-config", encConfig, "--storage-key", "/registry/secrets/prod/db")
	if err != nil || !strings.Contains(out, "password: aHVudGVyMg==") {
		t.Errorf("decode: %v\n%s", err, out)
	}

	t.Log("a snapshot file reads like the cluster, deleted keys gone, --rev into its past")
	snap := saveSnapshot(t, cli)
	out, _ = cmdtest.MustRun(t, "get", "/registry/", "--prefix", "-o", "keys", "--snapshot", snap)
	if strings.TrimSpace(out) != "/registry/configmaps/prod/keep\n/registry/secrets/prod/db" {
		t.Errorf("snapshot keys:\n%s", out)
	}
	out, _ = cmdtest.MustRun(t, "get", "secrets", "-A", "-o", "name", "--snapshot", snap, "--rev", strconv.FormatInt(beforeDelete, 10), "--encryption-provider-config", encConfig)
	if strings.TrimSpace(out) != "secret/db\nsecret/gone" {
		t.Errorf("snapshot at revision %d:\n%s", beforeDelete, out)
	}
	out, _ = cmdtest.MustRun(t, "get", "secrets", "-A", "--snapshot", snap)
	if !strings.Contains(out, "secrets    prod        db") {
		t.Errorf("snapshot table:\n%s", out)
	}

	t.Log("stats counts per resource, and from a snapshot the bytes of old revisions")
	out, _ = cmdtest.MustRun(t, "stats", "--snapshot", snap, "-o", "json", "--top", "1")
	var st stats.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if st.Keys != 2 || len(st.Groups) != 2 || st.Groups[0].Resource != "secrets" || st.Groups[0].OldBytes == 0 ||
		len(st.Largest) != 1 || st.Largest[0].Key != "/registry/secrets/prod/db" {
		t.Errorf("stats: %s", out)
	}
	out, _ = cmdtest.MustRun(t, append(conn, "stats", "--by-namespace")...)
	if !strings.Contains(out, "configmaps   prod        1") || !strings.Contains(out, "TOTAL") {
		t.Errorf("stats table:\n%s", out)
	}
}

// saveSnapshot streams the cluster's database to a file, as etcdctl
// snapshot save does (the file ends with a sha256 trailer).
func saveSnapshot(t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	snap := filepath.Join(t.TempDir(), "snap.db")
	rc, err := cli.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	return snap
}

// readRawFrames reads -o raw of a listing the way its help shows: a
// "<key length> <value length>" line, the key, the value, a newline.
func readRawFrames(t *testing.T, out string) map[string][]byte {
	t.Helper()
	r := bufio.NewReader(strings.NewReader(out))
	got := map[string][]byte{}
	for {
		header, err := r.ReadString('\n')
		if err == io.EOF && header == "" {
			return got
		}
		var klen, vlen int
		if _, err := fmt.Sscanf(header, "%d %d\n", &klen, &vlen); err != nil {
			t.Fatalf("frame header %q: %v\n%q", header, err, out)
		}
		key, value, nl := make([]byte, klen), make([]byte, vlen), make([]byte, 1)
		for _, b := range [][]byte{key, value, nl} {
			if _, err := io.ReadFull(r, b); err != nil {
				t.Fatalf("frame of %d+%d bytes: %v\n%q", klen, vlen, err, out)
			}
		}
		if nl[0] != '\n' {
			t.Fatalf("frame of %q does not end in a newline: %q", key, out)
		}
		got[string(key)] = value
	}
}

func TestGetRawOfSeveralKeys(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()
	want := map[string][]byte{
		"/registry/configmaps/a/one": encode(t, cm("a", "one", "x")),
		"/registry/configmaps/a/two": encode(t, cm("a", "two", "y")),
		// Bytes that would break a line-based format: newlines, a
		// fake frame header, NULs.
		"/registry/configmaps/b/odd": []byte("3 4\nabc\x00\n\n12 99\n"),
		"/registry/configmaps/b/nil": {},
	}
	for k, v := range want {
		put(t, cli, k, v)
	}

	t.Log("one key: the value as stored, nothing added")
	out, _ := cmdtest.MustRun(t, append(conn, "get", "/registry/configmaps/b/odd", "-o", "raw")...)
	if out != string(want["/registry/configmaps/b/odd"]) {
		t.Errorf("-o raw of one key: %q", out)
	}
	t.Log("a prefix: every key framed, each value intact")
	out, _ = cmdtest.MustRun(t, append(conn, "get", "/registry/configmaps/", "--prefix", "-o", "raw")...)
	if got := readRawFrames(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("-o raw --prefix read back %q, want %q", got, want)
	}
	t.Log("a resource listing is framed too, even when one key matches")
	out, _ = cmdtest.MustRun(t, append(conn, "get", "configmaps", "-n", "a", "--limit", "1", "-o", "raw")...)
	if got := readRawFrames(t, out); len(got) != 1 || !bytes.Equal(got["/registry/configmaps/a/one"], want["/registry/configmaps/a/one"]) {
		t.Errorf("-o raw of configmaps -n a --limit 1: %q", out)
	}
	t.Log("the help documents the frame")
	help, _ := cmdtest.MustRun(t, "get", "--help")
	if !strings.Contains(help, `"<key length> <value length>"`) {
		t.Errorf("get --help does not document the -o raw frame:\n%s", help)
	}
}
