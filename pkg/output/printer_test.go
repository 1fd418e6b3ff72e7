package output

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type member struct {
	Name   string   `json:"name"`
	DBSize int64    `json:"dbSize"`
	Leader bool     `json:"leader"`
	Errors []string `json:"errors,omitempty"`
}

var members = []member{{Name: "cp-1", DBSize: 25_165_824, Leader: true}, {Name: "cp-2", DBSize: 1_000_000_000_000, Errors: []string{"no <leader>"}}}

func printSpec(t *testing.T, spec string, v any) (string, error) {
	t.Helper()
	s := ParseSpec(spec)
	if err := s.ReadTemplateFile(); err != nil {
		return "", err
	}
	p, err := NewPrinter(s, false, []string{Table, JSON, YAML}, true)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	err = p.Print(&buf, v, func(bool) error { buf.WriteString("TABLE\n"); return nil })
	return buf.String(), err
}

func TestPrinterFormats(t *testing.T) {
	dir := t.TempDir()
	jpFile, tmplFile := filepath.Join(dir, "names.jsonpath"), filepath.Join(dir, "names.tmpl")
	if err := os.WriteFile(jpFile, []byte(`{range [*]}{.name}={.dbSize}{"\n"}{end}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmplFile, []byte(`{{range .}}{{.name}} leader={{.leader}}{{"\n"}}{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ spec, want string }{
		{"table", "TABLE\n"},
		// kubectl's indentation, and the JSON field names templates see.
		{"json", "[\n    {\n        \"name\": \"cp-1\",\n        \"dbSize\": 25165824,\n        \"leader\": true\n    },\n    {\n        \"name\": \"cp-2\",\n        \"dbSize\": 1000000000000,\n        \"leader\": false,\n        \"errors\": [\n            \"no \\u003cleader\\u003e\"\n        ]\n    }\n]\n"},
		{"yaml", "- dbSize: 25165824\n  leader: true\n  name: cp-1\n- dbSize: 1000000000000\n  errors:\n  - no <leader>\n  leader: false\n  name: cp-2\n"},
		// Numbers print as written in the JSON, not as 1e+12.
		{"jsonpath={[*].name}", "cp-1 cp-2"},
		{"jsonpath={[1].dbSize}", "1000000000000"},
		{`jsonpath={[?(@.leader==true)].name}`, "cp-1"},
		{"jsonpath={[0].noSuchField}", ""},
		{"jsonpath-file=" + jpFile, "cp-1=25165824\ncp-2=1000000000000\n"},
		{`go-template={{range .}}{{.name}} {{.dbSize}}{{"\n"}}{{end}}`, "cp-1 25165824\ncp-2 1000000000000\n"},
		{"go-template-file=" + tmplFile, "cp-1 leader=true\ncp-2 leader=false\n"},
	} {
		got, err := printSpec(t, tt.spec, members)
		if err != nil || got != tt.want {
			t.Errorf("-o %s = %q, %v; want %q", tt.spec, got, err, tt.want)
		}
	}
}

func TestPrinterErrors(t *testing.T) {
	for _, tt := range []struct{ spec, want string }{
		{"xml", `unknown output format "xml": allowed formats are table, json, yaml, jsonpath=TEMPLATE, jsonpath-file=FILE, go-template=TEMPLATE, go-template-file=FILE`},
		{"wide", `unknown output format "wide"`},
		{"jsonpath", "-o jsonpath needs a template after '=', such as -o jsonpath='{.name}'"},
		{"jsonpath=", "-o jsonpath needs a template"},
		{"jsonpath={.name", "-o jsonpath: unclosed action"},
		{"go-template={{.name", "-o go-template: template: output:1: unclosed action"},
		{"go-template-file=/nonexistent/t.tmpl", "reading the template of -o go-template-file: open /nonexistent/t.tmpl: no such file or directory"},
		{"go-template={{.name.first}}", "-o go-template: template: output:1:7: executing"},
	} {
		_, err := printSpec(t, tt.spec, members)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("-o %s: error %v, want %q", tt.spec, err, tt.want)
		}
	}
	// A command without a JSON form takes no templates.
	if _, err := NewPrinter(ParseSpec("jsonpath={.x}"), false, []string{Table}, false); err == nil || err.Error() != `unknown output format "jsonpath": allowed formats are table` {
		t.Errorf("templates on a table-only command: %v", err)
	}
}

func TestPrinterNoHeaders(t *testing.T) {
	p, err := NewPrinter(ParseSpec("table"), true, []string{Table, JSON}, true)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.PrintTable(&buf, members, func(bool) ([]string, [][]string) {
		return []string{"NAME", "LEADER"}, [][]string{{"cp-1", "true"}, {"cp-2", "false"}}
	}); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "cp-1   true\ncp-2   false\n" {
		t.Errorf("--no-headers table:\n%s", buf.String())
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 20480: "20 kB", 25_165_824: "25 MB", 2_147_483_648: "2.1 GB", -2048: "-2.0 kB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
