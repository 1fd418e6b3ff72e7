// Package get holds `kubectl etcd get`: keys and Kubernetes objects as
// stored in etcd, decoded, from a live cluster or a snapshot file.
package get

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// Options are the options of `kubectl etcd get`.
type Options struct {
	*cmdutil.Factory
	cmdutil.StorageFlags

	Output        string
	Prefix        bool
	AllNamespaces bool
	Namespace     string
	Rev           int64
	Limit         int64
	ChunkSize     int64
	Snapshot      string
	NoHeaders     bool

	// Resource and Name are the kubectl shape; Key the etcd shape.
	Resource string
	Name     string
	Key      string

	// extra is a second argument after a key, which Validate refuses.
	extra string

	source  source.Source
	decoder *storage.Decoder
	close   func()
}

// NewCmdGet returns the get command.
func NewCmdGet(f *cmdutil.Factory) *cobra.Command {
	o := &Options{ChunkSize: 500}
	cmd := &cobra.Command{
		Use:   "get (KEY [--prefix] | RESOURCE [NAME] [-n NAMESPACE | -A])",
		Short: "Show keys and the Kubernetes objects stored in etcd, decoded",
		Long: `Show what the control plane stored in etcd, decoded from its storage form
(protobuf, JSON for custom resources, encrypted at rest) into the YAML or JSON
kubectl shows, with metadata.resourceVersion set to the key's mod revision.

Name a key (anything with a slash) as etcdctl does, or a resource as kubectl
does: pods, deploy, deployments.apps, widgets.example.com. Where a resource
lives is learned from the stored keys (services under services/specs, nodes
under minions). Without -n or -A a namespaced resource is read in the
namespace of the kubeconfig context, else "default", as kubectl does. Keys
that are not Kubernetes objects print as text.

Values encrypted at rest decrypt with --encryption-provider-config, the
apiserver's EncryptionConfiguration: aescbc, aesgcm and secretbox with its
keys, kms by asking the KMS plugin on the unix socket the file names (run
where that socket is, a control-plane node).

Values that do not decode (encrypted without the config, corrupt) and kinds
this build does not know do not stop a listing: each gets a warning on
stderr, and the command exits 1 at the end if any value failed.

` + printer.RawFraming,
		Example: `  # Pods of every namespace, as a table of keys, sizes and revisions
  kubectl etcd get pods -A

  # One deployment as stored, in YAML
  kubectl etcd get deployments web -n prod -o yaml

  # Everything under a key prefix, as it was at revision 12345
  kubectl etcd get /registry/configmaps/kube-system/ --prefix --rev 12345

  # Secrets encrypted at rest, from a snapshot file, no cluster needed
  kubectl etcd get secrets -A -o yaml --snapshot backup.db --encryption-provider-config /etc/kubernetes/enc.yaml

  # A secret encrypted by a KMS v2 provider, on a control-plane node
  sudo kubectl etcd get secrets db -n prod -o yaml --encryption-provider-config /etc/kubernetes/enc.yaml

  # A plain key, as etcdctl prints it
  kubectl etcd get /config/db_url

  # The stored bytes of one object, to decode elsewhere
  kubectl etcd get deployments web -n prod -o raw > web.bin

  # The stored bytes of every key under a prefix, framed, read in Python
  kubectl etcd get /registry/secrets/ --prefix -o raw | python3 -c '
  import sys; f = sys.stdin.buffer
  while h := f.readline():
      k, v = map(int, h.split()); key, value = f.read(k), f.read(v); f.read(1)
      print(key.decode(), len(value))'`,
		Args: cmdutil.ValidateArgs(cobra.RangeArgs(1, 2)),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 || strings.Contains(toComplete, "/") {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return storage.ResourceNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.Output, "output", "o", "", "output format: "+strings.Join(printer.OutputFormats, ", ")+" (default: table for a resource list, yaml for objects, text for other keys)")
	fs.BoolVar(&o.Prefix, "prefix", false, "get every key starting with KEY")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list the resource in every namespace")
	cmdutil.AddNamespaceFlag(fs, &o.Namespace)
	fs.Int64Var(&o.Rev, "rev", 0, "read at this revision (default: the newest)")
	fs.Int64Var(&o.Limit, "limit", 0, "print at most this many keys (0: all)")
	fs.Int64Var(&o.ChunkSize, "chunk-size", o.ChunkSize, "keys fetched per request")
	fs.StringVar(&o.Snapshot, "snapshot", "", "read this snapshot or member db file instead of a live cluster")
	fs.BoolVar(&o.NoHeaders, "no-headers", false, "do not print table headers")
	o.StorageFlags.AddFlags(fs)
	return cmd
}

// isKey tells the etcd shape (a key) from the kubectl shape (a resource).
func isKey(arg string, prefix bool) bool { return prefix || strings.Contains(arg, "/") }

// Complete parses the arguments, finds the namespace in the kubeconfig
// and picks the default format.
func (o *Options) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory = f
	if isKey(args[0], o.Prefix) {
		o.Key = args[0]
		if len(args) > 1 {
			o.extra = args[1]
		}
	} else {
		o.Resource = args[0]
		if len(args) > 1 {
			o.Name = args[1]
		}
	}
	o.Namespace = cmdutil.ObjectNamespace(o.Namespace, o.Connect.KubeConfig)
	if o.Output == "" {
		switch {
		case o.Resource != "" && o.Name == "":
			o.Output = printer.OutputTable
		case o.Key != "" && !strings.HasPrefix(o.Key, strings.TrimSuffix(o.StoragePrefix, "/")+"/"):
			o.Output = printer.OutputText
		default:
			o.Output = printer.OutputYAML
		}
	}
	return nil
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.extra != "" {
		return fmt.Errorf("a key takes no second argument (got %q)", o.extra)
	}
	if err := output.Validate(o.Output, printer.OutputFormats...); err != nil {
		return err
	}
	if o.Key != "" && o.AllNamespaces {
		return fmt.Errorf("-A lists a resource: it does not apply to a key")
	}
	if o.Name != "" && o.AllNamespaces {
		return fmt.Errorf("a NAME is in one namespace: drop -A")
	}
	if o.Limit < 0 || o.Rev < 0 || o.ChunkSize <= 0 {
		return fmt.Errorf("--limit and --rev must not be negative, --chunk-size must be positive")
	}
	if !strings.HasPrefix(o.StoragePrefix, "/") {
		return fmt.Errorf("--storage-prefix %q must start with /", o.StoragePrefix)
	}
	return nil
}

