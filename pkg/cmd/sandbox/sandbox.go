// Package sandbox holds the sandbox commands: a real local etcd cluster
// with kubeadm-style TLS, run by this binary, for demos and practice.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
)

// NewCmdSandbox returns the sandbox command group.
func NewCmdSandbox(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local etcd cluster with kubeadm-style TLS for demos and practice",
		Long: `Run a real etcd cluster of 1 or 3 members on this machine, one process per
member on 127.0.0.1, 127.0.0.2, ..., with a CA, server, peer and client
certificates laid out as kubeadm does. The members are this binary running
etcd's embedded server: no etcd binary is needed.

Everything lives in the directory given with --dir: certificates, data,
one configuration file and one log per member.`,
		Example: `  # Start three members and point kubectl etcd and etcdctl at them
  kubectl etcd sandbox up --dir /tmp/etcd-sandbox
  eval "$(kubectl etcd sandbox env --dir /tmp/etcd-sandbox)"
  kubectl etcd status

  # Stop it and remove its data
  kubectl etcd sandbox down --dir /tmp/etcd-sandbox --purge`,
	}
	cmd.AddCommand(newCmdUp(f), newCmdDown(f), newCmdStatus(f), newCmdEnv(f), newCmdMember(f))
	return cmd
}

func addDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "dir", "", "directory holding the sandbox's certificates, data and logs (required)")
}

func requireDir(dir string) error {
	if dir == "" {
		return errors.New("--dir is required: the directory that holds (or will hold) the sandbox")
	}
	return nil
}

// UpOptions are the options of `sandbox up`.
type UpOptions struct {
	*cmdutil.Factory
	sandbox.UpOptions
}

func newCmdUp(f *cmdutil.Factory) *cobra.Command {
	o := &UpOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the sandbox cluster (create it if the directory is new) and wait until it is healthy",
		Example: `  # Three members
  kubectl etcd sandbox up --dir /tmp/etcd-sandbox

  # One member, clients from port 12379 up
  kubectl etcd sandbox up --dir /tmp/etcd-one --members 1 --client-port 12379`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	addDirFlag(cmd, &o.Dir)
	cmd.Flags().IntVar(&o.Members, "members", 0, "number of members, 1 or 3 (default 3; a stopped sandbox restarts with the size it has)")
	cmd.Flags().IntVar(&o.ClientPort, "client-port", 2379, "first client port to try; the peer port is the next one")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", time.Minute, "how long to wait for the members to become healthy")
	return cmd
}

// Complete binds the factory.
func (o *UpOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	return nil
}

// Validate checks the options.
func (o *UpOptions) Validate() error {
	if err := requireDir(o.Dir); err != nil {
		return err
	}
	if o.Members != 0 && o.Members != 1 && o.Members != 3 {
		return fmt.Errorf("--members must be 1 or 3, got %d", o.Members)
	}
	return nil
}

// Run starts the sandbox and prints how to reach it.
func (o *UpOptions) Run(ctx context.Context) error {
	o.Progress = o.ErrOut
	s, err := sandbox.Up(ctx, o.UpOptions)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "etcd sandbox with %d members is healthy in %s\n\nReach it with:\n  kubectl etcd %s status\n\nor export for kubectl etcd and etcdctl:\n", len(s.Members), s.Dir, strings.Join(s.ConnectArgs(), " "))
	for _, e := range s.Exports() {
		fmt.Fprintf(o.Out, "  export %s\n", e)
	}
	fmt.Fprintf(o.Out, "\nStop it with:\n  kubectl etcd sandbox down --dir %s\n", o.Dir)
	return nil
}

// DownOptions are the options of `sandbox down`.
type DownOptions struct {
	*cmdutil.Factory
	Dir     string
	Purge   bool
	Timeout time.Duration
}

func newCmdDown(f *cmdutil.Factory) *cobra.Command {
	o := &DownOptions{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop every member of the sandbox; --purge also removes its directory",
		Example: `  # Stop, keeping certificates and data for a later 'sandbox up'
  kubectl etcd sandbox down --dir /tmp/etcd-sandbox

  # Stop and remove everything
  kubectl etcd sandbox down --dir /tmp/etcd-sandbox --purge`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	addDirFlag(cmd, &o.Dir)
	cmd.Flags().BoolVar(&o.Purge, "purge", false, "also remove the directory: certificates, data and logs")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 10*time.Second, "how long to wait for a member to stop before killing it")
	return cmd
}

// Complete binds the factory.
func (o *DownOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	return nil
}

// Validate checks the options.
func (o *DownOptions) Validate() error { return requireDir(o.Dir) }

