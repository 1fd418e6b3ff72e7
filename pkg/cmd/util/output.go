package util

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// OutputFormats are the -o formats one command accepts, its default first.
// Every format set with JSON in it also takes kubectl's template formats
// (jsonpath=, go-template= and their -file forms) over the same document.
type OutputFormats []string

// The format sets that most commands share.
var (
	// TableOutput is a table by default, or a JSON or YAML document.
	TableOutput = OutputFormats{output.Table, output.JSON, output.YAML}
	// WideOutput is TableOutput with a wide table of more columns.
	WideOutput = OutputFormats{output.Table, output.Wide, output.JSON, output.YAML}
)

// templates says whether the formats take the template formats: those
// print from the JSON document.
func (f OutputFormats) templates() bool {
	for _, s := range f {
		if s == output.JSON {
			return true
		}
	}
	return false
}

// AddFlags registers -o/--output on format, set to the first format, and,
// when noHeaders is not nil, --no-headers on it.
func (f OutputFormats) AddFlags(cmd *cobra.Command, format *string, noHeaders *bool) {
	cmd.Flags().StringVarP(format, "output", "o", f[0], "output format: "+f.String())
	if noHeaders != nil {
		cmd.Flags().BoolVar(noHeaders, "no-headers", false, "do not print table headers")
	}
}

// String lists the formats as the help says them: "table, json or yaml".
func (f OutputFormats) String() string {
	all := []string(f)
	if f.templates() {
		all = append(append([]string{}, f...), output.TemplateFormatHelp()...)
	}
	if len(all) < 2 {
		return strings.Join(all, "")
	}
	return strings.Join(all[:len(all)-1], ", ") + " or " + all[len(all)-1]
}

// PrintFlags are -o and --no-headers of a command that prints a result,
// and the printer they make. Options hold them in a field named Print
// (Factory, which Options embed, has an Output method).
type PrintFlags struct {
	// Output is the -o value; NoHeaders is --no-headers.
	Output    string
	NoHeaders bool

	formats  OutputFormats
	spec     output.Spec
	complete bool
	printer  *output.Printer
}

// NewPrintFlags returns the print flags of a command taking formats, the
// default first.
func NewPrintFlags(formats OutputFormats) *PrintFlags {
	return &PrintFlags{Output: formats[0], formats: formats}
}

// AddFlags registers -o and, for a command that prints tables,
// --no-headers.
func (p *PrintFlags) AddFlags(cmd *cobra.Command, noHeaders bool) {
	if noHeaders {
		p.formats.AddFlags(cmd, &p.Output, &p.NoHeaders)
		return
	}
	p.formats.AddFlags(cmd, &p.Output, nil)
}

// Help lists the formats after the default one, as a command's own -o
// help ends: "json, yaml, jsonpath=TEMPLATE, ...".
func (p *PrintFlags) Help() string {
	return OutputFormats(p.formats[1:]).String()
}

// Complete reads the template file of -o jsonpath-file= or
// go-template-file=: the one part of the flags that needs I/O.
func (p *PrintFlags) Complete() error {
	p.spec = output.ParseSpec(p.Output)
	p.complete = true
	if !p.formats.templates() {
		return nil
	}
	return p.spec.ReadTemplateFile()
}

// Validate checks -o and compiles its template.
func (p *PrintFlags) Validate() error {
	if !p.complete {
		p.spec = output.ParseSpec(p.Output)
	}
	pr, err := output.NewPrinter(p.spec, p.NoHeaders, p.formats, p.formats.templates())
	if err != nil {
		return err
	}
	p.printer = pr
	return nil
}

// Printer is the printer -o asked for; valid after Validate.
func (p *PrintFlags) Printer() *output.Printer {
	if p.printer == nil && p.Validate() != nil {
		// Options built by hand (tests) may skip Validate: a format
		// it refuses prints the command's own table.
		p.printer, _ = output.NewPrinter(output.Spec{Format: output.Table}, p.NoHeaders, OutputFormats{output.Table}, false)
	}
	return p.printer
}

// PrintOptions are the options every command that prints a result starts
// from: the factory and the print flags. A command embeds them and so
// takes their Complete and Validate; one with options of its own to
// complete or check writes its own, calling these first.
type PrintOptions struct {
	*Factory
	Print *PrintFlags
}

// NewPrintOptions returns the options of a command that prints in one of
// formats, the default first.
func NewPrintOptions(formats OutputFormats) PrintOptions {
	return PrintOptions{Print: NewPrintFlags(formats)}
}

// Complete binds the factory and reads a template file.
func (o *PrintOptions) Complete(f *Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	return o.Print.Complete()
}

// Validate checks the options.
func (o *PrintOptions) Validate() error { return o.Print.Validate() }
