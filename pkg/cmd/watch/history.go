package watch

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/diff"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// HistoryOptions are the options of `kubectl etcd history`.
type HistoryOptions struct {
	*cmdutil.Factory
	cmdutil.StorageFlags
	Diff     bool
	Output   string
	Snapshot string
	// Key is the key whose revisions are shown.
	Key string
}

// NewCmdHistory returns the history command.
func NewCmdHistory(f *cmdutil.Factory) *cobra.Command {
	o := &HistoryOptions{Output: printer.OutputText}
	cmd := &cobra.Command{
		Use:   "history KEY",
		Short: "Show every retained revision of one key, decoded",
		Long: `Show every revision of one key that etcd still keeps (back to the last
compaction), oldest first: creations, changes and deletions, each decoded.
--diff shows each change as a diff against the revision before.`,
		Example: `  # How a deployment changed
  kubectl etcd history /registry/deployments/default/web --diff

  # From a snapshot file
  kubectl etcd history /registry/configmaps/kube-system/kubeadm-config --snapshot backup.db`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.Diff, "diff", false, "show each revision as a diff against the one before")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output format: text, json or yaml")
	fs.StringVar(&o.Snapshot, "snapshot", "", "read this snapshot or member db file instead of a live cluster")
	o.StorageFlags.AddFlags(fs)
	return cmd
}

// Complete takes the key.
func (o *HistoryOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Key = f, args[0]
	return nil
}

// Validate checks the format.
func (o *HistoryOptions) Validate() error {
	return output.Validate(o.Output, printer.OutputText, printer.OutputJSON, printer.OutputYAML)
}

// Run reads the history and prints it.
func (o *HistoryOptions) Run(ctx context.Context) error {
	key := o.Key
	d, err := o.Decoder()
	if err != nil {
		return err
	}
	var events []source.Event
	if o.Snapshot != "" {
		events, err = source.SnapshotHistory(o.Snapshot, key)
	} else {
		cfg, cli, cerr := o.Client()
		if cerr != nil {
			return cerr
		}
		defer cli.Close()
		if err := cfg.RequireConnection("history (a watch from the oldest revision)"); err != nil {
			return err
		}
		events, err = source.History(ctx, cli, key)
	}
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("no revision of %s is kept", key)
	}
	var docs []EventJSON
	prev := ""
	for _, e := range events {
		ev := EventJSON{Type: e.Type, Key: e.KV.Key, Revision: e.KV.ModRevision}
		text := ""
		if len(e.KV.Value) > 0 {
			obj, err := d.Decode(e.KV.Key, e.KV.Value, e.KV.ModRevision)
			switch {
			case err != nil:
				ev.Error = err.Error()
				text = "# " + err.Error() + "\n"
			case obj.Object != nil:
				m, err := storage.ToMap(obj.Object)
				if err != nil {
					return err
				}
				ev.Object = m
				b, _ := yaml.Marshal(m)
				text = string(b)
			default:
				ev.Value = string(obj.Value)
				text = ev.Value + "\n"
			}
		}
		docs = append(docs, ev)
		if o.Output != printer.OutputText {
			continue
		}
		fmt.Fprintf(o.Out, "# revision %d: %s (version %d)\n", e.KV.ModRevision, e.Type, e.KV.Version)
		if o.Diff && prev != "" {
			fmt.Fprint(o.Out, onlyChanges(diff.Lines(withoutRV(prev), withoutRV(text))))
		} else {
			fmt.Fprint(o.Out, text)
		}
		prev = text
	}
	switch o.Output {
	case printer.OutputJSON:
		return output.WriteJSON(o.Out, docs)
	case printer.OutputYAML:
		return output.WriteYAML(o.Out, docs)
	}
	return nil
}

// withoutRV drops the resourceVersion line, which changes every time.
func withoutRV(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "resourceVersion: ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// onlyChanges keeps changed lines with one line of context.
func onlyChanges(diff string) string {
	lines := strings.SplitAfter(diff, "\n")
	keep := make([]bool, len(lines))
	for i, l := range lines {
		if strings.HasPrefix(l, "+ ") || strings.HasPrefix(l, "- ") {
			for j := max(0, i-1); j <= min(len(lines)-1, i+1); j++ {
				keep[j] = true
			}
		}
	}
	var b strings.Builder
	skipped := false
	for i, l := range lines {
		if keep[i] {
			b.WriteString(l)
			skipped = false
		} else if !skipped && l != "" {
			b.WriteString("  ...\n")
			skipped = true
		}
	}
	return b.String()
}
