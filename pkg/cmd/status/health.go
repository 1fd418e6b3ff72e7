package status

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
)

const healthExample = `  # Is every member healthy? Exit code 5 when one is not
  kubectl etcd health

  # Wait less for a hung member
  kubectl etcd health --dial-timeout 1s --command-timeout 2s`

// HealthOptions are the options of `kubectl etcd health`.
// Their Complete and Validate are PrintOptions'.
type HealthOptions struct {
	cmdutil.PrintOptions
}

// NewCmdHealth returns the health command.
func NewCmdHealth(f *cmdutil.Factory) *cobra.Command {
	o := &HealthOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that every member answers a quorum read, with its latency",
		Long: `Check every member of the etcd cluster: connect to it, then read a key
through it with quorum, as 'etcdctl endpoint health' does. A member with an
active alarm (NOSPACE, CORRUPT) is unhealthy too.

Exits with code 5 when any member is unhealthy.`,
		Example: healthExample,
		Args:    cmdutil.ValidateArgs(cobra.NoArgs),
		RunE:    cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Run checks and prints the health of every member.
func (o *HealthOptions) Run(ctx context.Context) error {
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	health, err := cluster.CheckHealth(ctx, cfg, cli)
	if err != nil {
		return err
	}
	if err := o.Print.Printer().PrintTable(o.Out, health, func(bool) ([]string, [][]string) {
		return HealthTable(health)
	}); err != nil {
		return err
	}
	var bad []string
	for _, h := range health {
		if !h.Healthy {
			bad = append(bad, nameOr(h.Name, h.ID))
		}
	}
	if len(bad) > 0 {
		return cmdutil.Unhealthy("%d of %d members unhealthy: %s", len(bad), len(health), strings.Join(bad, ", "))
	}
	return nil
}

// HealthTable builds the health rows.
func HealthTable(health []cluster.Health) ([]string, [][]string) {
	headers := []string{"NAME", "ID", "ENDPOINT", "HEALTHY", "TOOK", "ERROR"}
	var rows [][]string
	for _, h := range health {
		rows = append(rows, []string{
			nameOr(h.Name, "<unstarted>"), h.ID, orNone(h.Endpoint), strconv.FormatBool(h.Healthy),
			fmt.Sprint(h.Took.Round(100 * time.Microsecond)), orNone(h.Error),
		})
	}
	return headers, rows
}
