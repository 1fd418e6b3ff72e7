package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
)

// VerifyOptions are the options of `kubectl etcd snapshot verify`.
type VerifyOptions struct {
	*cmdutil.Factory
	Source            string
	Store             storeFlags
	Identity          identityFlags
	EncryptionConfig  string
	StoragePrefix     string
	EtcdVersion       string
	QuotaBackendBytes int64
	Print             *cmdutil.PrintFlags
}

// NewCmdVerify returns the snapshot verify command.
func NewCmdVerify(f *cmdutil.Factory) *cobra.Command {
	o := &VerifyOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput), StoragePrefix: storage.DefaultPrefix, QuotaBackendBytes: backup.DefaultQuotaBackendBytes}
	cmd := &cobra.Command{
		Use:   "verify FILE|URL",
		Short: "Run a restore drill on a snapshot without touching the cluster",
		Long: `Prove a snapshot restores, without touching any cluster: fetch it (a file
or s3:// URL, decrypted with --identity), check its sha256 trailer and
every page, restore it with etcdutl into a temporary directory, start it in
an embedded etcd on a loopback port, take its HashKV, and decode every key
under the storage prefix, decrypting encrypted values with
--encryption-provider-config as kube-apiserver would after a real restore.

It reports what would fail: the keys it cannot decode or decrypt (Secrets
encrypted with a key the config no longer has), data the etcd named by
--etcd-version cannot start (a 3.7 snapshot on etcd 3.6), and a database
that does not fit --quota-backend-bytes. Any failure exits non-zero; a
truncated or corrupt file is reported as such.

The fetched copy and the restored data go to $TMPDIR (/tmp when unset)
and are removed at the end: it needs room for twice the decompressed
snapshot, so point TMPDIR at a disk when /tmp is small or held in memory.`,
		Example: `  # The drill of the newest backup, as the restored cluster would run
  kubectl etcd snapshot verify s3://backups/etcd/prod/etcd-snapshot-20261125T120000Z-8e9e05c52164694d.db.zst.age \
    --identity key.txt --encryption-provider-config /etc/kubernetes/enc.yaml --etcd-version 3.6

  # A local file, as JSON
  kubectl etcd snapshot verify /var/backups/etcd.db -o json`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.EncryptionConfig, "encryption-provider-config", "", "the apiserver's EncryptionConfiguration file, to decrypt values encrypted at rest")
	fs.StringVar(&o.StoragePrefix, "storage-prefix", o.StoragePrefix, "the apiserver's --etcd-prefix: where Kubernetes objects are stored")
	fs.StringVar(&o.EtcdVersion, "etcd-version", "", "the etcd version the restored data will run on (3.6, 3.7.3): fail when it cannot start it")
	fs.Int64Var(&o.QuotaBackendBytes, "quota-backend-bytes", o.QuotaBackendBytes, "the restored member's --quota-backend-bytes: fail when the database does not fit")
	o.Store.AddFlags(fs)
	o.Identity.AddFlags(fs)
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Complete takes the snapshot and reads a template file.
func (o *VerifyOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Source = f, args[0]
	return o.Print.Complete()
}

// Validate checks the options.
func (o *VerifyOptions) Validate() error {
	if err := o.Print.Validate(); err != nil {
		return err
	}
	if o.QuotaBackendBytes <= 0 {
		return fmt.Errorf("--quota-backend-bytes must be positive, got %d", o.QuotaBackendBytes)
	}
	return nil
}

// Run runs the drill and prints its report.
func (o *VerifyOptions) Run(ctx context.Context) error {
	f, err := fetcher(o.Store, o.Identity)
	if err != nil {
		return err
	}
	d := &backup.Drill{Fetcher: f, StoragePrefix: o.StoragePrefix, EtcdVersion: o.EtcdVersion, QuotaBackendBytes: o.QuotaBackendBytes}
	if isTerminal(o.ErrOut) {
		d.Log = o.ErrOut
	}
	if o.EncryptionConfig != "" {
		enc, err := encryption.Load(o.EncryptionConfig)
		if err != nil {
			return err
		}
		defer enc.Close()
		d.Encryption = enc
	}
	rep, err := d.Run(ctx, o.Source)
	if rep == nil {
		return err
	}
	p := o.Print.Printer()
	if perr := p.Print(o.Out, rep, func(bool) error {
		if err := p.WriteTable(o.Out, []string{"CHECK", "RESULT"}, DrillRows(rep)); err != nil {
			return err
		}
		for _, u := range rep.Undecodable {
			fmt.Fprintf(o.Out, "cannot read %s: %s\n", u.Key, u.Reason)
		}
		return nil
	}); perr != nil {
		return perr
	}
	if errors.Is(err, backup.ErrDrillFailed) {
		return fmt.Errorf("restore drill of %s failed: %d problem%s (above)", o.Source, len(rep.Failures), plural(len(rep.Failures)))
	}
	return err
}

// DrillRows lists a drill's checks, one a row.
func DrillRows(rep *backup.DrillReport) [][]string {
	st := rep.Snapshot
	needs := rep.NeedsEtcd
	if needs == "" {
		needs = "the etcd that wrote it (no storage version recorded: before 3.6)"
	} else {
		needs = fmt.Sprintf("etcd %s or newer (storage version %s)", needs, st.StorageVersion)
	}
	rows := [][]string{
		{"snapshot", fmt.Sprintf("%s: sha256 trailer %s, every page checked, revision %d, %d keys", rep.Source, st.HashCheck, st.Revision, st.TotalKeys)},
		{"needs", needs},
		{"size", fmt.Sprintf("%s of a %s quota (%.0f%%)", output.Bytes(rep.DatabaseSize), output.Bytes(rep.Quota), 100*float64(rep.DatabaseSize)/float64(rep.Quota))},
	}
	if rep.AgeEncrypted {
		rows = append(rows, []string{"encryption", "age: decrypted with --identity"})
	}
	if rep.Revision != 0 {
		rows = append(rows,
			[]string{"restored", fmt.Sprintf("started in an embedded etcd at revision %d, HashKV %x", rep.Revision, rep.HashKV)},
			[]string{"keys", fmt.Sprintf("%d under %s, %d decoded; %d encrypted at rest, %d decrypted", rep.Keys, rep.Prefix, rep.Decoded, rep.Encrypted, rep.Decrypted)},
		)
	}
	for _, f := range rep.Failures {
		rows = append(rows, []string{"FAILED", f})
	}
	result := "ok: it restores"
	if !rep.OK {
		result = "FAILED"
	}
	rows = append(rows, []string{"result", result})
	return rows
}
