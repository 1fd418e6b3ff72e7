// Package status holds the status and health commands: what each member of
// the cluster reports, and whether each can serve a quorum read.
package status

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

const statusExample = `  # Status of every member of the local control plane's etcd
  kubectl etcd status

  # Of a cluster given by endpoints, with raft details and peer URLs
  kubectl etcd status --endpoints https://10.0.0.1:2379 --cacert ca.crt --cert client.crt --key client.key -o wide

  # As JSON for scripts
  kubectl etcd status -o json`

// StatusOptions are the options of `kubectl etcd status`.
// Their Complete and Validate are PrintOptions'.
type StatusOptions struct {
	cmdutil.PrintOptions
}

// NewCmdStatus returns the status command.
func NewCmdStatus(f *cmdutil.Factory) *cobra.Command {
	o := &StatusOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.WideOutput)}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every member's version, database size, raft position and leadership",
		Long: `Show one row per member of the etcd cluster: name, ID, endpoint, version,
database size and the part of it in use, quota, leader and learner flags,
raft term, index and applied index, and errors (alarms, no leader, member
unreachable).

A member that is down or hung is listed with the reason; the command then
exits with code 5 so scripts notice.`,
		Example: statusExample,
		Args:    cmdutil.ValidateArgs(cobra.NoArgs),
		RunE:    cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Run collects and prints the status of every member.
func (o *StatusOptions) Run(ctx context.Context) error {
	statuses, err := o.MemberStatuses(ctx)
	if err != nil {
		return err
	}
	if err := o.Print.Printer().PrintTable(o.Out, statuses, func(wide bool) ([]string, [][]string) {
		return StatusTable(statuses, wide)
	}); err != nil {
		return err
	}
	var failed []string
	for _, s := range statuses {
		if !s.Healthy() {
			failed = append(failed, fmt.Sprintf("%s (%s)", nameOr(s.Name, s.ID), strings.Join(s.Errors, "; ")))
		}
	}
	if len(failed) > 0 {
		return cmdutil.Unhealthy("%d of %d members report errors: %s", len(failed), len(statuses), strings.Join(failed, ", "))
	}
	return nil
}

// StatusTable builds the status rows; wide adds storage version and peers.
func StatusTable(statuses []cluster.MemberStatus, wide bool) ([]string, [][]string) {
	headers := []string{"NAME", "ID", "ENDPOINT", "VERSION", "DB SIZE", "IN USE", "QUOTA", "LEADER", "LEARNER", "RAFT TERM", "RAFT INDEX", "APPLIED", "ERRORS"}
	if wide {
		headers = append(headers, "STORAGE VERSION", "PEER URLS")
	}
	var rows [][]string
	for _, s := range statuses {
		answered := s.Version != ""
		row := []string{
			nameOr(s.Name, "<unstarted>"), s.ID, orNone(s.Endpoint),
			orNone(s.Version),
			sizeIf(answered, s.DBSize), sizeIf(answered, s.DBSizeInUse), sizeIf(answered, s.DBQuota),
			strconv.FormatBool(s.Leader), strconv.FormatBool(s.Learner),
			uintIf(answered, s.RaftTerm), uintIf(answered, s.RaftIndex), uintIf(answered, s.RaftAppliedIndex),
			orNone(strings.Join(s.Errors, "; ")),
		}
		if wide {
			row = append(row, orNone(s.StorageVersion), orNone(strings.Join(s.PeerURLs, ",")))
		}
		rows = append(rows, row)
	}
	return headers, rows
}

func nameOr(name, alt string) string {
	if name == "" {
		return alt
	}
	return name
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func sizeIf(ok bool, n int64) string {
	if !ok {
		return "-"
	}
	return output.Bytes(n)
}

func uintIf(ok bool, n uint64) string {
	if !ok {
		return "-"
	}
	return strconv.FormatUint(n, 10)
}
