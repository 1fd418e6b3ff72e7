package util

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// OutputFormats are the -o formats one command accepts, its default first.
// A command binds them to its own fields (named Output and NoHeaders by
// habit) rather than embedding a struct: Factory, which Options embed, has
// an Output method.
type OutputFormats []string

// The format sets that most commands share.
var (
	// TableOutput is a table by default, or a JSON or YAML document.
	TableOutput = OutputFormats{output.Table, output.JSON, output.YAML}
	// WideOutput is TableOutput with a wide table of more columns.
	WideOutput = OutputFormats{output.Table, output.Wide, output.JSON, output.YAML}
)

// AddFlags registers -o/--output on format, set to the first format, and,
// when noHeaders is not nil, --no-headers on it.
func (f OutputFormats) AddFlags(cmd *cobra.Command, format *string, noHeaders *bool) {
	cmd.Flags().StringVarP(format, "output", "o", f[0], "output format: "+f.String())
	if noHeaders != nil {
		cmd.Flags().BoolVar(noHeaders, "no-headers", false, "do not print table headers")
	}
}

// Validate refuses a format not in f, as a usage error naming the allowed
// ones.
func (f OutputFormats) Validate(cmd *cobra.Command, format string) error {
	if err := output.Validate(format, f...); err != nil {
		return UsageErrorf(cmd, "%v", err)
	}
	return nil
}

// String lists the formats as the help says them: "table, json or yaml".
func (f OutputFormats) String() string {
	if len(f) < 2 {
		return strings.Join(f, "")
	}
	return strings.Join(f[:len(f)-1], ", ") + " or " + f[len(f)-1]
}
