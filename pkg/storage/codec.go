// Package storage is the Kubernetes storage codec for etcd values and the
// key layout under /registry: the protobuf envelope kube-apiserver writes
// (`k8s\x00` + runtime.Unknown), JSON for custom resources, decryption of
// values encrypted at rest (through package encryption), and how keys name
// resources, namespaces and objects.
//
// Its sub-packages build on it, never the reverse: encryption (at rest,
// with KMS), backend (the key bucket of a bbolt file), source (live etcd
// and backend files, watch and history), printer (yaml, json, table and
// the other listings), stats, cas (compare-and-swap writes) and diff.
package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregv1beta1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
)

// ProtobufPrefix starts every protobuf value kube-apiserver stores.
var ProtobufPrefix = []byte("k8s\x00")

// Scheme knows every built-in API group of client-go plus apiextensions
// (CustomResourceDefinition) and apiregistration (APIService), the groups
// kube-apiserver serves itself.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextv1.AddToScheme(s))
	utilruntime.Must(apiextv1beta1.AddToScheme(s))
	utilruntime.Must(apiregv1.AddToScheme(s))
	utilruntime.Must(apiregv1beta1.AddToScheme(s))
	return s
}

// Format is how a value was stored.
type Format string

// Storage formats.
const (
	FormatProtobuf Format = "protobuf"
	FormatJSON     Format = "json"
	FormatPlain    Format = "plain"
)

// Object is one decoded etcd value.
type Object struct {
	Key         string
	ModRevision int64
	// Format is how the (decrypted) value was stored.
	Format Format
	// Encryption names the provider and key of an encrypted value
	// ("aescbc:key1"), empty for values stored in the clear.
	Encryption string
	// Object is the decoded Kubernetes object: a typed object of Scheme, or
	// *unstructured.Unstructured for custom resources and for kinds this
	// build does not know (then with only apiVersion, kind and metadata).
	// Nil for plain values.
	Object runtime.Object
	// Partial is why Object holds only type and metadata, nil when whole.
	Partial error
	// Value is the stored value after decryption.
	Value []byte
	// Kind is the kind of a value a listing printed straight from its
	// protobuf wire form, without decoding it into Object (then nil).
	Kind schema.GroupVersionKind
}

// GVK is the object's group, version and kind; empty for plain values.
func (o *Object) GVK() schema.GroupVersionKind {
	if o.Object == nil {
		return o.Kind
	}
	return o.Object.GetObjectKind().GroupVersionKind()
}

// Decoder turns stored values into objects. Its zero value decodes values
// stored in the clear; set Encryption to decrypt.
type Decoder struct {
	Encryption *encryption.Config
}

// Decode decodes the value stored at key. modRevision, when not zero,
// becomes metadata.resourceVersion, as the apiserver does when it reads.
// A value that is neither protobuf nor a JSON object is returned as a plain
// value. An encrypted value without the means to decrypt it, or a corrupt
// one, is an error naming the key.
func (d *Decoder) Decode(key string, value []byte, modRevision int64) (obj *Object, err error) {
	defer func() {
		// Generated protobuf code trusts lengths; a corrupt value must be an
		// error naming the key, never a crash in the middle of a listing.
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("decoding %s: corrupt value (%v)", key, r)
		}
	}()
	o := &Object{Key: key, ModRevision: modRevision}
	if encryption.IsEncrypted(value) {
		plain, how, err := d.Encryption.Decrypt(key, value)
		if err != nil {
			return nil, fmt.Errorf("decrypting %s: %w", key, err)
		}
		o.Encryption = how
		value = plain
	}
	o.Value = value
	switch {
	case bytes.HasPrefix(value, ProtobufPrefix):
		o.Format = FormatProtobuf
		obj, partial, err := decodeProtobuf(value)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", key, err)
		}
		o.Object, o.Partial = obj, partial
	case looksLikeJSONObject(value):
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(value); err != nil {
			// JSON but not an object with apiVersion and kind: a plain value.
			o.Format = FormatPlain
			return o, nil
		}
		o.Format = FormatJSON
		o.Object = u
	default:
		o.Format = FormatPlain
		return o, nil
	}
	if modRevision != 0 {
		setResourceVersion(o.Object, modRevision)
	}
	return o, nil
}

func looksLikeJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 1 && b[0] == '{' && b[len(b)-1] == '}' && json.Valid(b)
}

type protoUnmarshaler interface {
	Reset()
	Unmarshal([]byte) error
}

