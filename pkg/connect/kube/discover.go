// Package kube reaches the etcd members of a Kubernetes control plane
// through the Kubernetes API, for a user with a kubeconfig and no shell on
// the nodes: it finds the etcd pods, tunnels to each member with
// port-forward, or runs etcdctl inside the member's pod with exec.
package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// Defaults of the discovery: where kubeadm puts its etcd static pods.
const (
	DefaultNamespace = "kube-system"
	DefaultSelector  = "component=etcd"
	// EtcdContainer is the container kubeadm runs etcd in.
	EtcdContainer = "etcd"
)

// EtcdPod is one etcd member's pod as the API server reports it.
type EtcdPod struct {
	Namespace string
	Name      string
	Node      string
	Phase     corev1.PodPhase
	// Container runs etcd: exec goes there.
	Container string
	// ClientURLs are the member's advertised client URLs, from kubeadm's
	// annotation or else the etcd command line.
	ClientURLs []string
	// Member is the etcd member name (--name).
	Member string
	// CACert, Cert and Key are certificate paths inside the pod, from the
	// etcd command line: the CA clients are checked against and the
	// server's own pair, which kubeadm issues for client auth too.
	CACert, Cert, Key string
}

// String names the pod as kubectl does: namespace/name.
func (p EtcdPod) String() string { return p.Namespace + "/" + p.Name }

// Running reports whether the pod runs, so exec and port-forward can work.
func (p EtcdPod) Running() bool { return p.Phase == corev1.PodRunning }

// NotRunning is the reason a pod cannot be reached, for error messages.
func (p EtcdPod) NotRunning() string {
	phase := string(p.Phase)
	if phase == "" {
		phase = "unknown"
	}
	where := ""
	if p.Node != "" {
		where = " on node " + p.Node
	}
	return fmt.Sprintf("etcd pod %s%s is not running (phase %s)", p, where, phase)
}

// Discover lists the etcd pods in namespace matching selector, sorted by
// name. No pods is an error that says why that may be: a managed control
// plane runs etcd where the API does not show it.
func Discover(ctx context.Context, client kubernetes.Interface, namespace, selector string) ([]EtcdPod, error) {
	if _, err := labels.Parse(selector); err != nil {
		return nil, fmt.Errorf("--etcd-selector %q: %w", selector, err)
	}
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, APIError(err, "list", "pods", namespace, "")
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no etcd pods found in namespace %s with labels %s: a managed control plane (EKS, GKE, AKS, ...) does not run etcd as pods you can reach; otherwise set --etcd-namespace and --etcd-selector", namespace, selector)
	}
	var pods []EtcdPod
	var errs []string
	for i := range list.Items {
		p, err := FromPod(&list.Items[i])
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		pods = append(pods, p)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no usable etcd pod in namespace %s with labels %s: %s", namespace, selector, strings.Join(errs, "; "))
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// FromPod reads what reaching a member needs from its pod.
func FromPod(pod *corev1.Pod) (EtcdPod, error) {
	name := "pod " + pod.Namespace + "/" + pod.Name
	m, err := staticpod.FromPod(name, pod)
	if err != nil {
		return EtcdPod{}, err
	}
	p := EtcdPod{
		Namespace: pod.Namespace,
		Name:      pod.Name,
		Node:      pod.Spec.NodeName,
		Phase:     pod.Status.Phase,
		Container: pod.Spec.Containers[m.Container].Name,
		Member:    m.Flags["name"],
		CACert:    m.Flags["trusted-ca-file"],
		Cert:      m.Flags["cert-file"],
		Key:       m.Flags["key-file"],
	}
	urls := pod.Annotations[staticpod.AdvertiseClientURLsAnnotation]
	if urls == "" {
		urls = m.Flags["advertise-client-urls"]
	}
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSuffix(strings.TrimSpace(u), "/"); u != "" {
			p.ClientURLs = append(p.ClientURLs, u)
		}
	}
	if len(p.ClientURLs) == 0 {
		return EtcdPod{}, fmt.Errorf("%s has neither the %s annotation nor --advertise-client-urls", name, staticpod.AdvertiseClientURLsAnnotation)
	}
	return p, nil
}

// ForURL returns the pod advertising client URL u.
func ForURL(pods []EtcdPod, u string) (EtcdPod, bool) {
	u = strings.TrimSuffix(u, "/")
	for _, p := range pods {
		for _, pu := range p.ClientURLs {
			if pu == u {
				return p, true
			}
		}
	}
	return EtcdPod{}, false
}

// ForMember matches a member to its pod: by advertised client URL, else
// by name (kubeadm names a member after its node, and its pod etcd-NODE).
func ForMember(pods []EtcdPod, name string, clientURLs []string) (EtcdPod, bool) {
	for _, u := range clientURLs {
		if p, ok := ForURL(pods, u); ok {
			return p, true
		}
	}
	if name == "" {
		return EtcdPod{}, false
	}
	for _, p := range pods {
		if p.Member == name || p.Node == name || p.Name == "etcd-"+name {
			return p, true
		}
	}
	return EtcdPod{}, false
}

// APIError explains a failed API request. A refusal by RBAC names the verb
// and resource the user needs, as a Role would grant them.
func APIError(err error, verb, resource, namespace, name string) error {
	what := resource
	if name != "" {
		what += " " + namespace + "/" + name
	} else {
		what += " in namespace " + namespace
	}
	switch {
	case apierrors.IsForbidden(err) || isForbiddenUpgrade(err):
		return &ForbiddenError{Verb: verb, Resource: resource, Namespace: namespace, Err: err}
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server did not accept your credentials (%s %s): check the kubeconfig's user: %w", verb, what, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found: %w", what, err)
	}
	return fmt.Errorf("%s %s: %w", verb, what, err)
}

// ForbiddenError is RBAC refusing one verb on one resource.
type ForbiddenError struct {
	Verb, Resource, Namespace string
	Err                       error
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("RBAC forbids %q on %q in namespace %s for your user: ask for a Role granting verb %q on resource %q (manifests/rbac.yaml has one)", e.Verb, e.Resource, e.Namespace, e.Verb, e.Resource)
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// isForbiddenUpgrade recognises a 403 to a streaming upgrade (port-forward,
// exec), which client-go reports as text rather than a status error.
func isForbiddenUpgrade(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code == 403
	}
	msg := err.Error()
	return strings.Contains(msg, "forbidden") || strings.Contains(msg, "403 Forbidden")
}
