package member

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/members"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// ChangeOptions are what every membership change shares: the safety
// switches and the cluster as it was found.
type ChangeOptions struct {
	*cmdutil.Factory
	Force  bool
	DryRun bool
	Yes    bool

	op       *members.Operator
	statuses []cluster.MemberStatus
	views    []members.View
}

// AddFlags registers --force, --dry-run and --yes.
func (o *ChangeOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Force, "force", false, "proceed even when the preflight refuses (quorum loss, last voter, pending learner)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the preflight and the change, change nothing")
	cmdutil.AddYesFlag(fs, &o.Yes, "")
}

// connect connects and collects every member's status. The caller closes
// the client with o.close.
func (o *ChangeOptions) connect(ctx context.Context) error {
	cfg, cli, err := o.ConnectedClient("a member change")
	if err != nil {
		return err
	}
	o.op = &members.Operator{Config: cfg, Client: cli, Progress: o.ErrOut}
	if o.statuses, err = o.op.Collect(ctx); err != nil {
		cli.Close()
		return err
	}
	o.views = members.Views(o.statuses)
	return nil
}

func (o *ChangeOptions) close() {
	if o.op != nil {
		o.op.Client.Close()
	}
}

// target finds the member a NAME|ID argument names.
func (o *ChangeOptions) target(ref string) (members.View, error) {
	list := make([]cluster.Member, len(o.statuses))
	for i, s := range o.statuses {
		list[i] = s.Member
	}
	m, err := members.Resolve(list, ref)
	if err != nil {
		return members.View{}, err
	}
	for _, v := range o.views {
		if v.ID == m.ID {
			return v, nil
		}
	}
	return members.View{}, fmt.Errorf("member %s vanished", m.ID)
}

// preflight checks ch, prints the verdict on the error stream, and says
// whether to go on: not when refused (unless --force), not on --dry-run,
// not without confirmation.
func (o *ChangeOptions) preflight(ch members.Change) (members.Preflight, bool, error) {
	p := members.Check(o.views, ch)
	p.Write(o.ErrOut, o.Force)
	if p.Refused() && !o.Force {
		return p, false, p.Err()
	}
	if o.DryRun {
		fmt.Fprintf(o.Out, "Dry run: would %s; nothing was changed\n", p.Action())
		return p, false, nil
	}
	if err := cmdutil.Confirm(o.Factory, p.Action(), o.Yes); err != nil {
		return p, false, err
	}
	return p, true, nil
}

// changeMember is the run every change of one named member shares:
// connect, find the member ref names, check ch on it (preflight, dry run,
// confirmation), apply it, and print "Member X <done>". A change that
// breaks off says how the cluster stands.
func (o *ChangeOptions) changeMember(ctx context.Context, ref string, ch members.Change, done string, apply func(members.View, members.Preflight) error) error {
	if err := o.connect(ctx); err != nil {
		return err
	}
	defer o.close()
	target, err := o.target(ref)
	if err != nil {
		return err
	}
	ch.Target = target.ID
	p, proceed, err := o.preflight(ch)
	if !proceed {
		return err
	}
	if err := apply(target, p); err != nil {
		return o.failed(ctx, err)
	}
	fmt.Fprintf(o.Out, "Member %s %s\n", target.Label(), done)
	return nil
}

// failed adds to a change's error how the cluster looks now, so a user
// whose change broke off (a member died, a timeout) knows where it stands.
func (o *ChangeOptions) failed(ctx context.Context, err error) error {
	statuses, cerr := o.op.Collect(ctx)
	if cerr != nil {
		return fmt.Errorf("%w; the cluster cannot be read now: %v", err, cerr)
	}
	voters, healthy := 0, 0
	var down []string
	for _, v := range members.Views(statuses) {
		if !v.Healthy {
			down = append(down, v.Label())
		}
		if !v.Learner {
			voters++
			if v.Healthy {
				healthy++
			}
		}
	}
	state := fmt.Sprintf("%d of %d voters healthy (quorum %d)", healthy, voters, members.Quorum(voters))
	if len(down) > 0 {
		state += ", down: " + strings.Join(down, ", ")
	}
	return fmt.Errorf("%w; the cluster now: %s", err, state)
}

