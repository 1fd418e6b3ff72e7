// Package config holds `kubectl etcd config get` and `kubectl etcd config
// set`: the etcd flags of this control-plane node's static pod manifest,
// read, and changed one node at a time while the cluster serves.
package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcdflags"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// NewCmdConfig returns the config command group.
func NewCmdConfig(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read or change the etcd flags of this node's static pod manifest",
		Long: `Read the etcd flags of this control-plane node's etcd static pod manifest,
or change some of them with a rolling restart that keeps the cluster
serving: 'config set' takes the same lock, preflight, gate and rollback as
'kubectl etcd upgrade'. Run 'config set' on every control-plane node.`,
	}
	cmd.AddCommand(NewCmdGet(f), NewCmdSet(f))
	return cmd
}

// GetOptions are the options of `kubectl etcd config get`.
type GetOptions struct {
	*cmdutil.Factory
	Print        *cmdutil.PrintFlags
	ManifestsDir string
	Names        []string

	node *bootstrap.Node
}

// NewCmdGet returns the config get command.
func NewCmdGet(f *cmdutil.Factory) *cobra.Command {
	o := &GetOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput), ManifestsDir: staticpod.DefaultManifestsDir}
	cmd := &cobra.Command{
		Use:   "get [FLAG...]",
		Short: "Print the etcd flags of this node's manifest",
		Long: `Print the flags of the etcd command in this node's static pod manifest
(etcd.yaml under --manifests-dir): every flag, or the named ones, with or
without their leading dashes. A named flag the manifest does not set is an
error. Reads the file only: etcd need not run.`,
		Example: `  # Every etcd flag of this node
  sudo kubectl etcd config get

  # The quota and raft's timing, as JSON
  sudo kubectl etcd config get quota-backend-bytes heartbeat-interval election-timeout -o json`,
		Args: cmdutil.ValidateArgs(cobra.ArbitraryArgs),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVar(&o.ManifestsDir, "manifests-dir", o.ManifestsDir, "directory of the kubelet's static pod manifests")
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Complete takes the flag names and reads a template file.
func (o *GetOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory = f
	o.Names = args
	n := bootstrap.NewNode()
	n.ManifestsDir = o.ManifestsDir
	o.node = n
	return o.Print.Complete()
}

// Validate checks -o.
func (o *GetOptions) Validate() error { return o.Print.Validate() }

// Run prints the flags.
func (o *GetOptions) Run(context.Context) error {
	flags, err := o.node.EtcdFlags(o.Names...)
	if err != nil {
		return err
	}
	return o.Print.Printer().PrintTable(o.Out, flags, func(bool) ([]string, [][]string) {
		return FlagTable(flags)
	})
}

// FlagTable builds the config get rows.
func FlagTable(flags []bootstrap.EtcdFlag) ([]string, [][]string) {
	var rows [][]string
	for _, f := range flags {
		rows = append(rows, []string{f.Name, f.Value})
	}
	return []string{"FLAG", "VALUE"}, rows
}

// wrapList joins words with commas into lines of at most width
// characters, each starting with indent.
func wrapList(words []string, indent string, width int) string {
	var lines []string
	line := indent
	for i, w := range words {
		if i < len(words)-1 {
			w += ","
		}
		if line != indent && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}

// SetOptions are the options of `kubectl etcd config set`.
type SetOptions struct {
	*cmdutil.Factory
	ManifestsDir   string
	KubeletRootDir string
	BackupDir      string
	DryRun         bool
	Force          bool
	Yes            bool
	Timeout        time.Duration
	LockTimeout    time.Duration

	args     []string
	settings []etcdflags.Setting
	node     *bootstrap.Node
}

// NewCmdSet returns the config set command.
func NewCmdSet(f *cmdutil.Factory) *cobra.Command {
	o := &SetOptions{ManifestsDir: staticpod.DefaultManifestsDir, KubeletRootDir: staticpod.DefaultKubeletRootDir, Timeout: 2 * time.Minute, LockTimeout: 10 * time.Minute}
	cmd := &cobra.Command{
		Use:   "set FLAG=VALUE...",
		Short: "Change etcd flags in this node's manifest, one node at a time, with a rollback",
		Long: `Change etcd flags in this control-plane node's etcd static pod manifest
while the cluster serves. FLAG is written with or without its leading
dashes, as an argument or as a flag. Only these flags can be set:
` + wrapList(etcdflags.Settable, "  ", 74) + `

Run it on every control-plane node, one after the other or all at once:
the etcd lock ` + bootstrap.RestartLockName + ` makes them take turns.

  1. Values etcd would refuse at start are refused first, with the reason:
     a quota that is not a positive size (8GiB is written as 8589934592;
     over 8 GiB, etcd's advice, is a warning), an election timeout under 5
     heartbeats or over 50000 ms (the manifest's other value, or etcd's
     defaults 100 and 1000, when only one is given), a log level, URL or
     feature gate etcd does not read. On an etcd 3.5 image feature gates
     are written as its --experimental-* flags, and a gate without one is
     refused. Values the manifest already has change nothing: the
     command then only checks the member as in step 5, since a run
     stopped after it wrote them left them so.
     heartbeat-interval and election-timeout must be the same on every
     member: each change records the member's values in the cluster
     (` + "/kubectl-etcd/config/FLAG/MEMBER" + `) and names the members still to
     change; another value while one is under way is refused (--force
     overrides).
  2. The changes are printed and, without --yes, confirmed.
  3. The lock, then the preflight: every member healthy with quorum to
     spare while this one restarts (--force overrides).
  4. A copy of the old manifest in --backup-dir (by default
     etcd-config-TIME beside the manifests directory), leadership moved
     away when this member leads, the manifest moved away until etcd has
     stopped and the kubelet has cleaned up its pod (--kubelet-root-dir),
     and the new manifest written: the kubelet starts etcd with it.
  5. The gate: the member serves and catches up with the leader within
     --timeout, and reports the new quota when quota-backend-bytes
     changed. If not, the old manifest goes back and the command fails
     saying so. Interrupted here (Ctrl-C, SIGTERM, the terminal closed),
     it releases the lock and leaves the new manifest, saying how to check
     it or go back.`,
		Example: `  # Raise the quota on this node (then on every other control-plane node)
  sudo kubectl etcd config set quota-backend-bytes=8GiB --yes

  # Slower raft timing for a high-latency network: the same on every node
  sudo kubectl etcd config set --heartbeat-interval=250 --election-timeout=2500 --yes

  # What would happen, and the new manifest
  sudo kubectl etcd config set log-level=warn --dry-run`,
		Args: cmdutil.ValidateArgs(cobra.ArbitraryArgs),
		RunE: cmdutil.RunE(f, o),
	}
	// The etcd flags are flags here too, so --quota-backend-bytes=8GiB
	// reads as quota-backend-bytes=8GiB; Complete turns them into
	// arguments. Any other flag is unknown: say which ones are settable.
	for _, name := range etcdflags.Settable {
		cmd.Flags().String(name, "", "etcd's --"+name+": "+etcdflags.Hints[name])
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if strings.HasPrefix(err.Error(), "unknown flag: --") {
			return cmdutil.UsageErrorf(c, "%v; config set changes only %s", err, strings.Join(etcdflags.Settable, ", "))
		}
		return cmdutil.UsageErrorf(c, "%v", err)
	})
	cmd.Flags().StringVar(&o.ManifestsDir, "manifests-dir", o.ManifestsDir, "directory of the kubelet's static pod manifests")
	cmd.Flags().StringVar(&o.KubeletRootDir, "kubelet-root-dir", o.KubeletRootDir, "the kubelet's --root-dir: the new manifest is written once the kubelet has cleaned up the old pod there, so the new pod starts at once; an etcd the kubelet keeps restarting there (a 4th start, within about 70 s of the kubelet's back-off) ends the wait before --timeout")
	cmd.Flags().StringVar(&o.BackupDir, "backup-dir", "", "where the old manifest goes (default: a new etcd-config-TIME directory beside --manifests-dir)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "print the preflight, the plan and the new manifest instead of changing anything")
	cmd.Flags().BoolVar(&o.Force, "force", false, "change even when the preflight refuses (a member down, no quorum to spare)")
	cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long each gate waits: the member serving with the new flags and catching up, then every member healthy")
	cmd.Flags().DurationVar(&o.LockTimeout, "lock-timeout", o.LockTimeout, "how long to wait for another node's change, upgrade or restart to finish (0: no limit)")
	return cmd
}

// Complete takes the FLAG=VALUE arguments, and the etcd flags given as
// flags, and sets up this node.
func (o *SetOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Factory = f
	o.args = append([]string{}, args...)
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if etcdflags.IsSettable(fl.Name) {
			o.args = append(o.args, fl.Name+"="+fl.Value.String())
		}
	})
	o.node = o.LocalNode(o.ManifestsDir, o.KubeletRootDir, o.DryRun)
	return nil
}

