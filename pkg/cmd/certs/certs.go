// Package certs holds the certificate commands: check-expiration and renew
// of the etcd certificates of a control-plane node.
package certs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// NewCmdCerts returns the certs command group.
func NewCmdCerts(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Check and renew the etcd certificates of this node",
	}
	cmd.AddCommand(NewCmdCheckExpiration(f), NewCmdRenew(f))
	return cmd
}

// CheckOptions are the options of `kubectl etcd certs check-expiration`.
// Their Complete and Validate are PrintOptions'.
type CheckOptions struct {
	cmdutil.PrintOptions
	Now func() time.Time
}

// NewCmdCheckExpiration returns the check-expiration command.
func NewCmdCheckExpiration(f *cmdutil.Factory) *cobra.Command {
	o := &CheckOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput), Now: time.Now}
	cmd := &cobra.Command{
		Use:   "check-expiration",
		Short: "List every etcd certificate with its subject, SANs, expiry and CA",
		Example: `  # When do this node's etcd certificates expire?
  sudo kubectl etcd certs check-expiration

  # Elsewhere than /etc/kubernetes/pki
  kubectl etcd certs check-expiration --pki-dir /srv/pki -o json`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Run prints the certificates.
func (o *CheckOptions) Run(context.Context) error {
	infos := pki.CheckExpiration(o.Connect.PKIDir, o.Now())
	return o.Print.Printer().PrintTable(o.Out, infos, func(bool) ([]string, [][]string) {
		return ExpirationTable(infos)
	})
}

// ExpirationTable builds the check-expiration rows.
func ExpirationTable(infos []pki.CertInfo) ([]string, [][]string) {
	headers := []string{"NAME", "SUBJECT", "SANS", "EXPIRES", "RESIDUAL TIME", "CA"}
	var rows [][]string
	for _, c := range infos {
		switch {
		case c.Missing:
			rows = append(rows, []string{c.Name, "<missing>", "<none>", "<none>", "<none>", orNone(c.CA)})
		case c.Error != "":
			rows = append(rows, []string{c.Name, "<error: " + c.Error + ">", "<none>", "<none>", "<none>", orNone(c.CA)})
		default:
			ca := c.CA
			if c.IsCA {
				ca = "<self-signed>"
			}
			rows = append(rows, []string{c.Name, c.Subject, orNone(strings.Join(c.SANs, ",")),
				c.NotAfter.UTC().Format("Jan 02, 2006 15:04 MST"), c.ResidualString(), orNone(ca)})
		}
	}
	return headers, rows
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// RenewOptions are the options of `kubectl etcd certs renew`.
type RenewOptions struct {
	*cmdutil.Factory
	Names        []string
	DryRun       bool
	Restart      bool
	Force        bool
	ManifestsDir string
	// KubeletRootDir is the kubelet's --root-dir, where it keeps a
	// directory per pod until the pod's containers are gone.
	KubeletRootDir    string
	Timeout           time.Duration
	LockTimeout       time.Duration
	Now               func() time.Time
	kubeletRootDirSet bool
}

// NewCmdRenew returns the renew command.
func NewCmdRenew(f *cmdutil.Factory) *cobra.Command {
	o := &RenewOptions{Now: time.Now, ManifestsDir: staticpod.DefaultManifestsDir, KubeletRootDir: staticpod.DefaultKubeletRootDir, Timeout: 2 * time.Minute, LockTimeout: 10 * time.Minute}
	cmd := &cobra.Command{
		Use:   "renew all|NAME...",
		Short: "Renew etcd certificates with the etcd CA, keeping their names, usages and keys",
		Long: `Issue the named etcd certificates again, signed by the etcd CA, with the
same subject, SANs, key usages and private key, valid for one year. The CA
is not renewed. Names: all, ` + strings.Join(bootstrap.CertNames(), ", ") + `.

etcd reads its certificate files for every new connection, so a renewed
certificate is served without a restart. With --restart the etcd static
pod of this node is restarted afterwards, one node at a time, so the
cluster serves throughout:

  1. Lock: the etcd lock ` + bootstrap.RestartLockName + ` is taken
     through the other members. A node that finds it held says which node
     holds it and waits (up to --lock-timeout). So the command may run on
     every control-plane node at once (a script, Ansible in parallel): the
     nodes take turns.
  2. Preflight, printed: every other member must be healthy, and the
     others must keep quorum while this member is stopped; otherwise the
     command refuses and names the member that is down (--force
     overrides).
  3. If this member leads, leadership moves to another member first.
  4. The manifest is moved out of the manifests directory until etcd
     stops, then put back; the kubelet starts etcd again.
  5. Once this member serves and every member is healthy again, the lock
     is released and the next node goes.

Run it on one control-plane node after the other, or on all of them at
once. --dry-run prints the certificates, the preflight and the steps, and
changes nothing.`,
		Example: `  # Renew every etcd certificate of this node
  sudo kubectl etcd certs renew all

  # Only the server certificate
  sudo kubectl etcd certs renew etcd-server

  # Renew and restart this node's etcd; then do the next node (or run it on
  # every node at once: the restarts take turns)
  sudo kubectl etcd certs renew all --restart

  # What would happen, without changing anything
  sudo kubectl etcd certs renew all --restart --dry-run`,
		ValidArgs: append([]string{"all"}, bootstrap.CertNames()...),
		Args:      cmdutil.ValidateArgs(cobra.MinimumNArgs(1)),
		RunE:      cmdutil.RunE(f, o),
	}
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "print the renewed certificates, and with --restart the preflight and the steps, instead of changing anything")
	cmd.Flags().BoolVar(&o.Restart, "restart", false, "restart this node's etcd static pod afterwards, after a preflight and under a cluster-wide lock, and wait until the cluster is healthy again")
	cmd.Flags().BoolVar(&o.Force, "force", false, "with --restart: restart even when the preflight refuses, or when the cluster cannot be read or locked (a lock another node holds is still waited for)")
	cmd.Flags().StringVar(&o.ManifestsDir, "manifests-dir", o.ManifestsDir, "directory of the kubelet's static pod manifests, for --restart")
	cmd.Flags().StringVar(&o.KubeletRootDir, "kubelet-root-dir", o.KubeletRootDir, "with --restart: the kubelet's --root-dir: the manifest goes back once the kubelet has cleaned up the old pod there, so the new pod starts at once; an etcd the kubelet keeps restarting there (a 4th start, within about 70 s of the kubelet's back-off) ends the wait before --timeout")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long --restart waits for etcd to stop, then to serve, then for every member to be healthy")
	cmd.Flags().DurationVar(&o.LockTimeout, "lock-timeout", o.LockTimeout, "how long --restart waits for another node's restart to finish (0: no limit)")
	return cmd
}

// Complete takes the certificate names.
func (o *RenewOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Factory, o.Names = f, args
	o.kubeletRootDirSet = cmd.Flags().Changed("kubelet-root-dir")
	return nil
}

// Validate checks the options.
func (o *RenewOptions) Validate() error {
	if !o.Restart && o.Force {
		return fmt.Errorf("--force only applies with --restart")
	}
	if !o.Restart && o.kubeletRootDirSet {
		return fmt.Errorf("--kubelet-root-dir only applies with --restart")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	if o.LockTimeout < 0 {
		return fmt.Errorf("--lock-timeout must not be negative")
	}
	return nil
}

// Run renews, and restarts when asked.
func (o *RenewOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	n := o.LocalNode(o.ManifestsDir, o.KubeletRootDir, o.DryRun)
	renewed, err := n.Renew(o.Names, o.Now())
	if err != nil {
		return err
	}
	if !o.DryRun {
		for _, c := range renewed {
			fmt.Fprintf(o.Out, "%s renewed, valid until %s\n", c.Name, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	if !o.Restart {
		return nil
	}
	if err := n.RestartEtcd(ctx, bootstrap.RestartOptions{
		ClusterAccess: bootstrap.AccessFromFlags(o.Connect),
		Timeout:       o.Timeout,
		Force:         o.Force,
		LockTimeout:   o.LockTimeout,
	}); err != nil {
		return err
	}
	if !o.DryRun {
		fmt.Fprintln(o.Out, "etcd restarted")
	}
	return nil
}
