// Package output prints command results as kubectl does: aligned tables
// with UPPERCASE headers, JSON and YAML documents, and the jsonpath and
// go-template outputs that scripts read one field with.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// Formats accepted by -o.
const (
	Table = "table"
	Wide  = "wide"
	JSON  = "json"
	YAML  = "yaml"
)

// Validate checks format against the allowed formats of one command.
func Validate(format string, allowed ...string) error {
	if slices.Contains(allowed, format) {
		return nil
	}
	return fmt.Errorf("unknown output format %q: allowed formats are %s", format, strings.Join(allowed, ", "))
}

// WriteTable writes rows under headers, aligned in columns.
func WriteTable(w io.Writer, headers []string, rows [][]string, noHeaders bool) error {
	tw := printers.GetNewTabWriter(w)
	if !noHeaders {
		fmt.Fprintln(tw, strings.Join(headers, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// JSONIndent is the indentation of every JSON document the commands
// print: kubectl's (and so `get -o json`'s) four spaces.
const JSONIndent = "    "

// WriteJSON writes v as indented JSON, as kubectl does.
func WriteJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", JSONIndent)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// WriteYAML writes v as YAML, with the same field names as WriteJSON.
func WriteYAML(w io.Writer, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// Write writes v as JSON or YAML, or calls table for the table formats.
func Write(w io.Writer, format string, v any, table func(wide bool) error) error {
	switch format {
	case JSON:
		return WriteJSON(w, v)
	case YAML:
		return WriteYAML(w, v)
	case Wide:
		return table(true)
	default:
		return table(false)
	}
}

// Bytes prints a size as etcdctl does, through go-humanize: "25 MB",
// "1.2 kB".
func Bytes(n int64) string {
	if n < 0 {
		return "-" + humanize.Bytes(uint64(-n))
	}
	return humanize.Bytes(uint64(n))
}

// toJSONValue turns v into what its JSON document holds (maps, slices,
// strings, json.Number, booleans), so templates see the field names -o json
// shows and numbers print as they are written there.
func toJSONValue(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
