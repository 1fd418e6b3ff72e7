package util

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Options is the shape of every command, as kubectl has it: Complete
// fills in what the arguments, the flags as given and the factory say
// (and may read files), Validate checks the result without any I/O, and
// Run does the work.
type Options interface {
	Complete(f *Factory, cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// RunE is the RunE of a command whose options are o: Complete, Validate,
// Run. A Validate error is a mistake in how the command was called, so it
// is reported as a usage error with the help hint: here, once, rather than
// in every command.
func RunE(f *Factory, o Options) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(f, cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			var usage *UsageError
			if errors.As(err, &usage) {
				return err
			}
			return UsageErrorf(cmd, "%v", err)
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		return o.Run(ctx)
	}
}

// ChangedFlags is the set of flags given on the command line, for a
// Complete to hand to a Validate that must tell a default from a choice.
func ChangedFlags(cmd *cobra.Command) map[string]bool {
	changed := map[string]bool{}
	cmd.Flags().Visit(func(f *pflag.Flag) { changed[f.Name] = true })
	return changed
}
