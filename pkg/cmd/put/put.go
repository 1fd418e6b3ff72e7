// Package put holds `kubectl etcd put` and `kubectl etcd del`: careful
// writes, each a compare-and-swap on the mod revision read first.
package put

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/cas"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/diff"
)

// WriteFlags are the safety flags of put and del.
type WriteFlags struct {
	cmdutil.StorageFlags
	// IfModRevision is the mod revision the key must have (0: must not
	// exist); -1 takes the one read just before writing.
	IfModRevision int64
	DryRun        bool
	Yes           bool
}

func (w *WriteFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().Int64Var(&w.IfModRevision, "if-mod-revision", -1, "write only if the key is at this mod revision (0: only if it does not exist); default: the revision read just before")
	cmd.Flags().BoolVar(&w.DryRun, "dry-run", false, "print the change as a diff and write nothing")
	cmdutil.AddYesFlag(cmd.Flags(), &w.Yes, "before changing a Kubernetes object")
	w.StorageFlags.AddFlags(cmd.Flags())
}

// PutOptions are the options of `kubectl etcd put`.
type PutOptions struct {
	*cmdutil.Factory
	WriteFlags
	Key   string
	Value string
	File  string

	hasValue bool
}

// NewCmdPut returns the put command.
func NewCmdPut(f *cmdutil.Factory) *cobra.Command {
	o := &PutOptions{}
	cmd := &cobra.Command{
		Use:   "put KEY (-f FILE | VALUE)",
		Short: "Write a Kubernetes object or a plain value, with a compare-and-swap",
		Long: `Write one key. Under the storage prefix, -f takes an object (YAML or JSON)
and stores the bytes kube-apiserver would: protobuf for built-in kinds, JSON for
custom resources, encrypted with the write key of --encryption-provider-config.
An object whose kind, namespace or name does not match the key is refused.

The write is a compare-and-swap on the key's mod revision as read just before
(or --if-mod-revision): a concurrent change makes it fail, not overwrite.
Changing a Kubernetes object asks first (or takes --yes); --dry-run shows the
change. Other keys are written as given, as etcdctl does.

The apiserver does not see writes made behind its back until its watch
cache catches up, and skips its validation and admission: prefer kubectl
whenever the apiserver works.`,
		Example: `  # See what would change
  kubectl etcd put /registry/configmaps/default/app -f app.yaml --dry-run

  # Write it
  kubectl etcd put /registry/configmaps/default/app -f app.yaml --yes

  # A plain key, as etcdctl does
  kubectl etcd put /config/db_url postgres://db:5432`,
		Args: cmdutil.ValidateArgs(cobra.RangeArgs(1, 2)),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVarP(&o.File, "filename", "f", "", "file holding the object or value; - for standard input")
	o.addFlags(cmd)
	return cmd
}

// Complete takes the key and the value, if given.
func (o *PutOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Key = f, args[0]
	if len(args) == 2 {
		o.Value, o.hasValue = args[1], true
	}
	return nil
}

// Validate checks that the value comes one way.
func (o *PutOptions) Validate() error {
	if o.hasValue == (o.File != "") {
		return errors.New("give either VALUE or -f FILE")
	}
	return nil
}

func (w *WriteFlags) underPrefix(key string) bool {
	return strings.HasPrefix(key, strings.TrimSuffix(w.StoragePrefix, "/")+"/")
}

// render is a value as a person reads it: the decoded object as YAML, or
// the text.
func render(d *storage.Decoder, key string, value []byte) string {
	if value == nil {
		return ""
	}
	o, err := d.Decode(key, value, 0)
	if err != nil || o.Object == nil {
		return string(value) + "\n"
	}
	m, err := storage.ToMap(o.Object)
	if err != nil {
		return string(value) + "\n"
	}
	b, _ := yaml.Marshal(m)
	return string(b)
}

// Run writes the key.
func (o *PutOptions) Run(ctx context.Context) error {
	d, err := o.Decoder()
	if err != nil {
		return err
	}
	var value []byte
	if o.File != "" {
		if o.File == "-" {
			value, err = io.ReadAll(o.In)
		} else {
			value, err = os.ReadFile(o.File)
		}
		if err != nil {
			return err
		}
		if o.underPrefix(o.Key) {
			_, gvk, err := storage.Encode(value)
			if err != nil {
				return err
			}
			if err := storage.CheckMatchesKey(o.StoragePrefix, o.Key, gvk, value); err != nil {
				return err
			}
			if value, err = storage.EncodeFor(d, o.StoragePrefix, o.Key, value); err != nil {
				return err
			}
		}
	} else {
		value = []byte(o.Value)
	}
	cfg, cli, cur, err := readCurrent(ctx, o.Factory, "writing a key", o.Key)
	if err != nil {
		return err
	}
	defer cli.Close()
	expect, old := int64(0), []byte(nil)
	if cur != nil {
		expect, old = cur.ModRevision, cur.Value
	}
	if o.IfModRevision >= 0 && o.IfModRevision != expect {
		return fmt.Errorf("%w: %s is at mod revision %d, not %d; nothing was written", cas.ErrConflict, o.Key, expect, o.IfModRevision)
	}
	diff := diff.Lines(render(d, o.Key, old), render(d, o.Key, value))
	if o.DryRun {
		fmt.Fprintf(o.Out, "%s", diff)
		fmt.Fprintf(o.ErrOut, "dry run: %s not written (mod revision %d)\n", o.Key, expect)
		return nil
	}
	if o.underPrefix(o.Key) {
		if !o.Yes {
			fmt.Fprintf(o.ErrOut, "%s", diff)
		}
		if err := cmdutil.Confirm(o.Factory, fmt.Sprintf("write %s at mod revision %d", o.Key, expect), o.Yes); err != nil {
			return err
		}
	}
	wctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	rev, err := cas.CompareAndPut(wctx, cli, o.Key, value, expect)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%s written at revision %d\n", o.Key, rev)
	return nil
}

// DelOptions are the options of `kubectl etcd del`.
type DelOptions struct {
	*cmdutil.Factory
	WriteFlags
	Key string
}

// NewCmdDel returns the del command.
func NewCmdDel(f *cmdutil.Factory) *cobra.Command {
	o := &DelOptions{}
	cmd := &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"delete"},
		Short:   "Delete one key, with a compare-and-swap",
		Long: `Delete one key if its mod revision is still the one read just before (or
--if-mod-revision). Deleting a Kubernetes object asks first (or takes --yes):
the apiserver runs no finalizers or garbage collection for it.`,
		Example: `  # A stuck object the apiserver cannot delete
  kubectl etcd del /registry/namespaces/stuck --dry-run
  kubectl etcd del /registry/namespaces/stuck --yes`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	o.addFlags(cmd)
	return cmd
}