// open sets up the decoder and the source: the snapshot file or the cluster.
func (o *Options) open() error {
	d, err := o.StorageFlags.Decoder()
	if err != nil {
		return err
	}
	o.decoder = d
	if o.Snapshot != "" {
		// Only what this listing can read is kept: the key or prefix, or
		// for a resource everything under the storage prefix, where its
		// path is learned.
		start := strings.TrimSuffix(o.StoragePrefix, "/") + "/"
		end := storage.PrefixEnd(start)
		switch {
		case o.Key != "" && o.Prefix:
			start, end = o.Key, storage.PrefixEnd(o.Key)
		case o.Key != "":
			start, end = o.Key, o.Key+"\x00"
		}
		if end == "\x00" {
			end = "" // no key sorts after the prefix: read to the end
		}
		// The values stay in the file's memory map until the listing is
		// printed: memory holds the keys, not the values.
		s, err := source.OpenSnapshotRange(o.Snapshot, o.Rev, start, end)
		if err != nil {
			return err
		}
		o.source = &source.SnapshotSource{Snapshot: s}
		o.Rev = 0
		o.close = func() { s.Close() }
		return nil
	}
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	o.source = &source.Etcd{
		Client:         cli,
		PageSize:       o.ChunkSize,
		KeysOnly:       o.Output == printer.OutputKeys,
		RequestContext: cfg.WithCommandTimeout,
		ChunkTimeout:   cfg.CommandTimeout,
	}
	o.close = func() { cli.Close() }
	return nil
}

// Run reads and prints.
func (o *Options) Run(ctx context.Context) error {
	if err := o.open(); err != nil {
		return err
	}
	defer o.close()
	prefix := strings.TrimSuffix(o.StoragePrefix, "/")

	start, end, single := o.Key, "", !o.Prefix
	if o.Key != "" && o.Prefix {
		end = storage.PrefixEnd(o.Key)
	}
	if o.Resource != "" {
		r, err := source.Resolve(ctx, o.source, prefix, o.Resource, o.Rev)
		if err != nil {
			return err
		}
		if !r.Found {
			if o.Name != "" {
				return fmt.Errorf("%s %q not found: nothing is stored under %s/%s/", r.Resource, o.Name, prefix, r.Path)
			}
			fmt.Fprintf(o.ErrOut, "No resources found: nothing is stored under %s/%s/\n", prefix, r.Path)
			return nil
		}
		ns := ""
		if r.Namespaced && !o.AllNamespaces {
			ns = o.Namespace
		}
		if o.Name != "" {
			start, single = storage.ObjectKey(prefix, r.Path, ns, o.Name), true
		} else {
			start = prefix + "/" + r.Path + "/"
			if ns != "" {
				start += ns + "/"
			}
			end, single = storage.PrefixEnd(start), false
		}
	}

	// Output is buffered: a listing writes one small piece per key.
	out := bufio.NewWriterSize(o.Out, 256<<10)
	defer out.Flush()
	p := &printer.Printer{Out: out, ErrOut: o.ErrOut, Format: o.Output, List: !single, NoHeaders: o.NoHeaders, Prefix: prefix}
	if err := p.Begin(); err != nil {
		return err
	}
	var failed []string
	found := 0
	err := p.PrintRange(ctx, printer.ListOptions{
		Source: o.source, Start: start, End: end, Rev: o.Rev, Limit: o.Limit, Decoder: o.decoder,
		Check: func(kv storage.KV, d *storage.Object, decodeErr error) (bool, error) {
			found++
			if decodeErr != nil {
				if single {
					return false, decodeErr
				}
				failed = append(failed, kv.Key)
				fmt.Fprintf(o.ErrOut, "warning: %v\n", decodeErr)
				return false, nil
			}
			if d != nil && d.Partial != nil {
				fmt.Fprintf(o.ErrOut, "warning: %s: %v\n", kv.Key, d.Partial)
			}
			return true, nil
		},
	})
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	if single && found == 0 {
		if o.Name != "" {
			return fmt.Errorf("%s %q not found (key %s)", o.Resource, o.Name, start)
		}
		return fmt.Errorf("key %s not found", start)
	}
	if !single && found == 0 && o.Output != printer.OutputYAML && o.Output != printer.OutputJSON {
		fmt.Fprintf(o.ErrOut, "No resources found under %s\n", start)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d values could not be decoded (first: %s)", len(failed), found, failed[0])
	}
	return nil
}
