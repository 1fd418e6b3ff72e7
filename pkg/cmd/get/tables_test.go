package get

import (
	"bytes"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
)

// TestTableGolden feeds the table get prints for a resource list fixed
// keys: built-in objects stored as protobuf, a custom resource as JSON, an
// encrypted value without its config and a plain key.
func TestTableGolden(t *testing.T) {
	encode := func(doc string) []byte {
		v, _, err := storage.Encode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	kvs := []storage.KV{
		{Key: "/registry/configmaps/kube-system/kubeadm-config", Value: encode("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubeadm-config, namespace: kube-system}\ndata: {ClusterConfiguration: \"apiVersion: kubeadm.k8s.io/v1beta4\"}\n"), CreateRevision: 12, ModRevision: 340, Version: 3},
		{Key: "/registry/deployments/prod/web", Value: encode("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}}\n"), CreateRevision: 100, ModRevision: 1021, Version: 7},
		{Key: "/registry/example.com/widgets/prod/w1", Value: []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","namespace":"prod"},"spec":{"size":3}}`), CreateRevision: 200, ModRevision: 200, Version: 1},
		{Key: "/registry/secrets/prod/db", Value: []byte("k8s:enc:aesgcm:v1:k1:\x00\x01\x02"), CreateRevision: 300, ModRevision: 301, Version: 2},
		{Key: "/registry/minions/node-1", Value: encode("apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n"), CreateRevision: 5, ModRevision: 990, Version: 40},
	}
	var out, errOut bytes.Buffer
	p := &printer.Printer{Out: &out, ErrOut: &errOut, Format: printer.OutputTable, List: true, Prefix: "/registry"}
	if err := p.Begin(); err != nil {
		t.Fatal(err)
	}
	d := &storage.Decoder{}
	for _, kv := range kvs {
		obj, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			obj = nil // printed from the key alone, as get does for a value it cannot decode
		}
		if err := p.Print(kv, obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.End(); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "table.golden", out.String())
}
