package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

// The fast printers must write what sigs.k8s.io/yaml (YAML) and
// encoding/json through a map (JSON) wrote before them, byte for byte.
// These tests compare them on every kind of the scheme filled with random
// values, on adversarial strings and on documents the fuzzer finds.

// referenceYAML is what -o yaml printed for one object before the fast
// printer.
func referenceYAML(obj any) ([]byte, error) { return yaml.Marshal(obj) }

// referenceJSON is what -o json printed for one object (in a List when
// prefix is not empty) before the fast printer.
func referenceJSON(obj runtime.Object, prefix string) ([]byte, error) {
	m, err := ToMap(obj)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(m, prefix, "    ")
}

// fastCount counts the objects the fast printer printed itself, so the
// tests can check they did not all fall back to the general path.
var fastCount, fallbackCount int

func compareRenderings(t *testing.T, what string, obj runtime.Object) {
	t.Helper()
	var r renderer
	if data, err := r.marshal(obj); err == nil {
		if _, err := appendYAML(nil, &r.tree, data); err == nil {
			fastCount++
		} else {
			fallbackCount++
		}
	}
	want, werr := referenceYAML(obj)
	got, gerr := r.renderYAML(nil, obj, false)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(want, got) {
		t.Fatalf("%s: YAML differs (reference error %v, fast error %v)\n%s", what, werr, gerr, firstDifference(want, got))
	}
	for _, prefix := range []string{"", "        "} {
		want, werr := referenceJSON(obj, prefix)
		got, ok := r.renderJSON(nil, obj, prefix)
		if !ok {
			continue // the general path prints it: nothing to compare
		}
		if werr != nil || !bytes.Equal(want, got) {
			t.Fatalf("%s: JSON differs (reference error %v)\n%s", what, werr, firstDifference(want, got))
		}
	}
}

func firstDifference(want, got []byte) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	from := max(0, i-300)
	return fmt.Sprintf("--- reference from byte %d:\n%s\n--- fast:\n%s", from, want[from:min(len(want), i+200)], got[from:min(len(got), i+200)])
}

// TestFastPrintersMatchOnEveryKind fills each kind of the scheme with
// random values (random Unicode strings included) and compares.
func TestFastPrintersMatchOnEveryKind(t *testing.T) {
	codecs := serializer.NewCodecFactory(Scheme)
	var gvks []schema.GroupVersionKind
	for gvk := range Scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		gvks = append(gvks, gvk)
	}
	sort.Slice(gvks, func(i, j int) bool { return gvks[i].String() < gvks[j].String() })
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for seed := range rounds {
		filler := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(int64(seed)), codecs).NilChance(0.2).NumElements(1, 2).MaxDepth(10)
		for _, gvk := range gvks {
			obj, err := Scheme.New(gvk)
			if err != nil {
				t.Fatal(err)
			}
			filled := func() (ok bool) {
				defer func() { ok = recover() == nil }()
				filler.Fill(obj)
				return true
			}()
			if !filled {
				continue
			}
			obj.GetObjectKind().SetGroupVersionKind(gvk)
			compareRenderings(t, fmt.Sprintf("%s (seed %d)", gvk, seed), obj)
		}
	}
	t.Logf("%d kinds; %d objects printed by the fast printer, %d left to the general one", len(gvks), fastCount, fallbackCount)
	if fastCount < fallbackCount*4 {
		t.Errorf("the fast printer took only %d of %d objects", fastCount, fastCount+fallbackCount)
	}
}

// trickyStrings are the cases go-yaml treats specially: words that read as
// other types, indicators, spaces at the ends, line breaks of every kind,
// characters it escapes, long lines it folds.
var trickyStrings = []string{
	"", " ", "a", "yes", "No", "ON", "off", "y", "~", "null", "NULL", "true", "False", ".inf", "-.Inf", ".nan", ".5", ".", "..", "...", "---", "--- x",
	"<<", "=", "0", "-0", "+1", "1_000", "0x1F", "0o17", "0b101", "-0b11", "1e3", "1E+3", "1.5", "1.", "-", "- x", "-x", "?", "? x", ":", "x:", "x: y", "x:y",
	"#", "a #b", "a#b", "@x", "`x", "%x", "&x", "*x", "!x", "|x", ">x", "'x", "\"x", "x'y", "x\"y", "x\\y", "[x]", "{x}", "x,y", "x]", "x}",
	"2006-01-02", "2006-1-2", "2006-01-02T15:04:05Z", "2006-01-02 15:04:05", "2006-01-02t15:04:05Z", "1:20", "-1:20:30.5", "190:20:30", "1:2:3:4",
	"x ", " x", "x  y", "a\tb", "\t", "a\nb", "a\n", "a\n\n", "\n", "\na", " \na", "a \nb", "a\n b", "a\r\nb", "a\rb", "\r",
	"a\u0085b", "a\u2028b", "a\u2029b", "\u2028", "\u00a0", "a\u00a0b", "\ufeffx", "\ufeff", "é", "日本語", "😀", "a😀b", "\x00", "\x07", "\x1b", "\x7f",
	"\ufffd", "\uE000", "\uFFFD", "\u0100", "Ω", "𝔘", "k:{\"name\":\"app\"}", "f:metadata",
	strings.Repeat("word ", 30), strings.Repeat("x", 200), strings.Repeat("ab cd  ef ", 20), "a" + strings.Repeat(" ", 90) + "b",
	strings.Repeat("long line with words ", 6) + "\n" + strings.Repeat("second line ", 10) + "\n",
	strings.Repeat("é ", 60), strings.Repeat("'quoted' ", 15), strings.Repeat("\"dq\" ", 25), strings.Repeat("tab\t", 30), strings.Repeat("😀 ", 40),
}

