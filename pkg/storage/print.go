package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// Output formats of Printer.
const (
	OutputYAML  = "yaml"
	OutputJSON  = "json"
	OutputName  = "name"
	OutputKeys  = "keys"
	OutputRaw   = "raw"
	OutputTable = "table"
	// OutputText is etcdctl's: the key on one line, the value on the next
	// (decoded objects as YAML).
	OutputText = "text"
)

// RawFraming says how -o raw separates the values of a listing, for help
// texts: a single key's value is written as stored, nothing added.
const RawFraming = `-o raw writes a single key's value exactly as stored, nothing added. A
listing (--prefix, or a RESOURCE without NAME) frames each key, so values
holding any bytes stay apart: a header line "<key length> <value length>"
(decimal byte counts), the key, the value, then a newline. The frame
depends on the query, not on how many keys matched, so a script reads the
same shape for one key as for many.`

// OutputFormats are every format Printer accepts.
var OutputFormats = []string{OutputYAML, OutputJSON, OutputName, OutputKeys, OutputRaw, OutputTable, OutputText}

// NeedsValue reports whether format prints values, not only keys.
func NeedsValue(format string) bool {
	return format != OutputKeys && format != OutputTable
}

// NeedsDecode reports whether format prints decoded objects.
func NeedsDecode(format string) bool {
	return format != OutputKeys && format != OutputTable && format != OutputRaw
}

// Printer writes keys and decoded objects as they stream in. With List,
// yaml and json print one kubectl List; without, the single object.
type Printer struct {
	Out, ErrOut io.Writer
	Format      string
	List        bool
	NoHeaders   bool
	// Prefix is the storage prefix, for the table's resource column.
	Prefix string

	n     int
	table *tabwriterRows
}

type tabwriterRows struct {
	w    io.Writer
	rows int
}

// Begin writes what comes before the first item.
func (p *Printer) Begin() error {
	switch p.Format {
	case OutputTable:
		p.table = &tabwriterRows{w: printers.GetNewTabWriter(p.Out)}
	case OutputYAML:
		if p.List {
			_, err := io.WriteString(p.Out, "apiVersion: v1\n")
			return err
		}
	case OutputJSON:
		if p.List {
			_, err := io.WriteString(p.Out, "{\n    \"apiVersion\": \"v1\",\n    \"items\": [")
			return err
		}
	}
	return nil
}