// Complete takes the key.
func (o *DelOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Key = f, args[0]
	return nil
}

// Validate has nothing to check: the compare-and-swap guards the delete.
func (o *DelOptions) Validate() error { return nil }

// Run deletes the key.
func (o *DelOptions) Run(ctx context.Context) error {
	d, err := o.Decoder()
	if err != nil {
		return err
	}
	cfg, cli, cur, err := readCurrent(ctx, o.Factory, "deleting a key", o.Key)
	if err != nil {
		return err
	}
	defer cli.Close()
	if cur == nil {
		return fmt.Errorf("key %s not found", o.Key)
	}
	if o.IfModRevision >= 0 && o.IfModRevision != cur.ModRevision {
		return fmt.Errorf("%w: %s is at mod revision %d, not %d; nothing was deleted", cas.ErrConflict, o.Key, cur.ModRevision, o.IfModRevision)
	}
	diff := diff.Lines(render(d, o.Key, cur.Value), "")
	if o.DryRun {
		fmt.Fprintf(o.Out, "%s", diff)
		fmt.Fprintf(o.ErrOut, "dry run: %s not deleted (mod revision %d)\n", o.Key, cur.ModRevision)
		return nil
	}
	if o.underPrefix(o.Key) {
		if err := cmdutil.Confirm(o.Factory, fmt.Sprintf("delete %s at mod revision %d", o.Key, cur.ModRevision), o.Yes); err != nil {
			return err
		}
	}
	wctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	rev, err := cas.CompareAndDelete(wctx, cli, o.Key, cur.ModRevision)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%s deleted at revision %d\n", o.Key, rev)
	return nil
}

// readCurrent connects for op and reads key as it is now (nil when it is
// absent), what a compare-and-swap write checks against. The caller closes
// the client.
func readCurrent(ctx context.Context, f *cmdutil.Factory, op, key string) (*connect.Config, *clientv3.Client, *storage.KV, error) {
	cfg, cli, err := f.ConnectedClient(op)
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	cur, err := cas.ReadKey(rctx, cli, key)
	cancel()
	if err != nil {
		cli.Close()
		return nil, nil, nil, err
	}
	return cfg, cli, cur, nil
}