// Run stops the members and says which.
func (o *DownOptions) Run(context.Context) error {
	stopped, err := sandbox.Down(o.Dir, o.Purge, o.Timeout)
	for _, name := range stopped {
		fmt.Fprintf(o.Out, "stopped %s\n", name)
	}
	if err != nil {
		return err
	}
	if len(stopped) == 0 {
		fmt.Fprintln(o.Out, "no sandbox member was running")
	}
	if o.Purge {
		fmt.Fprintf(o.Out, "removed %s\n", o.Dir)
	}
	return nil
}

// StatusOptions are the options of `sandbox status`.
// Their Complete is PrintOptions'.
type StatusOptions struct {
	cmdutil.PrintOptions
	Dir string
}

func newCmdStatus(f *cmdutil.Factory) *cobra.Command {
	o := &StatusOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show whether each sandbox member runs and is healthy",
		Example: `  kubectl etcd sandbox status --dir /tmp/etcd-sandbox`,
		Args:    cmdutil.ValidateArgs(cobra.NoArgs),
		RunE:    cmdutil.RunE(f, o),
	}
	addDirFlag(cmd, &o.Dir)
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Validate checks the options.
func (o *StatusOptions) Validate() error {
	if err := requireDir(o.Dir); err != nil {
		return err
	}
	return o.PrintOptions.Validate()
}

// Run prints each member's state; one that is not healthy exits 5.
func (o *StatusOptions) Run(ctx context.Context) error {
	_, members, err := sandbox.Inspect(ctx, o.Dir)
	if err != nil {
		return err
	}
	if err := o.Print.Printer().PrintTable(o.Out, members, func(bool) ([]string, [][]string) {
		return MemberTable(members)
	}); err != nil {
		return err
	}
	for _, m := range members {
		if !m.Healthy {
			return cmdutil.Unhealthy("sandbox member %s: %s", m.Name, m.Error)
		}
	}
	return nil
}

// MemberTable builds the sandbox status rows.
func MemberTable(members []sandbox.MemberState) ([]string, [][]string) {
	var rows [][]string
	for _, m := range members {
		pid := "-"
		if m.PID != 0 {
			pid = strconv.Itoa(m.PID)
		}
		errText := m.Error
		if errText == "" {
			errText = "<none>"
		}
		rows = append(rows, []string{m.Name, m.Endpoint, pid, strconv.FormatBool(m.Running), strconv.FormatBool(m.Healthy), errText})
	}
	return []string{"NAME", "ENDPOINT", "PID", "RUNNING", "HEALTHY", "ERROR"}, rows
}

// EnvOptions are the options of `sandbox env`.
type EnvOptions struct {
	*cmdutil.Factory
	Dir string
}

// Complete binds the factory.
func (o *EnvOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	return nil
}

// Validate checks the options.
func (o *EnvOptions) Validate() error { return requireDir(o.Dir) }

// Run prints the export lines.
func (o *EnvOptions) Run(context.Context) error {
	s, err := sandbox.Load(o.Dir)
	if err != nil {
		return err
	}
	for _, e := range s.Exports() {
		fmt.Fprintf(o.Out, "export %s\n", e)
	}
	return nil
}

func newCmdEnv(f *cmdutil.Factory) *cobra.Command {
	o := &EnvOptions{}
	cmd := &cobra.Command{
		Use:     "env",
		Short:   "Print export lines that point kubectl etcd and etcdctl at the sandbox",
		Example: `  eval "$(kubectl etcd sandbox env --dir /tmp/etcd-sandbox)"`,
		Args:    cmdutil.ValidateArgs(cobra.NoArgs),
		RunE:    cmdutil.RunE(f, o),
	}
	addDirFlag(cmd, &o.Dir)
	return cmd
}

// newCmdMember is what `sandbox up` runs in the background, once per
// member; it is hidden because users never call it.
// MemberOptions are the options of the hidden `sandbox member`.
type MemberOptions struct {
	Config string
}

// Complete has nothing to take: the member reads its configuration file.
func (o *MemberOptions) Complete(*cmdutil.Factory, *cobra.Command, []string) error { return nil }

// Validate checks the options.
func (o *MemberOptions) Validate() error {
	if o.Config == "" {
		return errors.New("--config is required")
	}
	return nil
}

// Run runs the member until the context ends.
func (o *MemberOptions) Run(ctx context.Context) error {
	if _, err := os.Stat(o.Config); err != nil {
		return err
	}
	return sandbox.RunMember(ctx, o.Config)
}

func newCmdMember(f *cmdutil.Factory) *cobra.Command {
	o := &MemberOptions{}
	cmd := &cobra.Command{
		Use:    "member --config FILE",
		Short:  "Run one sandbox member in the foreground",
		Hidden: true,
		Args:   cmdutil.ValidateArgs(cobra.NoArgs),
		RunE:   cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVar(&o.Config, "config", "", "etcd configuration file of the member")
	return cmd
}
