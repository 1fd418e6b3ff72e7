package output

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/template"

	"k8s.io/client-go/util/jsonpath"
)

// The template formats of -o, as kubectl names them: -o jsonpath='{.x}',
// -o go-template='{{.x}}', or the template read from a file.
const (
	JSONPath       = "jsonpath"
	JSONPathFile   = "jsonpath-file"
	GoTemplate     = "go-template"
	GoTemplateFile = "go-template-file"
)

// templateFormats are the template formats with what follows their '='
// in the help: every command whose result has a JSON form takes them.
var templateFormats = []struct{ name, arg string }{
	{JSONPath, "TEMPLATE"}, {JSONPathFile, "FILE"}, {GoTemplate, "TEMPLATE"}, {GoTemplateFile, "FILE"},
}

// TemplateFormatHelp lists the template formats as help and errors show
// them: jsonpath=TEMPLATE, jsonpath-file=FILE, ...
func TemplateFormatHelp() []string {
	var out []string
	for _, f := range templateFormats {
		out = append(out, f.name+"="+f.arg)
	}
	return out
}

// Spec is an -o value taken apart: the format, and for a template format
// the template (or its file) after the '='.
type Spec struct {
	Format string
	Arg    string
}

// ParseSpec splits an -o value: "jsonpath={.name}" is the format jsonpath
// with the template {.name}; "json" is a format alone.
func ParseSpec(s string) Spec {
	name, arg, found := strings.Cut(s, "=")
	if found && isTemplate(name) {
		return Spec{Format: name, Arg: arg}
	}
	return Spec{Format: s}
}

func isTemplate(name string) bool {
	for _, f := range templateFormats {
		if f.name == name {
			return true
		}
	}
	return false
}

// ReadTemplateFile turns a -file format into its plain one with the
// file's text as the template; other specs are left alone.
func (s *Spec) ReadTemplateFile() error {
	var plain string
	switch s.Format {
	case JSONPathFile:
		plain = JSONPath
	case GoTemplateFile:
		plain = GoTemplate
	default:
		return nil
	}
	if s.Arg == "" {
		return nil // Printer says what is missing
	}
	data, err := os.ReadFile(s.Arg)
	if err != nil {
		return fmt.Errorf("reading the template of -o %s: %w", s.Format, err)
	}
	s.Format, s.Arg = plain, string(data)
	return nil
}

// Printer prints one command result in the format -o asked for: a table
// (the command's own), JSON, YAML, or a template over the JSON form.
type Printer struct {
	format    string
	noHeaders bool
	template  func(w io.Writer, data any) error
}

// NewPrinter checks spec against the formats a command allows (and the
// template formats when templates is true) and compiles its template.
// A -file format must have been read with ReadTemplateFile first.
func NewPrinter(spec Spec, noHeaders bool, allowed []string, templates bool) (*Printer, error) {
	p := &Printer{format: spec.Format, noHeaders: noHeaders}
	if slices.Contains(allowed, spec.Format) {
		return p, nil
	}
	if !templates || !isTemplate(spec.Format) {
		all := allowed
		if templates {
			all = append(slices.Clone(allowed), TemplateFormatHelp()...)
		}
		return nil, fmt.Errorf("unknown output format %q: allowed formats are %s", spec.Format, strings.Join(all, ", "))
	}
	if spec.Arg == "" {
		return nil, fmt.Errorf("-o %s needs a template after '=', such as -o %s", spec.Format, example(spec.Format))
	}
	switch spec.Format {
	case JSONPath, JSONPathFile:
		jp := jsonpath.New("output").AllowMissingKeys(true)
		if err := jp.Parse(spec.Arg); err != nil {
			return nil, fmt.Errorf("-o %s: %v", spec.Format, err)
		}
		p.template = jp.Execute
	case GoTemplate, GoTemplateFile:
		t, err := template.New("output").Parse(spec.Arg)
		if err != nil {
			return nil, fmt.Errorf("-o %s: %v", spec.Format, err)
		}
		p.template = func(w io.Writer, data any) error { return t.Execute(w, data) }
	}
	return p, nil
}

func example(format string) string {
	switch format {
	case JSONPath:
		return "jsonpath='{.name}'"
	case GoTemplate:
		return "go-template='{{.name}}'"
	default:
		return format + "=FILE"
	}
}

// Format is the format printed, "table" when the command's own.
func (p *Printer) Format() string { return p.format }

// Human says whether the result is printed as the command's own table or
// text (table or wide), rather than a document a script reads.
func (p *Printer) Human() bool { return p.format == Table || p.format == Wide }

// Print prints v as JSON, YAML or through the template, or calls human
// for the command's own table (wide for -o wide).
func (p *Printer) Print(w io.Writer, v any, human func(wide bool) error) error {
	switch p.format {
	case JSON, YAML:
		return Write(w, p.format, v, nil)
	case Table, Wide, "":
		return human(p.format == Wide)
	}
	if p.template == nil {
		return errors.New("no printer for output format " + p.format)
	}
	data, err := toJSONValue(v)
	if err != nil {
		return err
	}
	if err := p.template(w, data); err != nil {
		return fmt.Errorf("-o %s: %v", p.format, err)
	}
	return nil
}

// PrintTable is Print for a command whose own output is one table.
func (p *Printer) PrintTable(w io.Writer, v any, table func(wide bool) ([]string, [][]string)) error {
	return p.Print(w, v, func(wide bool) error {
		headers, rows := table(wide)
		return p.WriteTable(w, headers, rows)
	})
}

// WriteTable writes one table, without its headers on --no-headers.
func (p *Printer) WriteTable(w io.Writer, headers []string, rows [][]string) error {
	return WriteTable(w, headers, rows, p.noHeaders)
}
