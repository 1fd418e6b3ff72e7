// Package version holds the version command.
package version

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/version"
)

// Options are the options of `kubectl etcd version`.
// Their Complete and Validate are PrintOptions'.
type Options struct {
	cmdutil.PrintOptions
	ClientOnly bool
}

// Info is what the command prints.
type Info struct {
	Client  ClientInfo      `json:"client"`
	Members []MemberVersion `json:"members,omitempty"`
}

// ClientInfo describes this binary.
type ClientInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// MemberVersion is one member's server version.
type MemberVersion struct {
	Name           string `json:"name"`
	Endpoint       string `json:"endpoint"`
	Version        string `json:"version,omitempty"`
	StorageVersion string `json:"storageVersion,omitempty"`
	Error          string `json:"error,omitempty"`
}

// NewCmdVersion returns the version command.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	o := &Options{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and each member's server version",
		Example: `  # This binary and every etcd member
  kubectl etcd version

  # This binary only, without contacting etcd
  kubectl etcd version --client`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().BoolVar(&o.ClientOnly, "client", false, "print the client version only")
	o.Print.AddFlags(cmd, false)
	return cmd
}

// Run prints the versions.
func (o *Options) Run(ctx context.Context) error {
	info := Info{Client: ClientInfo{Version: version.Get(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}}
	var collectErr error
	if !o.ClientOnly {
		collectErr = o.collect(ctx, &info)
	}
	err := o.Print.Printer().Print(o.Out, info, func(bool) error { return WriteText(o.Out, info) })
	if err != nil {
		return err
	}
	return collectErr
}

// WriteText prints the versions as lines: the client's, then each
// member's.
func WriteText(w io.Writer, info Info) error {
	fmt.Fprintf(w, "Client Version: %s (%s, %s)\n", info.Client.Version, info.Client.GoVersion, info.Client.Platform)
	for _, m := range info.Members {
		if m.Error != "" {
			fmt.Fprintf(w, "Server Version: %s (%s): unknown, %s\n", m.Name, m.Endpoint, m.Error)
			continue
		}
		if _, err := fmt.Fprintf(w, "Server Version: %s (%s): %s, storage %s\n", m.Name, m.Endpoint, m.Version, m.StorageVersion); err != nil {
			return err
		}
	}
	return nil
}

func (o *Options) collect(ctx context.Context, info *Info) error {
	statuses, err := o.MemberStatuses(ctx)
	if err != nil {
		return err
	}
	for _, s := range statuses {
		mv := MemberVersion{Name: s.Name, Endpoint: s.Endpoint, Version: s.Version, StorageVersion: s.StorageVersion}
		if s.Version == "" && len(s.Errors) > 0 {
			mv.Error = s.Errors[0]
		}
		info.Members = append(info.Members, mv)
	}
	return nil
}