// TestFastYAMLMatchesOnTrickyStrings puts each tricky string, and random
// mixes of their pieces, as keys and values at several depths.
func TestFastYAMLMatchesOnTrickyStrings(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	pieces := append([]string{}, trickyStrings...)
	strs := append([]string{}, trickyStrings...)
	for range 3000 {
		var b strings.Builder
		for range 1 + r.Intn(6) {
			b.WriteString(pieces[r.Intn(len(pieces))])
		}
		strs = append(strs, b.String())
	}
	for i, s := range strs {
		doc := map[string]any{
			"apiVersion": "v1",
			"kind":       "Thing",
			"s":          s,
			s:            []any{s, map[string]any{"k": s, s: s}, []any{s}, []any{}, map[string]any{}},
			"nested":     map[string]any{"deeper": map[string]any{"v": s, "list": []any{map[string]any{"a": s, "b": []any{s, s}}}}},
			"x" + s:      1.5,
		}
		compareJSONDoc(t, fmt.Sprintf("string %d %q", i, s), doc)
	}
}

// TestFastYAMLMatchesOnNumbersAndKeys covers numbers as JSON writes them
// and the key order go-yaml sorts by. (That order is not transitive for
// some mixes of digits and letters: "a1b" < "a2" < "a100b10" < "a1b".
// There go-yaml's output follows Go's random map order and differs from
// run to run; such key sets are left out.)
func TestFastYAMLMatchesOnNumbersAndKeys(t *testing.T) {
	for _, raw := range []string{
		`{"a":0,"b":-0,"c":12345678901234567,"d":123456789012345678901,"e":9223372036854775807,"f":-9223372036854775808,"g":18446744073709551615,
		  "h":18446744073709551616,"i":1.5,"j":-2.25e-7,"k":1e21,"l":1e400,"m":-1e400,"n":1E2,"o":0.1,"p":100000000000000000000000,"q":5e-324,"r":1e-400,"s":[1,2.0,-3e0]}`,
		`{"a10":1,"a2":1,"a1":1,"b":1,"B":1,"_":1,"1":1,"10":1,"9":1,"a01":1,"a001":1,"a0":1,"x0y":1,"x00y":1,"é":1,"e":1,"z":1,"Z":1,"a-b":1,"a.b":1,"a/b":1,
		  "a100b2":1,"a100b10":1,"10a":1,"010":1,"0":1,"00":1,"a1":1,"٣":1,"a٣":1,"a3":1,"":1," ":1,"A":1,"ab":1,"a b":1,"Ω":1,"ω":1}`,
		`{"` + strings.Repeat("k", 128) + `":1,"` + strings.Repeat("k", 129) + `":{"a":[1]},"multi\nline key":"v","multi\nline\n":[1,2],"long ` + strings.Repeat("key ", 40) + `":{"x":{}}}`,
		`{"a":[[1,[2,[]]],[{}],[{"b":[{"c":{}}]}]],"b":{"c":[]},"d":[{"e":"f\ng"}],"e":[{"` + strings.Repeat("q", 130) + `":[{"x":1}]}]}`,
		`{"a":null,"b":true,"c":false,"d":[null,true,false],"e":"null"}`,
	} {
		var doc map[string]any
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		compareJSONDoc(t, raw, doc)
	}
}

