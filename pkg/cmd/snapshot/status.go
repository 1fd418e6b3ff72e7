package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// StatusOptions are the options of `kubectl etcd snapshot status`.
type StatusOptions struct {
	*cmdutil.Factory
	Path          string
	Print         *cmdutil.PrintFlags
	SkipHashCheck bool
	Store         storeFlags
	Identity      identityFlags
}

// NewCmdStatus returns the snapshot status command.
func NewCmdStatus(f *cmdutil.Factory) *cobra.Command {
	o := &StatusOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "status FILE|URL",
		Short: "Check a snapshot file and show its revision, keys, size and storage version",
		Long: `Check a snapshot file, plain or gzip/zstd compressed (recognised by its
content): the sha256 trailer etcd appends, the bbolt database structure,
then its revision, number of live keys, database size and storage version
(the etcd version it needs, empty before etcd 3.6). A truncated or corrupt
file is reported as such and the command exits non-zero, as is a file
without the trailer unless --skip-hash-check.

FILE may be an object in a backup location (s3://BUCKET/PREFIX/NAME): it is
streamed into a temporary file and checked against the sha256 its metadata
recorded. An age-encrypted snapshot needs --identity. Temporary files go
to $TMPDIR (/tmp when unset): point it at a disk with room for the
decompressed snapshot when /tmp is small or held in memory.`,
		Example: `  # Check a snapshot before relying on it
  kubectl etcd snapshot status /var/backups/etcd.db

  # A compressed one, as JSON
  kubectl etcd snapshot status etcd-snapshot-20261125T120000Z-rev1234.db.zst -o json

  # One in S3, encrypted
  kubectl etcd snapshot status s3://backups/etcd/prod/etcd-snapshot-20261125T120000Z-8e9e05c52164694d.db.zst.age --identity key.txt`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	o.Store.AddFlags(cmd.Flags())
	o.Identity.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.SkipHashCheck, "skip-hash-check", false, "accept a file without a sha256 trailer (member/snap/db copied out of a data directory)")
	return cmd
}

// Complete takes the file and reads a template file.
func (o *StatusOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Path = f, args[0]
	return o.Print.Complete()
}

// Validate checks the options.
func (o *StatusOptions) Validate() error { return o.Print.Validate() }

// Run checks the file and prints its status.
func (o *StatusOptions) Run(ctx context.Context) error {
	f, err := fetcher(o.Store, o.Identity)
	if err != nil {
		return err
	}
	fetched, err := f.Fetch(ctx, o.Path)
	if err != nil {
		return err
	}
	defer fetched.Close()
	st, err := snapshot.Status(fetched.Path, "")
	if err != nil {
		var ce *snapshot.CorruptError
		if errors.As(err, &ce) {
			ce.Path = o.Path
		}
		return err
	}
	st.Path = o.Path
	if st.HashCheck != snapshot.HashOK && !o.SkipHashCheck {
		return &snapshot.CorruptError{Path: o.Path, Reason: "it has no sha256 trailer, so its integrity cannot be checked: a file saved by etcd has one; for member/snap/db copied out of a data directory pass --skip-hash-check"}
	}
	return o.Print.Printer().PrintTable(o.Out, st, func(bool) ([]string, [][]string) {
		return StatusTable(st)
	})
}

// StatusTable builds the status row of a snapshot file: the columns of
// `etcdutl snapshot status -w table`, then the hash check and storage.
func StatusTable(st *snapshot.FileStatus) ([]string, [][]string) {
	headers := []string{"HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", "STORAGE VERSION", "SHA256 TRAILER", "COMPRESSION", "FILE SIZE"}
	row := []string{
		fmt.Sprintf("%x", st.Hash),
		fmt.Sprint(st.Revision),
		fmt.Sprint(st.TotalKeys),
		output.Bytes(st.TotalSize),
		orNone(st.StorageVersion),
		st.HashCheck,
		orNone(st.Compression),
		output.Bytes(st.FileSize),
	}
	return headers, [][]string{row}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
