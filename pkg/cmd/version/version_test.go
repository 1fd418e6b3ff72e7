package version

import (
	"bytes"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
)

func TestWriteTextGolden(t *testing.T) {
	var buf bytes.Buffer
	err := WriteText(&buf, Info{
		Client: ClientInfo{Version: "v0.1.0", GoVersion: "go1.26.0", Platform: "linux/amd64"},
		Members: []MemberVersion{
			{Name: "cp-1", Endpoint: "https://10.0.0.11:2379", Version: "3.7.3", StorageVersion: "3.7.0"},
			{Name: "cp-2", Endpoint: "https://10.0.0.12:2379", Error: "connection refused"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "version.golden", buf.String())
}
