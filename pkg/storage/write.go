package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// ErrConflict reports a key changed between the read and the write.
var ErrConflict = errors.New("the key changed since it was read")

// ReadKey returns the key's current value, nil when it does not exist.
func ReadKey(ctx context.Context, cli *clientv3.Client, key string) (*KV, error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := resp.Kvs[0]
	return &KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}, nil
}

// CompareAndPut writes value at key if the key's mod revision is still
// modRevision (0: the key must not exist), and returns the new revision.
func CompareAndPut(ctx context.Context, cli *clientv3.Client, key string, value []byte, modRevision int64) (int64, error) {
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpPut(key, string(value))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, conflict(key, modRevision, resp)
	}
	return resp.Header.Revision, nil
}

// CompareAndDelete deletes key if its mod revision is still modRevision.
func CompareAndDelete(ctx context.Context, cli *clientv3.Client, key string, modRevision int64) (int64, error) {
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("deleting %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, conflict(key, modRevision, resp)
	}
	return resp.Header.Revision, nil
}

func conflict(key string, want int64, resp *clientv3.TxnResponse) error {
	now := int64(0)
	if len(resp.Responses) > 0 {
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			now = r.Kvs[0].ModRevision
		}
	}
	return fmt.Errorf("%w: %s is at mod revision %d, expected %d; nothing was written, read it again", ErrConflict, key, now, want)
}

// CheckMatchesKey refuses an object stored under a key meant for another
// kind, namespace or name: the apiserver would serve it confusingly or not
// at all.
func CheckMatchesKey(prefix, key string, gvk schema.GroupVersionKind, doc []byte) error {
	k, ok := ParseKey(prefix, key)
	if !ok {
		return fmt.Errorf("%s is not an object key under %s (PATH/[NAMESPACE/]NAME)", key, prefix)
	}
	data, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return err
	}
	if u.GetName() != k.Name || u.GetNamespace() != k.Namespace {
		return fmt.Errorf("the object is %s/%s but the key %s is for %s/%s", orNone(u.GetNamespace()), u.GetName(), key, orNone(k.Namespace), k.Name)
	}
	resource, _ := ResourceFor(gvk)
	want, _, _ := strings.Cut(resource, ".")
	have, _, _ := strings.Cut(k.Resource(), ".")
	if want != have {
		return fmt.Errorf("a %s is stored as %s, but the key %s holds %s", gvk.Kind, want, key, have)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "<cluster>"
	}
	return s
}

// Diff is a line diff of a and b: unchanged lines start with two spaces,
// removed ones with "- ", added ones with "+ ".
func Diff(a, b string) string {
	x := strings.SplitAfter(a, "\n")
	y := strings.SplitAfter(b, "\n")
	if len(x) > 0 && x[len(x)-1] == "" {
		x = x[:len(x)-1]
	}
	if len(y) > 0 && y[len(y)-1] == "" {
		y = y[:len(y)-1]
	}
	// Longest common subsequence, fine for objects of a few thousand lines.
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	line := func(mark, s string) {
		sb.WriteString(mark)
		sb.WriteString(s)
		if !strings.HasSuffix(s, "\n") {
			sb.WriteString("\n")
		}
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			line("  ", x[i])
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			line("+ ", y[j])
			j++
		default:
			line("- ", x[i])
			i++
		}
	}
	return sb.String()
}
