package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
)

// TestWriteLayout reads the tarball back as containerd's importer does:
// index.json names the image, every blob matches its digest, the config
// carries the entrypoint and PATH, the layer holds the file executable.
func TestWriteLayout(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "etcd")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, Image{Name: "registry.k8s.io/etcd:3.7.3-0", Entrypoint: []string{"/usr/local/bin/etcd"}, Files: map[string]string{"usr/local/bin/etcd": bin}}); err != nil {
		t.Fatal(err)
	}
	files := etcdtest.TarFiles(t, &buf)
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %q", files["oci-layout"])
	}
	blob := func(d descriptor) []byte {
		t.Helper()
		data, ok := files["blobs/sha256/"+d.Digest[len("sha256:"):]]
		sum := sha256.Sum256(data)
		if !ok || "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || int64(len(data)) != d.Size {
			t.Fatalf("blob %s missing or not matching its digest and size", d.Digest)
		}
		return data
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	if got := index.Manifests[0].Annotations[nameAnnotation]; got != "registry.k8s.io/etcd:3.7.3-0" {
		t.Errorf("image name annotation %q", got)
	}
	var manifest struct {
		Config descriptor
		Layers []descriptor
	}
	if err := json.Unmarshal(blob(index.Manifests[0]), &manifest); err != nil || len(manifest.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	var config struct {
		Config struct{ Entrypoint, Env []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(manifest.Config), &config); err != nil {
		t.Fatal(err)
	}
	if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != "/usr/local/bin/etcd" || !hasPath(config.Config.Env) {
		t.Errorf("config: %+v", config.Config)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != manifest.Layers[0].Digest {
		t.Errorf("diff_ids %v, layer %s: an uncompressed layer's diff id is its digest", config.RootFS.DiffIDs, manifest.Layers[0].Digest)
	}
	lr := tar.NewReader(bytes.NewReader(blob(manifest.Layers[0])))
	found := false
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "usr/local/bin/etcd" {
			found = h.Mode&0o111 != 0
		}
	}
	if !found {
		t.Error("the layer has no executable usr/local/bin/etcd")
	}
}
