package storage

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// DefaultPrefix is kube-apiserver's default --etcd-prefix.
const DefaultPrefix = "/registry"

// Key is a parsed object key: PREFIX/PATH[/NAMESPACE]/NAME, where PATH is
// where the resource lives ("pods", "services/specs", "minions",
// "apiregistration.k8s.io/apiservices", "GROUP/PLURAL" for custom
// resources).
type Key struct {
	Path      string
	Namespace string
	Name      string
}

// KnownPaths maps a resource (plural[.group]) to where kube-apiserver
// stores it when that is not the plural alone. The commands still check
// the data: a path is used only when keys exist under it.
var KnownPaths = map[string][]string{
	"services":                           {"services/specs"},
	"endpoints":                          {"services/endpoints"},
	"nodes":                              {"minions"},
	"replicationcontrollers":             {"controllers"},
	"ingresses.networking.k8s.io":        {"ingress"},
	"ingresses.extensions":               {"ingress"},
	"podsecuritypolicies.policy":         {"podsecuritypolicy"},
	"apiservices.apiregistration.k8s.io": {"apiregistration.k8s.io/apiservices"},
	"customresourcedefinitions.apiextensions.k8s.io": {"apiextensions.k8s.io/customresourcedefinitions"},
	"endpointslices.discovery.k8s.io":                {"endpointslices"},
}

// pathResource is the reverse of KnownPaths for the paths that differ from
// the resource name.
var pathResource = map[string]string{
	"services/specs":     "services",
	"services/endpoints": "endpoints",
	"minions":            "nodes",
	"controllers":        "replicationcontrollers",
	"ingress":            "ingresses",
	"podsecuritypolicy":  "podsecuritypolicies",
}

// twoSegmentPaths are the built-in paths of two segments.
var twoSegmentPaths = map[string]bool{"services/specs": true, "services/endpoints": true}

// ParseKey splits a key under prefix into path, namespace and name. The
// path has two segments for services/specs, services/endpoints and any
// first segment with a dot (an API group: custom resources, apiservices,
// CRDs). A key with one segment after the path is a cluster-scoped object
// (or a namespace); with two, a namespaced one. ok is false for keys that
// are not under prefix or too short to be an object.
func ParseKey(prefix, key string) (k Key, ok bool) {
	prefix = strings.TrimSuffix(prefix, "/")
	if !strings.HasPrefix(key, prefix+"/") {
		return Key{}, false
	}
	segs := strings.Split(key[len(prefix)+1:], "/")
	n := 1
	if len(segs) >= 2 && (twoSegmentPaths[segs[0]+"/"+segs[1]] || strings.Contains(segs[0], ".")) {
		n = 2
	}
	rest := segs[n:]
	k.Path = strings.Join(segs[:n], "/")
	switch len(rest) {
	case 1:
		k.Name = rest[0]
	case 2:
		k.Namespace, k.Name = rest[0], rest[1]
	default:
		return Key{Path: k.Path}, false
	}
	if k.Name == "" {
		return Key{Path: k.Path}, false
	}
	return k, true
}

// Resource is the resource (plural) a path holds, as kubectl names it:
// "pods", "services", "nodes", "widgets.example.com".
func (k Key) Resource() string {
	if r, ok := pathResource[k.Path]; ok {
		return r
	}
	if group, res, ok := strings.Cut(k.Path, "/"); ok && strings.Contains(group, ".") {
		return res + "." + group
	}
	return k.Path
}

// CandidatePaths returns where a resource may be stored, most likely
// first: the known path, then the plural, then GROUP/PLURAL (custom
// resources). resource is plural or plural.group.
func CandidatePaths(resource string) []string {
	var out []string
	add := func(p string) {
		for _, q := range out {
			if q == p {
				return
			}
		}
		out = append(out, p)
	}
	plural, group, _ := strings.Cut(resource, ".")
	for _, p := range KnownPaths[resource] {
		add(p)
	}
	for r, ps := range KnownPaths {
		if strings.HasPrefix(r, plural+".") && group == "" {
			for _, p := range ps {
				add(p)
			}
		}
	}
	add(plural)
	if group != "" {
		add(group + "/" + plural)
	}
	return out
}

// ResourceFor returns the resource for a kind by kubectl's plural rule and
// its key path, for encoding an object when only the object is known.
func ResourceFor(gvk schema.GroupVersionKind) (resource, path string) {
	plural := guessPlural(strings.ToLower(gvk.Kind))
	resource = plural
	if gvk.Group != "" {
		resource = plural + "." + gvk.Group
	}
	if ps, ok := KnownPaths[resource]; ok {
		return resource, ps[0]
	}
	if _, builtin := Scheme.AllKnownTypes()[gvk]; builtin || gvk.Group == "" {
		return resource, plural
	}
	return resource, gvk.Group + "/" + plural
}

func guessPlural(kind string) string {
	switch {
	case kind == "endpoints":
		return kind
	case strings.HasSuffix(kind, "s"), strings.HasSuffix(kind, "x"), strings.HasSuffix(kind, "ch"), strings.HasSuffix(kind, "sh"):
		return kind + "es"
	case strings.HasSuffix(kind, "y") && len(kind) > 1 && !strings.ContainsAny(kind[len(kind)-2:len(kind)-1], "aeiou"):
		return kind[:len(kind)-1] + "ies"
	}
	return kind + "s"
}

