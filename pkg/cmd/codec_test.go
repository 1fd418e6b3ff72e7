package cmd_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
)

func TestDecodeCommandOnCapturedValues(t *testing.T) {
	for _, name := range []string{"pod", "job"} {
		t.Run(name, func(t *testing.T) {
			// The .bin files end with a newline, as etcdctl --print-value-only
			// output does: decode accepts it.
			out, _ := cmdtest.MustRun(t, "decode", "-f", testdataPath("stored-values", name+".bin"), "-o", "json")
			want, err := os.ReadFile(testdataPath("stored-values", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var got, exp map[string]any
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(want, &exp); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("decode %s.bin:\n%s", name, out)
			}
		})
	}
	out, _ := cmdtest.MustRun(t, "decode", "-f", testdataPath("encrypted", "aescbc-secret.bin"),
		"--encryption-provider-config", testdataPath("encrypted", "encryption-config.yaml"))
	if !strings.Contains(out, "mykey: bXlzdXBlcnNlY3JldA==") {
		t.Errorf("decode of the aescbc secret:\n%s", out)
	}
	_, _, code, err := cmdtest.RunIn(t, nil, "decode", "-f", testdataPath("encrypted", "aescbc-secret.bin"))
	if code != 1 || !strings.Contains(err.Error(), `aescbc key "simon"`) {
		t.Errorf("without the config: exit %d, %v", code, err)
	}
}

func TestEncodeDecodeCommandsRoundTrip(t *testing.T) {
	doc := "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: kube-system, resourceVersion: \"7\"}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec: {containers: [{name: a, image: agent}]}\n"
	value, _, _, err := cmdtest.RunIn(t, []byte(doc), "encode", "-f", "-")
	if err != nil || !strings.HasPrefix(value, "k8s\x00") {
		t.Fatalf("encode: %v %q", err, value)
	}
	out, _, _, err := cmdtest.RunIn(t, []byte(value), "decode", "--mod-revision", "9")
	if err != nil || !strings.Contains(out, "kind: DaemonSet") || !strings.Contains(out, `resourceVersion: "9"`) || !strings.Contains(out, "image: agent") {
		t.Errorf("decode: %v\n%s", err, out)
	}
	cr := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":1}}`
	value, _, _, err = cmdtest.RunIn(t, []byte(cr), "encode", "-f", "-")
	if err != nil || value != cr+"\n" {
		t.Errorf("custom resources are stored as JSON: %v %q", err, value)
	}
}

// testdataPath names a file under the repository's testdata/, the values
// real clusters stored (testdata/README.md says where each came from).
func testdataPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata"}, parts...)...)
}
