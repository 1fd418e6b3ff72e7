package util

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestOutputFormats(t *testing.T) {
	var format string
	var noHeaders bool
	cmd := &cobra.Command{Use: "status"}
	WideOutput.AddFlags(cmd, &format, &noHeaders)
	if format != "table" || cmd.Flags().Lookup("no-headers") == nil || cmd.Flags().ShorthandLookup("o") == nil {
		t.Fatalf("default %q, flags registered: %v", format, cmd.Flags().Lookup("no-headers") != nil)
	}
	if got := cmd.Flags().Lookup("output").Usage; got != "output format: table, wide, json, yaml, jsonpath=TEMPLATE, jsonpath-file=FILE, go-template=TEMPLATE or go-template-file=FILE" {
		t.Errorf("help %q", got)
	}
	if err := cmd.Flags().Parse([]string{"-o", "json", "--no-headers"}); err != nil || format != "json" || !noHeaders {
		t.Errorf("parsed -o %q --no-headers %v: %v", format, noHeaders, err)
	}
	for _, f := range WideOutput {
		p := NewPrintFlags(WideOutput)
		p.Output = f
		if err := p.Validate(); err != nil {
			t.Errorf("%s refused: %v", f, err)
		}
	}
	// A format the command does not take is a usage error, through RunE.
	o := &printOnly{Print: NewPrintFlags(TableOutput)}
	tableOnly := &cobra.Command{Use: "health", RunE: RunE(&Factory{}, o)}
	o.Print.AddFlags(tableOnly, true)
	tableOnly.SetArgs([]string{"-o", "wide"})
	tableOnly.SilenceErrors, tableOnly.SilenceUsage = true, true
	err := tableOnly.Execute()
	var usage *UsageError
	if err == nil || !strings.Contains(err.Error(), `unknown output format "wide": allowed formats are table, json, yaml`) || !errors.As(err, &usage) || o.ran {
		t.Errorf("wide for a table-only command: %v (ran: %v)", err, o.ran)
	}
	plain := &cobra.Command{Use: "version"}
	TableOutput.AddFlags(plain, &format, nil)
	if plain.Flags().Lookup("no-headers") != nil {
		t.Error("--no-headers registered without a field to bind it to")
	}
}

// printOnly is the smallest command with print flags.
type printOnly struct {
	Print *PrintFlags
	ran   bool
}

func (o *printOnly) Complete(*Factory, *cobra.Command, []string) error { return o.Print.Complete() }
func (o *printOnly) Validate() error                                   { return o.Print.Validate() }
func (o *printOnly) Run(context.Context) error                         { o.ran = true; return nil }
