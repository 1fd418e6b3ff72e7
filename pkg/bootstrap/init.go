package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// manifestFile renders the static pod of spec as the file to write.
func (n *Node) manifestFile(spec staticpod.EtcdPodSpec) (File, error) {
	pod := staticpod.NewEtcdPod(spec)
	if err := flagsForImage(pod, spec.Image); err != nil {
		return File{}, err
	}
	data, err := staticpod.Marshal(pod)
	if err != nil {
		return File{}, err
	}
	return File{Path: n.ManifestPath(), Mode: staticpod.ManifestMode, DirMode: staticpod.ManifestDirMode, Data: data}, nil
}

// Init makes this node the first member of a new cluster: the etcd PKI and
// the static pod manifest. Running it again with the same inputs changes
// nothing; a node that already runs another etcd is refused.
func (n *Node) Init(now time.Time) error {
	if err := n.ValidateIdentity(); err != nil {
		return err
	}
	if err := n.ValidateDirs(); err != nil {
		return err
	}
	spec := n.Spec()
	manifest, err := n.manifestFile(spec)
	if err != nil {
		return err
	}
	existing, err := os.ReadFile(n.ManifestPath())
	switch {
	case err == nil && bytes.Equal(existing, manifest.Data):
		n.logf("[etcd] %s is already in place", n.ManifestPath())
	case err == nil:
		return fmt.Errorf("%s already exists and differs from the manifest for %s at %s: this node already has an etcd; run 'kubectl etcd reset' first", n.ManifestPath(), n.Name, n.AdvertiseAddress)
	case !errors.Is(err, os.ErrNotExist):
		return err
	default:
		entries, err := dirEntries(n.DataDir)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			return fmt.Errorf("data directory %s is not empty (%d entries): it holds another etcd's data, or the data a recovery or restore moved etcd away from; clear it with 'kubectl etcd reset --data-dir %s' or pick another --data-dir", n.DataDir, len(entries), n.DataDir)
		}
	}
	if err := n.EnsurePKI(PKIOptions{}, now); err != nil {
		return err
	}
	if err := n.prepareDataDir(); err != nil {
		return err
	}
	if err := n.apply([]File{manifest}); err != nil {
		return err
	}
	if !n.DryRun {
		n.logf("[etcd] Wrote static pod manifest %s for member %s (%s)", n.ManifestPath(), n.Name, spec.ClientURL())
	}
	return nil
}

// prepareDataDir creates the data directory 0700, as etcd wants it.
func (n *Node) prepareDataDir() error {
	if n.DryRun {
		n.logf("[dry-run] would create data directory %s (mode 0700)", n.DataDir)
		return nil
	}
	if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	return nil
}
