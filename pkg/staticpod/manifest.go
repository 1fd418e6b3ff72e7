// Package staticpod reads the etcd static pod manifest kubeadm writes to a
// control-plane node, and exposes the etcd command line inside it.
package staticpod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// DefaultManifestPath is where kubeadm writes the etcd static pod.
const DefaultManifestPath = "/etc/kubernetes/manifests/etcd.yaml"

// EtcdManifest is an etcd static pod and the flags of its etcd command.
type EtcdManifest struct {
	Path string
	Pod  *corev1.Pod
	// Container is the index of the container that runs etcd.
	Container int
	// Flags holds every --name=value of the etcd command line; a flag given
	// without a value maps to "true".
	Flags map[string]string
}

// ParkedPath is where a restart keeps the manifest at path while etcd is
// stopped: a hidden file in the same directory, which the kubelet
// ignores.
func ParkedPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".restarting")
}

// Parked is ParkedPath(path) when the manifest at path is missing and
// that file is there: what a restart, upgrade or config set killed (or
// whose node went down) while etcd was down for it leaves; empty
// otherwise.
func Parked(path string) string {
	parked := ParkedPath(path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		return ""
	}
	if _, err := os.Stat(parked); err != nil {
		return ""
	}
	return parked
}

// ParkedAdvice says, for the manifest at path that a restart left
// parked, what happened and how to put it back: the doctor's finding
// and the error of a command that looks for the manifest.
func ParkedAdvice(path, parked string) (what, fix string) {
	return fmt.Sprintf("%s is missing, and %s holds it: a kubectl etcd restart, upgrade or config set was stopped (killed, or the node went down) while etcd was down for it, and the kubelet runs no etcd on this node until the manifest is back", path, parked),
		fmt.Sprintf("mv %s %s (the kubelet starts etcd from it), or run that command again: it puts the manifest back first", parked, path)
}

// Read parses the manifest at path and finds its etcd container. A
// missing manifest that a restart left parked is still an error wrapping
// fs.ErrNotExist, saying so.
func Read(path string) (*EtcdManifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if parked := Parked(path); parked != "" {
			what, fix := ParkedAdvice(path, parked)
			return nil, fmt.Errorf("%w: %s: %s", err, what, fix)
		}
		return nil, err
	}
	return Parse(path, data)
}

// Parse is Read for bytes already in memory; path names them in errors.
func Parse(path string, data []byte) (*EtcdManifest, error) {
	pod := &corev1.Pod{}
	if err := yaml.Unmarshal(data, pod); err != nil {
		return nil, fmt.Errorf("%s is not a pod manifest: %w", path, err)
	}
	if pod.Kind != "Pod" {
		return nil, fmt.Errorf("%s is not an etcd static pod: kind is %q, want Pod", path, pod.Kind)
	}
	return FromPod(path, pod)
}

// FromPod finds the etcd container of a pod read from anywhere (a file, the
// Kubernetes API); name says where in errors.
func FromPod(name string, pod *corev1.Pod) (*EtcdManifest, error) {
	for i, c := range pod.Spec.Containers {
		args := append(append([]string{}, c.Command...), c.Args...)
		if len(args) == 0 || filepath.Base(args[0]) != "etcd" {
			continue
		}
		return &EtcdManifest{Path: name, Pod: pod, Container: i, Flags: parseFlags(args[1:])}, nil
	}
	return nil, fmt.Errorf("%s is not an etcd static pod: no container runs the etcd command", name)
}

func parseFlags(args []string) map[string]string {
	flags := map[string]string{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			continue
		}
		name := strings.TrimLeft(arg, "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			flags[k] = v
			continue
		}
		// "--name value" as well as "--name=value": take the next word
		// when it is not itself a flag.
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			flags[name] = args[i+1]
			i++
			continue
		}
		flags[name] = "true"
	}
	return flags
}

// List splits a comma-separated flag such as --listen-client-urls.
func (m *EtcdManifest) List(flag string) []string {
	v := m.Flags[flag]
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// LocalClientURL is the URL a process on the node should use: the loopback
// listener kubeadm adds, else the first advertised client URL.
func (m *EtcdManifest) LocalClientURL() (string, error) {
	for _, u := range m.List("listen-client-urls") {
		if strings.Contains(u, "://127.0.0.1:") || strings.Contains(u, "://localhost:") || strings.Contains(u, "://[::1]:") {
			return u, nil
		}
	}
	if urls := m.List("advertise-client-urls"); len(urls) > 0 {
		return urls[0], nil
	}
	if urls := m.List("listen-client-urls"); len(urls) > 0 {
		return urls[0], nil
	}
	return "", fmt.Errorf("%s: the etcd command has no --listen-client-urls or --advertise-client-urls", m.Path)
}