// Validate checks the arguments on their own: the form, the flags that
// may be set, and each value.
func (o *SetOptions) Validate() error {
	if len(o.args) == 0 {
		return fmt.Errorf("give at least one FLAG=VALUE; the flags config set changes are %s", strings.Join(etcdflags.Settable, ", "))
	}
	settings, err := etcdflags.Parse(o.args)
	if err != nil {
		return err
	}
	o.settings = settings
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if o.LockTimeout < 0 {
		return errors.New("--lock-timeout must not be negative")
	}
	return nil
}

// Run changes the flags of this node's member.
func (o *SetOptions) Run(ctx context.Context) error {
	set := map[string]string{}
	for _, s := range o.settings {
		set[s.Name] = s.Value
	}
	res, err := o.node.ConfigSet(ctx, bootstrap.ConfigOptions{
		RestartOptions: bootstrap.RestartOptions{
			ClusterAccess: bootstrap.AccessFromFlags(o.Connect),
			Timeout:       o.Timeout,
			Force:         o.Force,
			LockTimeout:   o.LockTimeout,
		},
		Set:       set,
		BackupDir: o.BackupDir,
		Confirm: func(changes []bootstrap.FlagChange) error {
			return cmdutil.Confirm(o.Factory, fmt.Sprintf("change %s in %s and restart etcd", describe(changes), o.node.ManifestPath()), o.Yes)
		},
	})
	if err != nil {
		return err
	}
	if !o.DryRun && len(res.Changes) > 0 {
		fmt.Fprintf(o.Out, "etcd flags changed (%s); the old manifest is in %s\n", describe(res.Changes), res.BackupDir)
	}
	return nil
}

// describe lists changes as the question and the result say them.
func describe(changes []bootstrap.FlagChange) string {
	words := make([]string, 0, len(changes))
	for _, c := range changes {
		words = append(words, c.String())
	}
	return strings.Join(words, ", ")
}