// Print writes one key. o is its decoded value, nil for formats that do
// not decode or when decoding failed (then the key is skipped in yaml and
// json).
func (p *Printer) Print(kv KV, o *Object) error {
	defer func() { p.n++ }()
	switch p.Format {
	case OutputKeys:
		_, err := fmt.Fprintln(p.Out, kv.Key)
		return err
	case OutputRaw:
		if !p.List {
			_, err := p.Out.Write(kv.Value)
			return err
		}
		// Values are bytes with any content: a frame keeps them apart
		// (RawFraming).
		_, err := fmt.Fprintf(p.Out, "%d %d\n%s%s\n", len(kv.Key), len(kv.Value), kv.Key, kv.Value)
		return err
	case OutputTable:
		if p.n == 0 && !p.NoHeaders {
			// The header comes with the first row: an empty list prints
			// nothing, as kubectl does.
			fmt.Fprintln(p.table.w, "RESOURCE\tNAMESPACE\tNAME\tSIZE\tMODREV")
		}
		resource, ns, name := "<none>", "", kv.Key
		if k, ok := ParseKey(p.Prefix, kv.Key); ok {
			resource, ns, name = k.Resource(), k.Namespace, k.Name
		}
		_, err := fmt.Fprintf(p.table.w, "%s\t%s\t%s\t%d\t%d\n", resource, ns, name, len(kv.Value), kv.ModRevision)
		if p.table.rows++; p.table.rows%1000 == 0 {
			// Keep memory flat on long listings; columns may shift per block.
			if f, ok := p.table.w.(interface{ Flush() error }); ok {
				f.Flush()
			}
		}
		return err
	case OutputName:
		if o == nil || o.Object == nil {
			_, err := fmt.Fprintln(p.Out, kv.Key)
			return err
		}
		gvk := o.GVK()
		kind := strings.ToLower(gvk.Kind)
		if gvk.Group != "" {
			kind += "." + gvk.Group
		}
		name := ""
		if k, ok := ParseKey(p.Prefix, kv.Key); ok {
			name = k.Name
		}
		if m, err := ToMap(o.Object); err == nil {
			if md, ok := m["metadata"].(map[string]any); ok {
				if s, ok := md["name"].(string); ok && s != "" {
					name = s
				}
			}
		}
		_, err := fmt.Fprintf(p.Out, "%s/%s\n", kind, name)
		return err
	case OutputText:
		if _, err := fmt.Fprintln(p.Out, kv.Key); err != nil {
			return err
		}
		if o != nil && o.Object != nil {
			m, err := ToMap(o.Object)
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(m)
			if err != nil {
				return err
			}
			_, err = p.Out.Write(b)
			return err
		}
		v := kv.Value
		if o != nil {
			v = o.Value
		}
		_, err := fmt.Fprintf(p.Out, "%s\n", v)
		return err
	case OutputYAML, OutputJSON:
		if o == nil || o.Object == nil {
			if o != nil {
				fmt.Fprintf(p.ErrOut, "warning: %s holds a plain value, not a Kubernetes object: shown with -o text or -o raw\n", kv.Key)
			}
			p.n--
			return nil
		}
		if p.Format == OutputYAML {
			// YAML sorts keys itself: skip the detour through a map.
			b, err := yaml.Marshal(o.Object)
			if err != nil {
				return fmt.Errorf("%s: %w", kv.Key, err)
			}
			return p.writeYAML(b)
		}
		m, err := ToMap(o.Object)
		if err != nil {
			return fmt.Errorf("%s: %w", kv.Key, err)
		}
		return p.writeJSON(m)
	}
	return fmt.Errorf("unknown output format %q", p.Format)
}

func (p *Printer) writeYAML(b []byte) error {
	var err error
	if !p.List {
		if p.n > 0 {
			io.WriteString(p.Out, "---\n")
		}
		_, err = p.Out.Write(b)
		return err
	}
	var buf bytes.Buffer
	if p.n == 0 {
		buf.WriteString("items:\n")
	}
	for i, line := range strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n") {
		if i == 0 {
			buf.WriteString("- ")
		} else {
			buf.WriteString("  ")
		}
		buf.WriteString(line)
	}
	buf.WriteString("\n")
	_, err = p.Out.Write(buf.Bytes())
	return err
}

func (p *Printer) writeJSON(m map[string]any) error {
	if !p.List {
		b, err := json.MarshalIndent(m, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.Out, "%s\n", b)
		return err
	}
	b, err := json.MarshalIndent(m, "        ", "    ")
	if err != nil {
		return err
	}
	sep := "\n        "
	if p.n > 0 {
		sep = ",\n        "
	}
	_, err = fmt.Fprintf(p.Out, "%s%s", sep, b)
	return err
}

// End writes what comes after the last item.
func (p *Printer) End() error {
	switch p.Format {
	case OutputTable:
		if f, ok := p.table.w.(interface{ Flush() error }); ok {
			return f.Flush()
		}
	case OutputYAML:
		if p.List {
			if p.n == 0 {
				io.WriteString(p.Out, "items: []\n")
			}
			_, err := io.WriteString(p.Out, "kind: List\nmetadata:\n  resourceVersion: \"\"\n")
			return err
		}
	case OutputJSON:
		if p.List {
			end := "\n    ],\n"
			if p.n == 0 {
				end = "],\n"
			}
			_, err := io.WriteString(p.Out, end+"    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")
			return err
		}
	}
	return nil
}

// Count is how many keys were printed.
func (p *Printer) Count() int { return p.n }
