// Package stats holds `kubectl etcd stats`: what the key space holds, per
// resource type.
package stats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/stats"
)

// Options are the options of `kubectl etcd stats`.
type Options struct {
	*cmdutil.Factory
	cmdutil.StorageFlags
	Prefix      string
	ByNamespace bool
	Top         int
	Rev         int64
	Snapshot    string
	Print       *cmdutil.PrintFlags
}

// NewCmdStats returns the stats command.
func NewCmdStats(f *cmdutil.Factory) *cobra.Command {
	o := &Options{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "stats [PREFIX]",
		Short: "Count objects and bytes per resource type",
		Long: `Count the keys and the bytes of their current values per resource type
(and per namespace with --by-namespace), largest first, and list the largest
values (--top). From a snapshot file it also shows the bytes still held by
old revisions, which compaction and defragmentation would free.`,
		Example: `  # What fills the database
  kubectl etcd stats --top 10

  # Per namespace, from a snapshot
  kubectl etcd stats /registry/configmaps/ --by-namespace --snapshot backup.db`,
		Args: cmdutil.ValidateArgs(cobra.MaximumNArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.ByNamespace, "by-namespace", false, "one row per resource and namespace")
	fs.IntVar(&o.Top, "top", 0, "also list the N largest values")
	fs.Int64Var(&o.Rev, "rev", 0, "read at this revision (default: the newest)")
	fs.StringVar(&o.Snapshot, "snapshot", "", "read this snapshot or member db file instead of a live cluster")
	o.Print.AddFlags(cmd, true)
	o.StorageFlags.AddFlags(fs)
	return cmd
}

// Complete takes the prefix (default: everything under the storage
// prefix) and reads a template file.
func (o *Options) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory = f
	o.Prefix = strings.TrimSuffix(o.StoragePrefix, "/") + "/"
	if len(args) == 1 {
		o.Prefix = args[0]
	}
	return o.Print.Complete()
}

// Validate checks the options.
func (o *Options) Validate() error {
	if err := o.Print.Validate(); err != nil {
		return err
	}
	if o.Top < 0 {
		return errors.New("--top must not be negative")
	}
	return nil
}

// Run collects and prints.
func (o *Options) Run(ctx context.Context) error {
	var src source.Source
	so := stats.Options{Prefix: strings.TrimSuffix(o.StoragePrefix, "/"), ByNamespace: o.ByNamespace, Top: o.Top}
	rev := o.Rev
	if o.Snapshot != "" {
		end := storage.PrefixEnd(o.Prefix)
		if end == "\x00" {
			end = "" // every key, or no key sorts after the prefix
		}
		s, err := source.ReadSnapshotRange(o.Snapshot, o.Rev, o.Prefix, end)
		if err != nil {
			return err
		}
		src, rev, so.OldBytes = &source.SnapshotSource{Snapshot: s}, 0, s.OldBytes
	} else {
		cfg, cli, err := o.Client()
		if err != nil {
			return err
		}
		defer cli.Close()
		src = &source.Etcd{Client: cli, RequestContext: cfg.WithCommandTimeout, ChunkTimeout: cfg.CommandTimeout}
	}
	st, err := stats.Collect(ctx, src, o.Prefix, storage.PrefixEnd(o.Prefix), rev, so)
	if err != nil {
		return err
	}
	printer := o.Print.Printer()
	return printer.Print(o.Out, st, func(bool) error {
		headers, rows := Table(st, o.ByNamespace, o.Snapshot != "")
		if err := printer.WriteTable(o.Out, headers, rows); err != nil {
			return err
		}
		if len(st.Largest) > 0 {
			fmt.Fprintln(o.Out)
			headers, rows := LargestTable(st)
			return printer.WriteTable(o.Out, headers, rows)
		}
		return nil
	})
}

// LargestTable builds the rows of the largest values (--top).
func LargestTable(st *stats.Stats) ([]string, [][]string) {
	var rows [][]string
	for _, k := range st.Largest {
		rows = append(rows, []string{k.Key, strconv.FormatInt(k.Bytes, 10)})
	}
	return []string{"LARGEST KEY", "BYTES"}, rows
}

// Table builds the stats rows, with a total row last.
func Table(st *stats.Stats, byNamespace, old bool) ([]string, [][]string) {
	headers := []string{"RESOURCE"}
	if byNamespace {
		headers = append(headers, "NAMESPACE")
	}
	headers = append(headers, "COUNT", "BYTES")
	if old {
		headers = append(headers, "OLD REVISIONS BYTES")
	}
	var rows [][]string
	row := func(resource, ns string, count, bytes, oldBytes int64) {
		r := []string{resource}
		if byNamespace {
			r = append(r, ns)
		}
		r = append(r, strconv.FormatInt(count, 10), strconv.FormatInt(bytes, 10))
		if old {
			r = append(r, strconv.FormatInt(oldBytes, 10))
		}
		rows = append(rows, r)
	}
	for _, g := range st.Groups {
		row(g.Resource, g.Namespace, g.Count, g.Bytes, g.OldBytes)
	}
	row("TOTAL", "", st.Keys, st.Bytes, st.OldBytes)
	return headers, rows
}