// NewCmdAdd returns `member add`.
func NewCmdAdd(f *cmdutil.Factory) *cobra.Command {
	o := &AddOptions{Print: cmdutil.NewPrintFlags(cmdutil.OutputFormats{output.Table, output.JSON})}
	cmd := &cobra.Command{
		Use:   "add NAME --peer-urls URL[,URL]",
		Short: "Add a member, as a learner unless --voter",
		Long: `Add a member to the cluster. It joins as a learner, which receives the
data but does not vote, so a slow or failing new member cannot cost the
cluster its quorum; promote it once it has caught up. Start the new etcd
with the printed --initial-cluster and --initial-cluster-state=existing.`,
		Example: `  # Add node-4 as a learner, then start etcd on it and promote it
  kubectl etcd member add node-4 --peer-urls https://10.0.0.4:2380
  kubectl etcd member promote node-4

  # See what would happen
  kubectl etcd member add node-4 --peer-urls https://10.0.0.4:2380 --dry-run`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringSliceVar(&o.PeerURLs, "peer-urls", nil, "the new member's peer URLs (its --initial-advertise-peer-urls)")
	cmd.Flags().BoolVar(&o.Voter, "voter", false, "add a voting member at once instead of a learner")
	o.Print.AddFlags(cmd, false)
	o.AddFlags(cmd.Flags())
	return cmd
}

// AddOptions are the options of `member add`.
type AddOptions struct {
	ChangeOptions
	Name     string
	PeerURLs []string
	Voter    bool
	Print    *cmdutil.PrintFlags
}

// Complete takes the name and reads a template file.
func (o *AddOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Name = f, args[0]
	return o.Print.Complete()
}

// Validate checks the flags.
func (o *AddOptions) Validate() error {
	if o.Name == "" {
		return errors.New("the member name must not be empty")
	}
	if err := o.Print.Validate(); err != nil {
		return err
	}
	return members.ValidatePeerURLs(o.PeerURLs)
}

// Run adds the member.
func (o *AddOptions) Run(ctx context.Context) error {
	if err := o.connect(ctx); err != nil {
		return err
	}
	defer o.close()
	for _, s := range o.statuses {
		if s.Name == o.Name {
			return fmt.Errorf("a member named %s exists already (%s): remove it first or pick another name", o.Name, s.ID)
		}
	}
	_, proceed, err := o.preflight(members.Change{Kind: members.Add, Name: o.Name, Voter: o.Voter, PeerURLs: o.PeerURLs})
	if !proceed {
		return err
	}
	res, err := o.op.Add(ctx, o.Name, o.PeerURLs, o.Voter)
	if err != nil {
		return o.failed(ctx, err)
	}
	return o.Print.Printer().Print(o.Out, res, func(bool) error {
		kind := "a learner"
		if !res.Learner {
			kind = "a voter"
		}
		fmt.Fprintf(o.Out, "Member %s (%s) added as %s. Start it with:\n", res.Name, res.ID, kind)
		_, err := fmt.Fprintf(o.Out, "ETCD_NAME=%q\nETCD_INITIAL_CLUSTER=%q\nETCD_INITIAL_ADVERTISE_PEER_URLS=%q\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
			res.Name, res.InitialCluster, strings.Join(o.PeerURLs, ","))
		return err
	})
}

// PromoteOptions are the options of `member promote`.
type PromoteOptions struct {
	ChangeOptions
	Member  string
	Timeout time.Duration
}

// NewCmdPromote returns `member promote`.
func NewCmdPromote(f *cmdutil.Factory) *cobra.Command {
	o := &PromoteOptions{Timeout: 2 * time.Minute}
	cmd := &cobra.Command{
		Use:   "promote NAME|ID",
		Short: "Promote a learner to a voting member once it has caught up",
		Long: `Promote a learner to a voter. etcd refuses while the learner trails the
leader; promote retries until it is in sync or --timeout passes, and says
how far behind it is.`,
		Example: `  # Promote the learner node-4, waiting up to 5 minutes for it to catch up
  kubectl etcd member promote node-4 --timeout 5m`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the learner to catch up")
	o.AddFlags(cmd.Flags())
	return cmd
}

// Complete takes the member.
func (o *PromoteOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Member = f, args[0]
	return nil
}

// Validate checks the timeout.
func (o *PromoteOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	return nil
}

// Run promotes the learner.
func (o *PromoteOptions) Run(ctx context.Context) error {
	return o.changeMember(ctx, o.Member, members.Change{Kind: members.Promote}, "promoted to a voter",
		func(target members.View, _ members.Preflight) error {
			o.op.PromoteTimeout = o.Timeout
			return o.op.Promote(ctx, target)
		})
}

// RemoveOptions are the options of `member remove`.
type RemoveOptions struct {
	ChangeOptions
	Member string
}

// NewCmdRemove returns `member remove`.
func NewCmdRemove(f *cmdutil.Factory) *cobra.Command {
	o := &RemoveOptions{}
	cmd := &cobra.Command{
		Use:   "remove NAME|ID",
		Short: "Remove a member, moving leadership away from it first",
		Long: `Remove a member from the cluster. The preflight refuses to lose quorum,
to remove the last voter or the only healthy member, unless --force. When
the member leads, leadership moves to the healthiest other voter first.`,
		Example: `  # Remove the member of a node that is gone for good
  kubectl etcd member remove node-2

  # By ID, when two members share a name or one never started
  kubectl etcd member remove 8e9e05c52164694d`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// Complete takes the member.
func (o *RemoveOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Member = f, args[0]
	return nil
}

// Validate has nothing to check: the preflight judges the removal.
func (o *RemoveOptions) Validate() error { return nil }

// Run removes the member.
func (o *RemoveOptions) Run(ctx context.Context) error {
	return o.changeMember(ctx, o.Member, members.Change{Kind: members.Remove}, "removed",
		func(target members.View, p members.Preflight) error {
			return o.op.Remove(ctx, target, p.Transferee)
		})
}

// UpdateOptions are the options of `member update`.
type UpdateOptions struct {
	ChangeOptions
	Member   string
	PeerURLs []string
}

// NewCmdUpdate returns `member update`.
func NewCmdUpdate(f *cmdutil.Factory) *cobra.Command {
	o := &UpdateOptions{}
	cmd := &cobra.Command{
		Use:   "update NAME|ID --peer-urls URL[,URL]",
		Short: "Change the peer URLs of a member, for a node whose address changed",
		Example: `  # node-2 came back with a new IP
  kubectl etcd member update node-2 --peer-urls https://10.0.0.12:2380`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringSliceVar(&o.PeerURLs, "peer-urls", nil, "the member's new peer URLs")
	o.AddFlags(cmd.Flags())
	return cmd
}

// Complete takes the member.
func (o *UpdateOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Member = f, args[0]
	return nil
}

// Validate checks the peer URLs.
func (o *UpdateOptions) Validate() error { return members.ValidatePeerURLs(o.PeerURLs) }

// Run updates the member.
func (o *UpdateOptions) Run(ctx context.Context) error {
	return o.changeMember(ctx, o.Member, members.Change{Kind: members.Update, PeerURLs: o.PeerURLs}, "now has peer URLs "+strings.Join(o.PeerURLs, ","),
		func(target members.View, _ members.Preflight) error {
			return o.op.Update(ctx, target, o.PeerURLs)
		})
}

// MoveLeaderOptions are the options of `member move-leader`.
type MoveLeaderOptions struct {
	ChangeOptions
	// To names the new leader; empty picks the healthiest other voter.
	To string
}

// NewCmdMoveLeader returns `member move-leader`.
func NewCmdMoveLeader(f *cmdutil.Factory) *cobra.Command {
	o := &MoveLeaderOptions{}
	cmd := &cobra.Command{
		Use:   "move-leader [NAME|ID]",
		Short: "Hand leadership to another voter, by default the healthiest one",
		Example: `  # Before maintenance on the leader's node
  kubectl etcd member move-leader

  # To a chosen member
  kubectl etcd member move-leader node-3`,
		Args: cmdutil.ValidateArgs(cobra.MaximumNArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// Complete takes the new leader, if named.
func (o *MoveLeaderOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory = f
	if len(args) == 1 {
		o.To = args[0]
	}
	return nil
}

// Validate has nothing to check: the preflight judges the move.
func (o *MoveLeaderOptions) Validate() error { return nil }

// Run moves leadership.
func (o *MoveLeaderOptions) Run(ctx context.Context) error {
	if err := o.connect(ctx); err != nil {
		return err
	}
	defer o.close()
	var target members.View
	if o.To != "" {
		var err error
		if target, err = o.target(o.To); err != nil {
			return err
		}
	} else {
		leader := ""
		for _, v := range o.views {
			if v.Leader {
				leader = v.ID
			}
		}
		if leader == "" {
			return errors.New("no member reports itself leader: the cluster has no quorum or is electing one")
		}
		t := members.Healthiest(o.views, leader)
		if t == nil {
			return errors.New("no other healthy voter to take over leadership")
		}
		target = *t
	}
	if target.Leader {
		fmt.Fprintf(o.Out, "Member %s already leads: nothing to do\n", target.Label())
		return nil
	}
	_, proceed, err := o.preflight(members.Change{Kind: members.MoveLeader, Target: target.ID})
	if !proceed {
		return err
	}
	if err := o.op.MoveLeader(ctx, target); err != nil {
		return o.failed(ctx, err)
	}
	fmt.Fprintf(o.Out, "Leadership moved to member %s\n", target.Label())
	return nil
}
