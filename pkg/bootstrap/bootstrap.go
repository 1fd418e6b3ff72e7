// Package bootstrap sets up, grows and tears down the etcd of a Kubernetes
// control-plane node in the layout kubeadm uses: the etcd certificates under
// the PKI directory, the etcd static pod manifest the kubelet runs, and the
// data directory. Init starts a cluster on the first node, Join adds a node
// as a learner and promotes it once it has caught up, Leave removes a node's
// member and cleans up, Reset cleans up only locally. The certs functions
// report and renew the certificates.
//
// Nothing here prints to the terminal directly: progress goes to Node.Log,
// and the files a dry run would write go to Node.Out.
package bootstrap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// Node is one control-plane node and where its etcd files live.
type Node struct {
	// Name is the node name: the etcd member name and the CN of its
	// server and peer certificates.
	Name string
	// AdvertiseAddress is the IP other members and clients reach it on.
	AdvertiseAddress string
	// Image is the etcd container image of the manifest.
	Image string

	PKIDir       string
	ManifestsDir string
	DataDir      string
	// KubeletRootDir is the kubelet's --root-dir, where it keeps a
	// directory per pod until it has cleaned the pod up.
	KubeletRootDir string

	// Ports default to kubeadm's 2379, 2380 and 2381.
	ClientPort, PeerPort, MetricsPort int

	// KeyAlgorithm of new keys; kubeadm's RSA-2048 by default.
	KeyAlgorithm pki.KeyAlgorithm

	// DryRun changes nothing: files are printed to Out instead of written,
	// and no member is added or removed.
	DryRun bool

	// Out receives the files of a dry run; Log receives progress lines.
	Out io.Writer
	Log io.Writer
}

// NewNode returns a Node with kubeadm's directories and the default image.
func NewNode() *Node {
	return &Node{
		Image:          staticpod.DefaultImage,
		PKIDir:         staticpod.DefaultPKIDir,
		ManifestsDir:   staticpod.DefaultManifestsDir,
		DataDir:        staticpod.DefaultDataDir,
		KubeletRootDir: staticpod.DefaultKubeletRootDir,
		ClientPort:     staticpod.DefaultClientPort,
		PeerPort:       staticpod.DefaultPeerPort,
		MetricsPort:    staticpod.DefaultMetricsPort,
		Out:            io.Discard,
		Log:            io.Discard,
	}
}

// ManifestPath is the etcd static pod manifest of the node.
func (n *Node) ManifestPath() string {
	return filepath.Join(n.ManifestsDir, staticpod.ManifestFileName)
}

// Spec is the static pod specification of this node.
func (n *Node) Spec() staticpod.EtcdPodSpec {
	return staticpod.EtcdPodSpec{
		Name:             n.Name,
		AdvertiseAddress: n.AdvertiseAddress,
		Image:            n.Image,
		DataDir:          n.DataDir,
		PKIDir:           n.PKIDir,
		ClientPort:       n.ClientPort,
		PeerPort:         n.PeerPort,
		MetricsPort:      n.MetricsPort,
	}
}

// ValidateIdentity checks the name and address that init and join need.
func (n *Node) ValidateIdentity() error {
	if n.Name == "" {
		return errors.New("--name is required: the node name, used as the etcd member name")
	}
	if n.AdvertiseAddress == "" {
		return errors.New("--advertise-address is required: the IP other members reach this node on")
	}
	return n.Spec().Validate()
}

// ValidateDirs refuses empty directories and the root directory, as data
// directories get cleared.
func (n *Node) ValidateDirs() error {
	for flag, dir := range map[string]string{"--pki-dir": n.PKIDir, "--manifests-dir": n.ManifestsDir, "--data-dir": n.DataDir} {
		if dir == "" {
			return fmt.Errorf("%s is empty", flag)
		}
		if filepath.Clean(dir) == "/" {
			return fmt.Errorf("%s must not be /", flag)
		}
	}
	return nil
}

func (n *Node) logf(format string, args ...any) {
	if n.Log != nil {
		fmt.Fprintf(n.Log, format+"\n", args...)
	}
}

// logLeftovers tells, in lines tagged step, of the copies interrupted
// recoveries and restores left beside dataDir, and of the member's data
// directories it does not run on (datadir.Leftovers): a preflight is
// where an operator looks after a killed run, and no run removes
// another's; after leave and reset, they are what is left of the member.
func (n *Node) logLeftovers(step, dataDir string) {
	for _, l := range datadir.Leftovers(dataDir) {
		if l.Data {
			n.logf("[%s] %s; %s", step, l, l.Removal())
			continue
		}
		n.logf("[%s] %s and is not used: remove it with %s", step, l, l.Removal())
	}
}

// File is a file to write, or to print in a dry run.
type File struct {
	Path string
	Mode os.FileMode
	Data []byte
	// DirMode is the mode of directories created for it (default 0755).
	DirMode os.FileMode
	// Secret files (private keys) are never printed.
	Secret bool
}

// apply writes the files, or prints them to Out in a dry run.
func (n *Node) apply(files []File) error {
	for _, f := range files {
		if n.DryRun {
			if err := n.printFile(f); err != nil {
				return err
			}
			continue
		}
		dirMode := f.DirMode
		if dirMode == 0 {
			dirMode = 0o755
		}
		if err := fileutil.WriteFileAtomic(f.Path, f.Data, f.Mode, dirMode); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) printFile(f File) error {
	out := n.Out
	if out == nil {
		out = io.Discard
	}
	if f.Secret {
		_, err := fmt.Fprintf(out, "# [dry-run] would write %s (mode %04o): private key, not shown\n", f.Path, f.Mode.Perm())
		return err
	}
	_, err := fmt.Fprintf(out, "# [dry-run] would write %s (mode %04o)\n%s", f.Path, f.Mode.Perm(), f.Data)
	if err == nil && !strings.HasSuffix(string(f.Data), "\n") {
		_, err = fmt.Fprintln(out)
	}
	return err
}

// clearDir removes everything inside dir and keeps dir itself, as the
// kubelet's hostPath volume points at it. It returns what it removed.
func clearDir(dir string) ([]string, error) {
	if filepath.Clean(dir) == "/" || dir == "" {
		return nil, fmt.Errorf("refusing to clear %q", dir)
	}
	entries, err := fileutil.ReadDirIfExists(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return removed, fmt.Errorf("clearing %s: %w", dir, err)
		}
		removed = append(removed, p)
	}
	sort.Strings(removed)
	return removed, nil
}

// dirEntries lists the names in dir; a missing dir has none.
func dirEntries(dir string) ([]string, error) {
	entries, err := fileutil.ReadDirIfExists(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