func compareJSONDoc(t *testing.T, what string, doc map[string]any) {
	t.Helper()
	compareRenderings(t, what, &unstructured.Unstructured{Object: doc})
	// JSONToYAML on the text, as sigs.k8s.io/yaml.Marshal does it.
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	want, werr := yaml.JSONToYAML(data)
	var tree jsonTree
	got, gerr := appendYAML(nil, &tree, data)
	if gerr == errUnusual {
		return
	}
	if werr != nil || gerr != nil || !bytes.Equal(want, got) {
		t.Fatalf("%s: YAML differs (reference error %v, fast error %v)\n%s", what, werr, gerr, firstDifference(want, got))
	}
	// As an item of a List.
	ref := &referencePrinter{list: true, n: 1}
	ref.yamlItem(want)
	item, err := appendYAMLItem(nil, &tree, data, true)
	if err != nil || !bytes.Equal(ref.out.Bytes(), item) {
		t.Fatalf("%s: List item differs (%v)\n%s", what, err, firstDifference(ref.out.Bytes(), item))
	}
}

// FuzzFastYAML checks the YAML printer against sigs.k8s.io/yaml on JSON
// documents the fuzzer builds around one string.
func FuzzFastYAML(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		doc := map[string]any{"v": s, s: []any{s, map[string]any{s: s}}}
		data, err := json.Marshal(doc)
		if err != nil {
			return
		}
		want, werr := yaml.JSONToYAML(data)
		var tree jsonTree
		got, gerr := appendYAML(nil, &tree, data)
		if gerr == errUnusual {
			if werr == nil {
				// Fine: the general printer handles it and prints this.
				return
			}
			return
		}
		if werr != nil || gerr != nil || !bytes.Equal(want, got) {
			t.Fatalf("%q: YAML differs (reference error %v, fast error %v)\n%s", s, werr, gerr, firstDifference(want, got))
		}
	})
}

// referencePrinter is the Printer's list framing before the fast path:
// one object per call, as it wrote them.
type referencePrinter struct {
	out  bytes.Buffer
	n    int
	list bool
}

func (p *referencePrinter) yamlItem(b []byte) {
	if !p.list {
		if p.n > 0 {
			p.out.WriteString("---\n")
		}
		p.out.Write(b)
		return
	}
	if p.n == 0 {
		p.out.WriteString("items:\n")
	}
	for i, line := range strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n") {
		if i == 0 {
			p.out.WriteString("- ")
		} else {
			p.out.WriteString("  ")
		}
		p.out.WriteString(line)
	}
	p.out.WriteString("\n")
}

func (p *referencePrinter) jsonItem(m map[string]any) {
	if !p.list {
		b, _ := json.MarshalIndent(m, "", "    ")
		fmt.Fprintf(&p.out, "%s\n", b)
		return
	}
	b, _ := json.MarshalIndent(m, "        ", "    ")
	sep := "\n        "
	if p.n > 0 {
		sep = ",\n        "
	}
	fmt.Fprintf(&p.out, "%s%s", sep, b)
}

