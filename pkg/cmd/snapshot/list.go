package snapshot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// ListOptions are the options of `kubectl etcd snapshot list`.
type ListOptions struct {
	*cmdutil.Factory
	Location objectstore.Location
	Store    storeFlags
	Print    *cmdutil.PrintFlags
}

// NewCmdList returns the snapshot list command.
func NewCmdList(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "list LOCATION",
		Short: "List the snapshots in a backup directory or S3 prefix",
		Long: `List the snapshots saved into LOCATION, a directory or s3://BUCKET/PREFIX/,
newest first, from their metadata objects: when and from which member each
was taken, its revision, keys and size, the etcd version it needs, its
compression and encryption, and how it was verified at save. A snapshot
whose metadata is missing is listed by its name alone. Other objects in the
location are left out.`,
		Example: `  # The catalog of an S3 prefix
  kubectl etcd snapshot list s3://backups/etcd/prod/

  # Of a directory, as JSON
  kubectl etcd snapshot list /var/backups/etcd -o json`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	o.Store.AddFlags(cmd.Flags())
	return cmd
}

// Complete parses the location and reads a template file.
func (o *ListOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) (err error) {
	o.Factory = f
	if o.Location, err = objectstore.ParseLocation(args[0]); err != nil {
		return cmdutil.UsageErrorf(cmd, "%v", err)
	}
	return o.Print.Complete()
}

// Validate checks the options.
func (o *ListOptions) Validate() error { return o.Print.Validate() }

// Run prints the catalog.
func (o *ListOptions) Run(ctx context.Context) error {
	st, err := objectstore.Open(ctx, o.Location, o.Store.S3Options)
	if err != nil {
		return err
	}
	entries, err := backup.List(ctx, st)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []backup.Entry{}
	}
	p := o.Print.Printer()
	return p.Print(o.Out, entries, func(bool) error {
		return p.WriteTable(o.Out, catalogHeaders, CatalogRows(entries))
	})
}

var catalogHeaders = []string{"NAME", "TAKEN", "MEMBER", "REVISION", "KEYS", "SIZE", "NEEDS ETCD", "COMPRESSION", "ENCRYPTION", "VERIFIED"}

// CatalogRows builds one row per snapshot.
func CatalogRows(entries []backup.Entry) [][]string {
	var rows [][]string
	for _, e := range entries {
		taken := e.Taken.UTC().Format(time.RFC3339)
		md := e.Metadata
		if md == nil {
			rows = append(rows, []string{e.Name, taken, "<unknown>", "<unknown>", "<unknown>", output.Bytes(e.Size), "<unknown>", "<unknown>", "<unknown>", "no metadata: " + e.MetadataError})
			continue
		}
		keys := fmt.Sprint(md.TotalKeys)
		if md.TotalKeys == 0 {
			keys = "<unknown>"
		}
		encryption := "none"
		if md.Encryption != "" {
			encryption = fmt.Sprintf("%s (%d recipient%s)", md.Encryption, len(md.Recipients), plural(len(md.Recipients)))
		}
		needs := snapshot.MinorVersion(md.StorageVersion)
		if needs == "" {
			needs = "<none>"
		}
		rows = append(rows, []string{
			e.Name, taken, md.Member, fmt.Sprint(md.Revision), keys, output.Bytes(e.Size),
			needs, orNone(md.Compression), encryption, strings.TrimSpace(md.Verified),
		})
	}
	return rows
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
