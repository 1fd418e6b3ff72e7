package util

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// AddYesFlag adds --yes (-y), the answer to Confirm, with the same help on
// every command; when says when the command asks ("" for always).
func AddYesFlag(fs *pflag.FlagSet, yes *bool, when string) {
	usage := "do not ask for confirmation (without it the command asks on a terminal, and refuses with none)"
	if when != "" {
		usage = when + ": " + usage
	}
	fs.BoolVarP(yes, "yes", "y", false, usage)
}

// Confirm asks before a destructive action. With yes it proceeds at once.
// Without it, it asks on a terminal and refuses when there is none, so a
// script never does damage by accident: it must say --yes.
func Confirm(streams interface {
	Input() io.Reader
	Output() io.Writer
}, action string, yes bool) error {
	if yes {
		return nil
	}
	in := streams.Input()
	if f, ok := in.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return fmt.Errorf("refusing to %s without confirmation: pass --yes (standard input is not a terminal)", action)
	}
	fmt.Fprintf(streams.Output(), "%s? Type 'yes' to proceed: ", upperFirst(action))
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(strings.ToLower(line)) != "yes" {
		return fmt.Errorf("%s: not confirmed, nothing was changed", action)
	}
	return nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Input returns the factory's standard input, for Confirm.
func (f *Factory) Input() io.Reader { return f.In }

// Output returns where prompts go: the error stream, so data on standard
// output stays clean.
func (f *Factory) Output() io.Writer { return f.ErrOut }
