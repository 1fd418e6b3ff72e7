// Package ociimage writes container images as OCI image layout tarballs,
// the form `ctr image import` reads, so tests can run the reference etcd
// binaries under a real kubelet and containerd without pulling anything.
// An image is one uncompressed layer of regular files and a config with
// an entrypoint and PATH: all a static binary needs.
package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Media types of the OCI image specification.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// nameAnnotation is where containerd's importer takes the image name from.
const nameAnnotation = "io.containerd.image.name"

// Image describes the image to write.
type Image struct {
	// Name is the full reference, such as registry.k8s.io/etcd:3.7.3-0.
	Name string
	// Files maps a path in the image (usr/local/bin/etcd) to the host file
	// whose content and mode it takes.
	Files map[string]string
	// Entrypoint is the image's ENTRYPOINT.
	Entrypoint []string
	// Env is the image's environment; PATH is set when it has none.
	Env []string
	// Architecture is GOARCH's name for the image platform (amd64).
	Architecture string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type blob struct {
	desc descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}, data}
}

// epoch is every entry's modification time, so the same files give the
// same digests and a rebuilt image is not a new one to containerd.
var epoch = time.Unix(0, 0)

// Write writes img to w as an OCI image layout tarball.
func Write(w io.Writer, img Image) error {
	if img.Name == "" || len(img.Entrypoint) == 0 {
		return fmt.Errorf("an image needs a name and an entrypoint")
	}
	layerData, err := layer(img.Files)
	if err != nil {
		return err
	}
	layerBlob := newBlob(mediaTypeLayer, layerData)
	env := img.Env
	if !hasPath(env) {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	arch := img.Architecture
	if arch == "" {
		arch = "amd64"
	}
	config, err := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"created":      epoch.UTC().Format(time.RFC3339),
		"config":       map[string]any{"Entrypoint": img.Entrypoint, "Env": env},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerBlob.desc.Digest}},
	})
	if err != nil {
		return err
	}
	configBlob := newBlob(mediaTypeConfig, config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        configBlob.desc,
		"layers":        []descriptor{layerBlob.desc},
	})
	if err != nil {
		return err
	}
	manifestBlob := newBlob(mediaTypeManifest, manifest)
	ref := manifestBlob.desc
	ref.Annotations = map[string]string{nameAnnotation: img.Name}
	if i := strings.LastIndex(img.Name, ":"); i > strings.LastIndex(img.Name, "/") {
		ref.Annotations["org.opencontainers.image.ref.name"] = img.Name[i+1:]
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeIndex,
		"manifests":     []descriptor{ref},
	})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
	}
	for _, b := range []blob{manifestBlob, configBlob, layerBlob} {
		entries = append(entries, struct {
			name string
			data []byte
		}{"blobs/sha256/" + strings.TrimPrefix(b.desc.Digest, "sha256:"), b.data})
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

// layer is the uncompressed tar of files, with every parent directory.
func layer(files map[string]string) ([]byte, error) {
	var names []string
	sources := map[string]string{}
	dirs := map[string]bool{}
	for name, src := range files {
		name = strings.TrimPrefix(path.Clean("/"+name), "/")
		sources[name] = src
		names = append(names, name)
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dirNames []string
	for d := range dirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range dirNames {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := addFile(tw, name, sources[name]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("adding %s to the image: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("adding %s to the image: %s is not a regular file", name, src)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), ModTime: epoch}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
