// Package stats holds `kubectl etcd stats`: what the key space holds, per
// resource type.
package stats

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
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
	Output      string
	NoHeaders   bool
}

// NewCmdStats returns the stats command.
func NewCmdStats(f *cmdutil.Factory) *cobra.Command {
	o := &Options{Factory: f, Output: output.Table}
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
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Prefix = strings.TrimSuffix(o.StoragePrefix, "/") + "/"
			if len(args) == 1 {
				o.Prefix = args[0]
			}
			if err := cmdutil.TableOutput.Validate(cmd, o.Output); err != nil {
				return err
			}
			if o.Top < 0 {
				return cmdutil.UsageErrorf(cmd, "--top must not be negative")
			}
			return o.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.ByNamespace, "by-namespace", false, "one row per resource and namespace")
	fs.IntVar(&o.Top, "top", 0, "also list the N largest values")
	fs.Int64Var(&o.Rev, "rev", 0, "read at this revision (default: the newest)")
	fs.StringVar(&o.Snapshot, "snapshot", "", "read this snapshot or member db file instead of a live cluster")
	cmdutil.TableOutput.AddFlags(cmd, &o.Output, &o.NoHeaders)
	o.StorageFlags.AddFlags(fs)
	return cmd
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
	return output.Write(o.Out, o.Output, st, func(bool) error {
		headers, rows := Table(st, o.ByNamespace, o.Snapshot != "")
		if err := output.WriteTable(o.Out, headers, rows, o.NoHeaders); err != nil {
			return err
		}
		if len(st.Largest) > 0 {
			fmt.Fprintln(o.Out)
			var top [][]string
			for _, k := range st.Largest {
				top = append(top, []string{k.Key, strconv.FormatInt(k.Bytes, 10)})
			}
			return output.WriteTable(o.Out, []string{"LARGEST KEY", "BYTES"}, top, o.NoHeaders)
		}
		return nil
	})
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
