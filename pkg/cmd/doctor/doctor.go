// Package doctor holds `kubectl etcd doctor`: one report of what is wrong
// with the cluster and what to run next.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

// Options are the options of `kubectl etcd doctor`.
// Their Complete is PrintOptions'.
type Options struct {
	cmdutil.PrintOptions
	// Now is the time certificates are checked against; tests pin it.
	Now func() time.Time
	// SampleWindow, WALFsyncP99 and BackendCommitP99 shape the disk and
	// leader-change checks (see doctor.GatherOptions).
	SampleWindow     time.Duration
	WALFsyncP99      time.Duration
	BackendCommitP99 time.Duration
	// Offline reports on the data directory alone (DataDir, or the
	// manifest's), for an etcd that does not run.
	Offline bool
	DataDir string
	// Bundle, when set, is the support bundle file to write.
	Bundle        string
	StoragePrefix string
}

// NewCmdDoctor returns the doctor command.
func NewCmdDoctor(f *cmdutil.Factory) *cobra.Command {
	o := &Options{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput), Now: time.Now,
		SampleWindow: doctor.SampleWindow, WALFsyncP99: doctor.WALFsyncP99, BackendCommitP99: doctor.BackendCommitP99}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the cluster for common problems and say what to do about each",
		Long: `Check everything that commonly goes wrong with an etcd cluster and explain
each finding in plain words, with the command to run next: members down or
not serving quorum reads, quorum lost or one failure from lost, no leader,
learners waiting for promotion, members whose raft index lags, alarms
(NOSPACE, CORRUPT), databases over 80% of their quota, more than 200 MiB of
free pages to defragment, mixed etcd versions, members whose keyspace
hashes differ, this node's etcd manifest (--etcd-manifest, when present)
whose --initial-cluster disagrees with the member list, plaintext client
or peer URLs, and certificates expired or expiring within 30 days (each
member's server certificate as it presents it, the client certificate in
use, and the etcd PKI under --pki-dir when it is there). Beside the
manifest's data directory it names, with their sizes, the copies an
interrupted recover quorum or snapshot restore left, and the data
directories the member no longer runs on (the original after a recovery
or restore): no later run removes them, and each can be as large as the
database, on the disk etcd writes to.

Each member's /metrics is read twice, --sample-window apart, for two more
checks: slow disks (the 99th percentile of WAL fsync and backend commit
durations over the window, or since the member started when the window
saw few writes, above etcd's guidance of 10ms and 25ms), and leader
changes (any during the window, or more than 3 since a member started at
over one an hour).

With --offline, nothing is asked of a cluster: the report is for an etcd
that does not run, from its files alone (--data-dir, by default the
manifest's data directory): how the WAL ends (a torn last record etcd
repairs at start, or damage it refuses), its last term, committed index and
members, the newest raft snapshot, the bbolt database's integrity, raft's
membership against the v3 store's members bucket (zombie or missing
members), the database's size against the manifest's --quota-backend-bytes,
its storage version against the manifest's image, the corruption-check
feature gates, and the data directory's modes and owners.

--bundle FILE.tar.gz also writes a support bundle to attach to an issue:
both reports, the static pod manifests, the members, metrics, and every
key's name and value size per resource. No value of any key is in it.

Exit status: 5 when any finding is an error, 0 with warnings only.`,
		Example: `  # On a control-plane node
  sudo kubectl etcd doctor

  # For a script: every finding as JSON
  kubectl etcd doctor -o json

  # etcd will not start: what do its files say?
  sudo kubectl etcd doctor --offline

  # A support bundle to attach to an issue
  sudo kubectl etcd doctor --offline --bundle etcd-support.tar.gz

  # Watch the leader and the disks for 30 seconds rather than 3
  kubectl etcd doctor --sample-window 30s`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	cmd.Flags().DurationVar(&o.SampleWindow, "sample-window", o.SampleWindow, "how long to watch the members' metrics for leader changes and disk latency (0: read them once)")
	cmd.Flags().DurationVar(&o.WALFsyncP99, "wal-fsync-threshold", o.WALFsyncP99, "p99 WAL fsync duration above which a member's disk is reported slow")
	cmd.Flags().DurationVar(&o.BackendCommitP99, "backend-commit-threshold", o.BackendCommitP99, "p99 backend commit duration above which a member's disk is reported slow")
	cmd.Flags().BoolVar(&o.Offline, "offline", false, "report on the data directory alone, for an etcd that does not run")
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "the etcd data directory for --offline and --bundle (default: the manifest's, else "+DefaultDataDir+")")
	cmd.Flags().StringVar(&o.Bundle, "bundle", "", "also write a support bundle (FILE.tar.gz): both reports, manifests, members, metrics, key names and sizes, no values")
	cmd.Flags().StringVar(&o.StoragePrefix, "storage-prefix", storage.DefaultPrefix, "kube-apiserver's --etcd-prefix, to group the bundle's keys per resource")
	return cmd
}

// Validate checks the options.
func (o *Options) Validate() error {
	if err := o.PrintOptions.Validate(); err != nil {
		return err
	}
	if o.SampleWindow < 0 {
		return fmt.Errorf("--sample-window must not be negative, got %s", o.SampleWindow)
	}
	if o.WALFsyncP99 <= 0 || o.BackendCommitP99 <= 0 {
		return errors.New("--wal-fsync-threshold and --backend-commit-threshold must be positive")
	}
	if o.DataDir != "" && !o.Offline && o.Bundle == "" {
		return errors.New("--data-dir is for --offline or --bundle")
	}
	if o.Bundle != "" && !strings.HasSuffix(o.Bundle, ".tar.gz") && !strings.HasSuffix(o.Bundle, ".tgz") {
		return fmt.Errorf("--bundle must name a .tar.gz file, got %q", o.Bundle)
	}
	return nil
}

// Run gathers, diagnoses and prints; an error finding exits 5.
func (o *Options) Run(ctx context.Context) error {
	if o.Offline {
		return o.runOffline(ctx)
	}
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	facts := doctor.Gather(ctx, cfg, cli, doctor.GatherOptions{
		PKIDir: o.Connect.PKIDir, ManifestPath: o.Connect.EtcdManifest, Now: o.Now(),
		SampleWindow: o.SampleWindow, WALFsyncP99: o.WALFsyncP99, BackendCommitP99: o.BackendCommitP99,
	})
	report := doctor.Diagnose(facts)
	if o.Bundle != "" {
		if err := o.writeBundle(ctx, nil, nil, facts); err != nil {
			return err
		}
	}
	return o.print(report)
}

func unhealthy(r *doctor.Report) error {
	return cmdutil.Unhealthy("%s: see the findings above", counts(r))
}

func counts(r *doctor.Report) string {
	return fmt.Sprintf("%d %s, %d %s", r.Errors, plural(r.Errors, "error"), r.Warnings, plural(r.Warnings, "warning"))
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
