package storage_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-etcd/kubectl-etcd/internal/benchdata"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

// viaMap is what SortedJSON stands for: the object's map marshalled.
func viaMap(t testing.TB, obj runtime.Object) []byte {
	m, err := storage.ToMap(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSortedJSONObjects(t *testing.T) {
	objs := []runtime.Object{
		&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: map[string]string{"a<b>&c": "\u2028 \xff \ufffd \"q\" \\ \n", "z": "", "k:{\"type\":\"Ready\"}": "x"}},
			Data:       map[string]string{"b": "2", "a": "1", "é": "3"}, BinaryData: map[string][]byte{"bin": {0, 1, 2}}},
		&corev1.Pod{},
	}
	for i := range 300 {
		objs = append(objs, benchdata.Pod(i))
	}
	for i, obj := range objs {
		data, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		got, err := storage.SortedJSON([]byte("prefix"), data)
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		if want := append([]byte("prefix"), viaMap(t, obj)...); !bytes.Equal(got, want) {
			t.Fatalf("object %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// inOrder re-encodes JSON as json.Marshal writes its strings and numbers,
// keeping each object's members in the order given (json.Marshal of a
// struct does not sort).
func inOrder(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		out.WriteString(v.String())
		end := json.Delim('}')
		if v == '[' {
			end = ']'
		}
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if v == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				b, _ := json.Marshal(k)
				out.Write(b)
				out.WriteByte(':')
			}
			if err := inOrder(dec, out); err != nil {
				return err
			}
		}
		if tok, err := dec.Token(); err != nil || tok != end {
			return fmt.Errorf("unbalanced: %v %v", tok, err)
		}
		out.WriteString(end.String())
	case json.Number:
		out.WriteString(v.String())
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		out.Write(b)
	}
	return nil
}

func FuzzSortedJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[{"d":null,"c":true}],"e":{}}`, `[]`, `"x\u003c"`, `{"k:{\"a\":1}":{"z":-1.5e300,"y":"\ud83d\ude00"}}`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	data, _ := json.Marshal(benchdata.Pod(7))
	f.Add(data)
	f.Fuzz(func(t *testing.T, raw []byte) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var in bytes.Buffer
		if err := inOrder(dec, &in); err != nil {
			return
		}
		if _, err := dec.Token(); err != io.EOF {
			return
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(in.Bytes()))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v", in.Bytes(), err)
		}
		want, err := json.Marshal(v)
		if err != nil {
			return
		}
		got, err := storage.SortedJSON(nil, in.Bytes())
		if err != nil {
			return // a repeated key: the caller marshals the map
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", in.Bytes(), got, want)
		}
	})
}