// BuiltinResources lists the resources of Scheme with their kinds
// (lowercase plural -> kinds), for completing and resolving names.
func BuiltinResources() map[string][]schema.GroupVersionKind {
	out := map[string][]schema.GroupVersionKind{}
	for gvk, typ := range Scheme.AllKnownTypes() {
		if strings.HasSuffix(gvk.Kind, "List") || strings.HasSuffix(gvk.Kind, "Options") || gvk.Version == "__internal" {
			continue
		}
		// meta/v1 kinds (Status, WatchEvent, APIVersions, ...) are in
		// every group and never stored.
		if strings.HasPrefix(typ.PkgPath(), "k8s.io/apimachinery/") {
			continue
		}
		r, _ := ResourceFor(gvk)
		out[r] = append(out[r], gvk)
	}
	for _, v := range out {
		sort.Slice(v, func(i, j int) bool { return v[i].String() < v[j].String() })
	}
	return out
}

// ObjectKey returns the key kube-apiserver stores an object under.
func ObjectKey(prefix, path, namespace, name string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	if namespace == "" {
		return prefix + "/" + path + "/" + name
	}
	return prefix + "/" + path + "/" + namespace + "/" + name
}

// PrefixEnd is the end of the range of keys starting with prefix, as
// clientv3.GetPrefixRangeEnd computes it.
func PrefixEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	return "\x00"
}

// shortNames are kubectl's short names for built-in resources.
var shortNames = map[string]string{
	"po": "pods", "svc": "services", "deploy": "deployments.apps", "ds": "daemonsets.apps",
	"sts": "statefulsets.apps", "rs": "replicasets.apps", "cm": "configmaps", "ns": "namespaces",
	"no": "nodes", "pv": "persistentvolumes", "pvc": "persistentvolumeclaims", "sa": "serviceaccounts",
	"ep": "endpoints", "ing": "ingresses.networking.k8s.io", "crd": "customresourcedefinitions.apiextensions.k8s.io",
	"crds": "customresourcedefinitions.apiextensions.k8s.io", "cj": "cronjobs.batch", "hpa": "horizontalpodautoscalers.autoscaling",
	"pdb": "poddisruptionbudgets.policy", "pc": "priorityclasses.scheduling.k8s.io", "sc": "storageclasses.storage.k8s.io",
	"rc": "replicationcontrollers", "ev": "events", "limits": "limitranges", "quota": "resourcequotas",
	"netpol": "networkpolicies.networking.k8s.io", "csr": "certificatesigningrequests.certificates.k8s.io",
}

var builtins = BuiltinResources()

// IsBuiltin reports whether resource (plural[.group]) is a built-in one.
func IsBuiltin(resource string) bool { _, ok := builtins[resource]; return ok }

// CanonicalResource turns what a user types into plural[.group]: short
// names, singular kinds and plurals of built-in resources gain their group;
// anything else is returned lower-cased.
func CanonicalResource(name string) string {
	name = strings.ToLower(name)
	if s, ok := shortNames[name]; ok {
		return s
	}
	if IsBuiltin(name) {
		return name
	}
	plural, group, _ := strings.Cut(name, ".")
	var match []string
	for r, gvks := range builtins {
		p, g, _ := strings.Cut(r, ".")
		if group != "" && g != group {
			continue
		}
		if p == plural || strings.ToLower(gvks[0].Kind) == plural {
			match = append(match, r)
		}
	}
	if len(match) > 0 {
		// Prefer the core group, then the shortest group name (events
		// before events.events.k8s.io), as kubectl prefers the core group.
		best := match[0]
		for _, m := range match[1:] {
			if len(m) < len(best) || len(m) == len(best) && m < best {
				best = m
			}
		}
		return best
	}
	return name
}

// ResourceNames are the built-in resources by the names kubectl users
// type: the plural, with its group only where the plural is ambiguous.
func ResourceNames() []string {
	count := map[string]int{}
	for r := range builtins {
		p, _, _ := strings.Cut(r, ".")
		count[p]++
	}
	var out []string
	for r := range builtins {
		p, _, _ := strings.Cut(r, ".")
		if count[p] > 1 {
			out = append(out, r)
		} else {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// CheckMatchesKey refuses an object stored under a key meant for another
// kind, namespace or name: the apiserver would serve it confusingly or not
// at all.
func CheckMatchesKey(prefix, key string, gvk schema.GroupVersionKind, doc []byte) error {
	k, ok := ParseKey(prefix, key)
	if !ok {
		return fmt.Errorf("%s is not an object key under %s (PATH/[NAMESPACE/]NAME)", key, prefix)
	}
	data, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return err
	}
	if u.GetName() != k.Name || u.GetNamespace() != k.Namespace {
		return fmt.Errorf("the object is %s/%s but the key %s is for %s/%s", orNone(u.GetNamespace()), u.GetName(), key, orNone(k.Namespace), k.Name)
	}
	resource, _ := ResourceFor(gvk)
	want, _, _ := strings.Cut(resource, ".")
	have, _, _ := strings.Cut(k.Resource(), ".")
	if want != have {
		return fmt.Errorf("a %s is stored as %s, but the key %s holds %s", gvk.Kind, want, key, have)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "<cluster>"
	}
	return s
}