// decodeProtobuf decodes `k8s\x00` + runtime.Unknown. A kind the scheme
// does not know still yields apiVersion, kind and, when readable, metadata
// (field 1 of every Kubernetes object message), with the reason as partial.
func decodeProtobuf(value []byte) (obj runtime.Object, partial error, err error) {
	var unk runtime.Unknown
	if err := unk.Unmarshal(value[len(ProtobufPrefix):]); err != nil {
		return nil, nil, fmt.Errorf("not a Kubernetes protobuf envelope: %w", err)
	}
	gvk := unk.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, nil, fmt.Errorf("protobuf envelope without apiVersion and kind (%q, %q)", unk.APIVersion, unk.Kind)
	}
	typed, err := Scheme.New(gvk)
	if err == nil {
		if u, ok := typed.(protoUnmarshaler); ok {
			if err := u.Unmarshal(unk.Raw); err != nil {
				return nil, nil, fmt.Errorf("bad protobuf for %s: %w", gvk.Kind, err)
			}
			typed.GetObjectKind().SetGroupVersionKind(gvk)
			return typed, nil, nil
		}
	}
	// Unknown kind: type and metadata only.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	partial = fmt.Errorf("kind %s is not known to this build: showing type and metadata only", gvkString(gvk))
	if meta, merr := protobufMetadata(unk.Raw); merr == nil && meta != nil {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(meta)
		if err == nil {
			u.Object["metadata"] = m
		}
	} else if merr != nil {
		partial = fmt.Errorf("%w; metadata unreadable: %v", partial, merr)
	}
	return u, partial, nil
}

// protobufMetadata reads field 1 of a Kubernetes object message, which is
// metav1.ObjectMeta in every built-in type.
func protobufMetadata(raw []byte) (*metav1.ObjectMeta, error) {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		raw = raw[n:]
		if num == 1 && typ == protowire.BytesType {
			b, n := protowire.ConsumeBytes(raw)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			meta := &metav1.ObjectMeta{}
			if err := meta.Unmarshal(b); err != nil {
				return nil, err
			}
			return meta, nil
		}
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		raw = raw[n:]
	}
	return nil, nil
}

func gvkString(gvk schema.GroupVersionKind) string {
	return gvk.Kind + "." + gvk.GroupVersion().String()
}

func setResourceVersion(obj runtime.Object, rev int64) {
	type rv interface{ SetResourceVersion(string) }
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		if _, ok := o.Object["metadata"]; ok {
			o.SetResourceVersion(strconv.FormatInt(rev, 10))
		}
	case metav1.Object:
		o.SetResourceVersion(strconv.FormatInt(rev, 10))
	case rv:
		o.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
}

// ToMap returns the object as kubectl prints it: apiVersion and kind first
// in a JSON map, fields in their JSON names.
func ToMap(obj runtime.Object) (map[string]any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.Object, nil
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	// Numbers stay exact (int64 fields above 2^53 would lose digits as
	// float64).
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	m := map[string]any{}
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// Encode returns the bytes kube-apiserver would store for the object in
// doc (YAML or JSON): protobuf for kinds in Scheme, JSON for the rest
// (custom resources). metadata.resourceVersion is dropped, as the apiserver
// does before it writes.
func Encode(doc []byte) ([]byte, schema.GroupVersionKind, error) {
	data, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, schema.GroupVersionKind{}, fmt.Errorf("not YAML or JSON: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, schema.GroupVersionKind{}, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	gvk := u.GroupVersionKind()
	u.SetResourceVersion("")
	u.SetSelfLink("")
	typed, err := Scheme.New(gvk)
	if err != nil {
		if !runtime.IsNotRegisteredError(err) {
			return nil, gvk, err
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(u.Object); err != nil {
			return nil, gvk, err
		}
		return buf.Bytes(), gvk, nil
	}
	clean, err := u.MarshalJSON()
	if err != nil {
		return nil, gvk, err
	}
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(typed); err != nil {
		return nil, gvk, fmt.Errorf("%s: %w", gvkString(gvk), err)
	}
	typed.GetObjectKind().SetGroupVersionKind(gvk)
	return EncodeObject(typed)
}

// protobufSerializer writes the `k8s\x00` envelope; it is safe for
// concurrent use.
var protobufSerializer = protobuf.NewSerializer(Scheme, Scheme)

// EncodeObject returns the bytes kube-apiserver would store for a typed
// object of Scheme whose apiVersion and kind are set: the protobuf
// envelope. It is Encode without the parsing, for callers that build
// objects in Go (the benchmarks write their pods through it).
func EncodeObject(obj runtime.Object) ([]byte, schema.GroupVersionKind, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	var buf bytes.Buffer
	if err := protobufSerializer.Encode(obj, &buf); err != nil {
		return nil, gvk, fmt.Errorf("encoding %s as protobuf: %w", gvkString(gvk), err)
	}
	return buf.Bytes(), gvk, nil
}

// ErrNotObject reports a value that is not a Kubernetes object.
var ErrNotObject = errors.New("not a Kubernetes object")
