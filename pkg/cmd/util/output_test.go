package util

import (
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
		if err := WideOutput.Validate(cmd, f); err != nil {
			t.Errorf("%s refused: %v", f, err)
		}
	}
	err := TableOutput.Validate(cmd, "wide")
	var usage *UsageError
	if err == nil || !strings.Contains(err.Error(), `unknown output format "wide": allowed formats are table, json, yaml`) || !errors.As(err, &usage) {
		t.Errorf("wide for a table-only command: %v", err)
	}
	plain := &cobra.Command{Use: "version"}
	TableOutput.AddFlags(plain, &format, nil)
	if plain.Flags().Lookup("no-headers") != nil {
		t.Error("--no-headers registered without a field to bind it to")
	}
}
