// Command ociimage writes an OCI image layout tarball for `ctr image
// import` (internal/ociimage does the work):
//
//	go run ./hack/ociimage -name registry.k8s.io/etcd:3.7.3-0 -o etcd.tar \
//	  -entrypoint /usr/local/bin/etcd usr/local/bin/etcd=/path/to/etcd ...
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/internal/ociimage"
)

func main() {
	name := flag.String("name", "", "image reference, such as registry.k8s.io/etcd:3.7.3-0")
	out := flag.String("o", "", "tarball to write")
	entrypoint := flag.String("entrypoint", "", "the image's entrypoint")
	flag.Parse()
	if err := run(*name, *out, *entrypoint, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(name, out, entrypoint string, files []string) error {
	if name == "" || out == "" || entrypoint == "" || len(files) == 0 {
		return fmt.Errorf("usage: ociimage -name REF -o FILE -entrypoint PATH IMAGE_PATH=HOST_FILE...")
	}
	img := ociimage.Image{Name: name, Entrypoint: []string{entrypoint}, Files: map[string]string{}}
	for _, f := range files {
		in, host, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("%q is not IMAGE_PATH=HOST_FILE", f)
		}
		img.Files[in] = host
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".ociimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := ociimage.Write(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
