// Package member holds the member commands.
package member

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// NewCmdMember returns the member command group.
func NewCmdMember(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List and change the members of the etcd cluster",
	}
	cmd.AddCommand(NewCmdList(f), NewCmdAdd(f), NewCmdPromote(f), NewCmdRemove(f), NewCmdMoveLeader(f), NewCmdUpdate(f))
	return cmd
}

// ListOptions are the options of `kubectl etcd member list`.
// Their Complete and Validate are PrintOptions'.
type ListOptions struct {
	cmdutil.PrintOptions
}

// MemberInfo is a member with its leadership, as member list prints it.
type MemberInfo struct {
	cluster.Member
	Leader bool `json:"leader"`
	// The fields below are filled for -o wide only, from each member's
	// status.
	Version          string   `json:"version,omitempty"`
	RaftIndex        uint64   `json:"raftIndex,omitempty"`
	RaftAppliedIndex uint64   `json:"raftAppliedIndex,omitempty"`
	DBSize           int64    `json:"dbSize,omitempty"`
	Errors           []string `json:"errors,omitempty"`
	// Node and Pod say where the member runs, when etcd is reached through
	// the Kubernetes API (--via port-forward or exec).
	Node string `json:"node,omitempty"`
	Pod  string `json:"pod,omitempty"`
}

// NewCmdList returns the member list command.
func NewCmdList(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.WideOutput)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the members: ID, name, peer and client URLs, learner, started, leader",
		Example: `  # Members of the local control plane's etcd
  kubectl etcd member list

  # With each member's node and pod (through the Kubernetes API), endpoint,
  # version, raft index, applied index, DB size and errors (asks every member)
  kubectl etcd member list -o wide

  # From a laptop: the members through the API server, with their nodes
  kubectl etcd member list -o wide --via exec`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Run lists the members.
func (o *ListOptions) Run(ctx context.Context) error {
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	var infos []MemberInfo
	if o.Print.Printer().Format() == output.Wide {
		// Wide asks every member for its status: slower, but it shows how
		// far each one has applied and what is wrong with it.
		statuses, err := cluster.Collect(ctx, cfg, cli)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			infos = append(infos, MemberInfo{Member: s.Member, Leader: s.Leader, Version: s.Version,
				RaftIndex: s.RaftIndex, RaftAppliedIndex: s.RaftAppliedIndex, DBSize: s.DBSize, Errors: s.Errors})
		}
	} else {
		members, err := cluster.ListMembers(ctx, cfg, cli)
		if err != nil {
			return err
		}
		leader := cluster.LeaderID(ctx, cfg, cli)
		for _, m := range members {
			infos = append(infos, MemberInfo{Member: m, Leader: m.ID == leader})
		}
	}
	for i := range infos {
		if p, ok := cfg.PodForMember(infos[i].Name, infos[i].ClientURLs); ok {
			infos[i].Node, infos[i].Pod = p.Node, p.Name
		}
	}
	return o.Print.Printer().PrintTable(o.Out, infos, func(wide bool) ([]string, [][]string) {
		return ListTable(infos, wide)
	})
}

// ListTable builds the member list rows.
func ListTable(members []MemberInfo, wide bool) ([]string, [][]string) {
	headers := []string{"ID", "NAME", "STARTED", "LEARNER", "LEADER", "PEER URLS", "CLIENT URLS"}
	if wide {
		headers = append(headers, "NODE", "POD", "ENDPOINT", "VERSION", "RAFT INDEX", "APPLIED", "DB SIZE", "ERRORS")
	}
	var rows [][]string
	for _, m := range members {
		name := m.Name
		if name == "" {
			name = "<unstarted>"
		}
		row := []string{m.ID, name, strconv.FormatBool(m.Started), strconv.FormatBool(m.Learner), strconv.FormatBool(m.Leader),
			strings.Join(m.PeerURLs, ","), none(strings.Join(m.ClientURLs, ","))}
		if wide {
			row = append(row, none(m.Node), none(m.Pod), none(m.Endpoint), none(m.Version), index(m.RaftIndex), index(m.RaftAppliedIndex),
				output.Bytes(m.DBSize), none(strings.Join(m.Errors, "; ")))
		}
		rows = append(rows, row)
	}
	return headers, rows
}

func index(i uint64) string {
	if i == 0 {
		return "-"
	}
	return strconv.FormatUint(i, 10)
}

func none(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
