package emit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/internal/reference"
	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

// The fast printers must write what sigs.k8s.io/yaml (YAML) and
// encoding/json through a map (JSON) wrote before them, byte for byte.
// These tests compare them on every kind of the scheme filled with random
// values, on adversarial strings and on documents the fuzzer finds.

// fastPathCounts counts the objects the fast printer printed itself, so a
// test can check they did not all fall back to the general path. Each test
// keeps its own, so tests run in any order and any number of times.
type fastPathCounts struct{ fast, fallback int }

// marshal is the JSON the printer hands the fast printers: encoding/json
// through an Encoder, without the trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// compareRenderings checks the fast YAML and JSON of obj against the
// reference wherever the fast printers take it; counts (may be nil) learns
// how often they did.
func compareRenderings(t *testing.T, what string, obj runtime.Object, counts *fastPathCounts) {
	t.Helper()
	if counts == nil {
		counts = &fastPathCounts{}
	}
	var tree Tree
	if data, err := marshal(obj); err == nil {
		got, gerr := AppendYAML(nil, &tree, data)
		if gerr == nil {
			counts.fast++
			want, werr := reference.YAML(obj)
			if werr != nil || !bytes.Equal(want, got) {
				t.Fatalf("%s: YAML differs (reference error %v)\n%s", what, werr, reference.FirstDifference(want, got))
			}
		} else {
			counts.fallback++
		}
	}
	var v any = obj
	if u, ok := obj.(*unstructured.Unstructured); ok {
		v = u.Object
	}
	data, err := marshal(v)
	if err != nil || tree.Parse(data) != nil {
		return // the general path prints it: nothing to compare
	}
	for _, prefix := range []string{"", "        "} {
		want, werr := reference.JSON(obj, prefix)
		got := AppendIndentedJSON(nil, &tree, prefix)
		if werr != nil || !bytes.Equal(want, got) {
			t.Fatalf("%s: JSON differs (reference error %v)\n%s", what, werr, reference.FirstDifference(want, got))
		}
	}
}

// TestFastPrintersMatchOnEveryKind fills each kind of the scheme with
// random values (random Unicode strings included) and compares.
func TestFastPrintersMatchOnEveryKind(t *testing.T) {
	codecs := serializer.NewCodecFactory(storage.Scheme)
	gvks := reference.Kinds()
	var counts fastPathCounts
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for seed := range rounds {
		filler := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(int64(seed)), codecs).NilChance(0.2).NumElements(1, 2).MaxDepth(10)
		for _, gvk := range gvks {
			obj, filled, err := reference.Filled(gvk, filler.Fill)
			if err != nil {
				t.Fatal(err)
			}
			if !filled {
				continue
			}
			compareRenderings(t, fmt.Sprintf("%s (seed %d)", gvk, seed), obj, &counts)
		}
	}
	t.Logf("%d kinds; %d objects printed by the fast printer, %d left to the general one", len(gvks), counts.fast, counts.fallback)
	if counts.fast < counts.fallback*4 {
		t.Errorf("the fast printer took only %d of %d objects", counts.fast, counts.fast+counts.fallback)
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
	compareRenderings(t, what, &unstructured.Unstructured{Object: doc}, nil)
	// JSONToYAML on the text, as sigs.k8s.io/yaml.Marshal does it.
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	want, werr := yaml.JSONToYAML(data)
	var tree Tree
	got, gerr := AppendYAML(nil, &tree, data)
	if gerr == ErrUnusual {
		return
	}
	if werr != nil || gerr != nil || !bytes.Equal(want, got) {
		t.Fatalf("%s: YAML differs (reference error %v, fast error %v)\n%s", what, werr, gerr, reference.FirstDifference(want, got))
	}
	// As an item of a List.
	ref := &reference.Printer{List: true, N: 1}
	ref.YAMLItem(want)
	item, err := AppendYAMLItem(nil, &tree, data, true)
	if err != nil || !bytes.Equal(ref.Out.Bytes(), item) {
		t.Fatalf("%s: List item differs (%v)\n%s", what, err, reference.FirstDifference(ref.Out.Bytes(), item))
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
		var tree Tree
		got, gerr := AppendYAML(nil, &tree, data)
		if gerr == ErrUnusual {
			if werr == nil {
				// Fine: the general printer handles it and prints this.
				return
			}
			return
		}
		if werr != nil || gerr != nil || !bytes.Equal(want, got) {
			t.Fatalf("%q: YAML differs (reference error %v, fast error %v)\n%s", s, werr, gerr, reference.FirstDifference(want, got))
		}
	})
}