// TestPrinterOutputIsUnchanged prints captured values and pods of the
// benchmark's shape through the Printer, as lists and one by one, and
// compares with the framing and encoders used before.
func TestPrinterOutputIsUnchanged(t *testing.T) {
	var objs []*Object
	var kvs []KV
	for _, name := range []string{"pod.bin", "job.bin"} {
		v, err := os.ReadFile(testdataPath("stored-values", name))
		if err != nil {
			t.Fatal(err)
		}
		kv := KV{Key: "/registry/x/default/" + name, Value: v[:len(v)-1], ModRevision: 7}
		o, err := (&Decoder{}).Decode(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		objs, kvs = append(objs, o), append(kvs, kv)
	}
	cr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": "a"}, "spec": map[string]any{"size": json.Number("3"), "ratio": 0.5, "note": "multi\nline\n"}}}
	objs = append(objs, &Object{Key: "/registry/example.com/widgets/a/w1", Object: cr})
	kvs = append(kvs, KV{Key: "/registry/example.com/widgets/a/w1"})

	for _, format := range []string{OutputYAML, OutputJSON, OutputName} {
		for _, list := range []bool{true, false} {
			var got, errOut bytes.Buffer
			p := &Printer{Out: &got, ErrOut: &errOut, Format: format, List: list, Prefix: DefaultPrefix}
			ref := &referencePrinter{list: list}
			if err := p.Begin(); err != nil {
				t.Fatal(err)
			}
			if list && format == OutputYAML {
				ref.out.WriteString("apiVersion: v1\n")
			}
			if list && format == OutputJSON {
				ref.out.WriteString("{\n    \"apiVersion\": \"v1\",\n    \"items\": [")
			}
			for i, o := range objs {
				if err := p.Print(kvs[i], o); err != nil {
					t.Fatal(err)
				}
				switch format {
				case OutputYAML:
					b, err := yaml.Marshal(o.Object)
					if err != nil {
						t.Fatal(err)
					}
					ref.yamlItem(b)
				case OutputJSON:
					m, err := ToMap(o.Object)
					if err != nil {
						t.Fatal(err)
					}
					ref.jsonItem(m)
				case OutputName:
					m, _ := ToMap(o.Object)
					fmt.Fprintf(&ref.out, "%s/%s\n", strings.ToLower(o.GVK().Kind)+map[bool]string{true: "", false: "." + o.GVK().Group}[o.GVK().Group == ""],
						m["metadata"].(map[string]any)["name"])
				}
				ref.n++
			}
			if err := p.End(); err != nil {
				t.Fatal(err)
			}
			if list && format == OutputYAML {
				ref.out.WriteString("kind: List\nmetadata:\n  resourceVersion: \"\"\n")
			}
			if list && format == OutputJSON {
				ref.out.WriteString("\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")
			}
			if !bytes.Equal(got.Bytes(), ref.out.Bytes()) {
				t.Errorf("-o %s (list %v) changed:\n%s", format, list, firstDifference(ref.out.Bytes(), got.Bytes()))
			}
		}
	}
}

// TestPrintRangeInParallelKeepsOrderAndWarnings lists a few hundred keys
// (whole objects, a plain value, a corrupt value, an unknown kind) with
// several workers and with one, and compares output and warnings.
func TestPrintRangeInParallelKeepsOrderAndWarnings(t *testing.T) {
	pod, err := os.ReadFile(testdataPath("stored-values", "pod.bin"))
	if err != nil {
		t.Fatal(err)
	}
	pod = pod[:len(pod)-1]
	var kvs []KV
	for i := range 300 {
		key := fmt.Sprintf("/registry/pods/default/p%04d", i)
		v := pod
		switch i {
		case 7:
			v = []byte("plain text")
		case 100:
			v = append([]byte(nil), pod[:40]...) // corrupt
		case 201:
			var unk runtime.Unknown
			if err := unk.Unmarshal(pod[4:]); err != nil {
				t.Fatal(err)
			}
			unk.APIVersion, unk.Kind = "future.k8s.io/v1", "Gizmo"
			b, _ := unk.Marshal()
			v = append([]byte("k8s\x00"), b...)
		}
		kvs = append(kvs, KV{Key: key, Value: v, ModRevision: int64(10 + i)})
	}
	src := &SnapshotSource{Snapshot: &Snapshot{Revision: 400, KVs: kvs}}
	run := func(format string, workers int) (string, string) {
		var out, errOut bytes.Buffer
		p := &Printer{Out: &out, ErrOut: &errOut, Format: format, List: true, Prefix: DefaultPrefix}
		if err := p.Begin(); err != nil {
			t.Fatal(err)
		}
		err := p.PrintRange(context.Background(), ListOptions{
			Source: src, Start: "/registry/pods/", End: PrefixEnd("/registry/pods/"), Decoder: &Decoder{}, Workers: workers,
			Check: func(kv KV, o *Object, decodeErr error) (bool, error) {
				if decodeErr != nil {
					fmt.Fprintf(&errOut, "warning: %v\n", decodeErr)
					return false, nil
				}
				if o.Partial != nil {
					fmt.Fprintf(&errOut, "warning: %s: %v\n", kv.Key, o.Partial)
				}
				return true, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.End(); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	for _, format := range []string{OutputYAML, OutputJSON, OutputName} {
		seqOut, seqErr := run(format, 1)
		parOut, parErr := run(format, 4)
		// One worker still goes through the pipeline; print key by key too.
		var ref bytes.Buffer
		p := &Printer{Out: &ref, ErrOut: io.Discard, Format: format, List: true, Prefix: DefaultPrefix}
		p.Begin()
		for _, kv := range kvs {
			o, err := (&Decoder{}).Decode(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				continue
			}
			if err := p.Print(kv, o); err != nil {
				t.Fatal(err)
			}
		}
		p.End()
		if parOut != seqOut || parOut != ref.String() || parErr != seqErr {
			t.Errorf("-o %s: parallel listing differs:\n%s", format, firstDifference([]byte(ref.String()), []byte(parOut)))
		}
		if !strings.Contains(parErr, "p0100: not a Kubernetes protobuf envelope") || !strings.Contains(parErr, "p0201: kind Gizmo") ||
			format != OutputName && !strings.Contains(parErr, "p0007 holds a plain value") {
			t.Errorf("-o %s: warnings:\n%s", format, parErr)
		}
		if strings.Index(parErr, "p0007") > strings.Index(parErr, "p0100") || strings.Index(parErr, "p0100") > strings.Index(parErr, "p0201") {
			t.Errorf("-o %s: warnings out of order:\n%s", format, parErr)
		}
	}
}
