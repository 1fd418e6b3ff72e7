// Package benchdata makes the data sets of the benchmarks: pods shaped
// like the ones a Deployment, the scheduler and the kubelet leave in etcd,
// stored through the project's own encoder, and small plain values.
package benchdata

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

// Namespaces is how many namespaces the pods are spread over.
const Namespaces = 50

// PodKey is the key of pod i.
func PodKey(prefix string, i int) string {
	ns, name := podNames(i)
	return prefix + "/pods/" + ns + "/" + name
}

func podNames(i int) (ns, name string) {
	app := i / 7
	return fmt.Sprintf("team-%02d", app%Namespaces), fmt.Sprintf("app-%05d-%08x-%05x", app, uint32(app)*2654435761, uint32(i)*40503&0xfffff)
}

// Pod returns pod i: the same i gives the same pod. Sizes vary with i
// (containers, environment, annotations) so the stored values spread over
// 2 to 6 KiB, as pods of real workloads do.
func Pod(i int) *corev1.Pod {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	ns, name := podNames(i)
	app := fmt.Sprintf("app-%05d", i/7)
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1337 * time.Millisecond)
	hash := fmt.Sprintf("%08x", uint32(i/7)*2654435761)
	uid := func() types.UID {
		return types.UID(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff|0x4000, r.Uint32()&0x3fff|0x8000, r.Uint64()&0xffffffffffff))
	}
	node := fmt.Sprintf("worker-%03d.example.internal", r.IntN(200))
	podIP := fmt.Sprintf("10.%d.%d.%d", 64+r.IntN(64), r.IntN(256), 2+r.IntN(250))
	sa := "default"
	if i%3 == 0 {
		sa = app
	}
	// One or two containers and up to 15 environment variables spread the
	// stored sizes over 2 to 6 KiB.
	nContainers := 1
	if i%4 == 3 {
		nContainers = 2
	}
	nEnv := r.IntN(16)
	annotations := map[string]string{
		"kubectl.kubernetes.io/restartedAt": created.Add(-time.Hour).Format(time.RFC3339),
	}
	if i%4 == 0 {
		annotations["prometheus.io/scrape"] = "true"
		annotations["prometheus.io/port"] = "9090"
		annotations["prometheus.io/path"] = "/metrics"
	}
	if i%5 == 0 {
		annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] = "true"
		annotations["checksum/config"] = fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
	}
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			GenerateName:      name[:len(name)-5],
			Namespace:         ns,
			UID:               uid(),
			CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{
				"app.kubernetes.io/name":     app,
				"app.kubernetes.io/instance": app + "-prod",
				"app.kubernetes.io/part-of":  "shop",
				"pod-template-hash":          hash,
				"tier":                       []string{"frontend", "backend", "worker"}[r.IntN(3)],
			},
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-" + hash, UID: uid(),
				Controller: ptr(true), BlockOwnerDeletion: ptr(true),
			}},
			ManagedFields: managedFields(created, nContainers),
		},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{
				Name: "kube-api-access-" + strconv.FormatInt(int64(r.IntN(1<<20)), 36),
				VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr(int32(420)),
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr(int64(3607)), Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
					},
				}},
			}, {
				Name:         "config",
				VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"}, DefaultMode: ptr(int32(420))}},
			}},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr(int64(30)),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            sa,
			DeprecatedServiceAccount:      sa,
			NodeName:                      node,
			SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), FSGroup: ptr(int64(2000))},
			SchedulerName:                 corev1.DefaultSchedulerName,
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
			},
			Priority:           ptr(int32(0)),
			EnableServiceLinks: ptr(true),
			PreemptionPolicy:   ptr(corev1.PreemptLowerPriority),
		},
		Status: corev1.PodStatus{
			Phase:    corev1.PodRunning,
			HostIP:   "192.168." + strconv.Itoa(r.IntN(4)) + "." + strconv.Itoa(10+r.IntN(200)),
			HostIPs:  nil,
			PodIP:    podIP,
			PodIPs:   []corev1.PodIP{{IP: podIP}},
			QOSClass: corev1.PodQOSBurstable,
		},
	}
	p.Status.HostIPs = []corev1.HostIP{{IP: p.Status.HostIP}}
	p.Status.StartTime = ptr(metav1.NewTime(created.Add(time.Second)))
	for _, c := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(created.Add(time.Duration(1+r.IntN(20)) * time.Second))})
	}
	if i%2 == 0 {
		p.Spec.Volumes = p.Spec.Volumes[:1]
	}
	for c := 0; c < nContainers; c++ {
		cname := []string{"app", "sidecar"}[c]
		image := fmt.Sprintf("registry.example.com/shop/%s:v1.%d.%d", app, r.IntN(30), r.IntN(10))
		if c == 1 {
			image = "registry.example.com/infra/envoy:v1.31.2"
		}
		ctr := corev1.Container{
			Name:  cname,
			Image: image,
			Args:  []string{"--port=8080", "--log-level=info", "--config=/etc/" + app + "/config.yaml"},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(strconv.Itoa(50+r.IntN(450)) + "m"), corev1.ResourceMemory: resource.MustParse(strconv.Itoa(64+r.IntN(960)) + "Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(strconv.Itoa(1+r.IntN(4)) + "Gi")},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/" + app, ReadOnly: true},
				{Name: p.Spec.Volumes[0].Name, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
			},
			LivenessProbe: &corev1.Probe{
				ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds: 1, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 3,
			},
			TerminationMessagePath:   corev1.TerminationMessagePathDefault,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
			SecurityContext:          &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		}
		if i%2 == 0 {
			// Half the workloads have no readiness probe and no config.
			ctr.ReadinessProbe = nil
			ctr.VolumeMounts = ctr.VolumeMounts[1:]
			ctr.Args = ctr.Args[:1]
		}
		if c == 0 {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}})
			for e := 0; e < nEnv; e++ {
				ctr.Env = append(ctr.Env, corev1.EnvVar{Name: fmt.Sprintf("SHOP_SETTING_%02d", e), Value: fmt.Sprintf("value-%x with some words %d", r.Uint32(), e)})
			}
		}
		p.Spec.Containers = append(p.Spec.Containers, ctr)
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name:         cname,
			Ready:        true,
			Started:      ptr(true),
			RestartCount: int32(r.IntN(3)),
			Image:        image,
			ImageID:      fmt.Sprintf("registry.example.com/shop/%s@sha256:%016x%016x%016x%016x", app, r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()),
			ContainerID:  fmt.Sprintf("containerd://%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()),
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(created.Add(3 * time.Second))}},
		})
	}
	if i%5 == 1 {
		// Not scheduled yet: what the controller manager wrote, no more.
		p.Spec.NodeName = ""
		p.ManagedFields = p.ManagedFields[:1]
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
			Message:            "0/200 nodes are available: 200 Insufficient memory. preemption: 0/200 nodes are available: 200 No preemption victims found for incoming pod.",
			LastTransitionTime: metav1.NewTime(created),
		}}}
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// managedFields are the entries a Deployment's pod carries: the controller
// manager created it, the kubelet wrote its status.
func managedFields(created time.Time, containers int) []metav1.ManagedFieldsEntry {
	spec := `{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/restartedAt":{}},"f:generateName":{},"f:labels":{".":{},"f:app.kubernetes.io/instance":{},"f:app.kubernetes.io/name":{},"f:app.kubernetes.io/part-of":{},"f:pod-template-hash":{},"f:tier":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"0\"}":{}}},"f:spec":{"f:containers":{`
	for c := 0; c < containers; c++ {
		if c > 0 {
			spec += ","
		}
		spec += `"k:{\"name\":\"` + []string{"app", "sidecar"}[c] + `\"}":{".":{},"f:args":{},"f:image":{},"f:imagePullPolicy":{},"f:livenessProbe":{".":{},"f:failureThreshold":{},"f:httpGet":{".":{},"f:path":{},"f:port":{},"f:scheme":{}},"f:periodSeconds":{},"f:successThreshold":{},"f:timeoutSeconds":{}},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:resources":{".":{},"f:limits":{".":{},"f:memory":{}},"f:requests":{".":{},"f:cpu":{},"f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:volumeMounts":{".":{},"k:{\"mountPath\":\"/etc/config\"}":{".":{},"f:mountPath":{},"f:name":{},"f:readOnly":{}}}}`
	}
	spec += `},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{".":{},"f:fsGroup":{},"f:runAsNonRoot":{}},"f:serviceAccount":{},"f:serviceAccountName":{},"f:terminationGracePeriodSeconds":{},"f:volumes":{".":{},"k:{\"name\":\"config\"}":{".":{},"f:configMap":{".":{},"f:defaultMode":{},"f:name":{}},"f:name":{}}}}}`
	status := `{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:hostIPs":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.0.0.1\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}`
	return []metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: ptr(metav1.NewTime(created)), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(spec)}},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: ptr(metav1.NewTime(created.Add(5 * time.Second))), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(status)}, Subresource: "status"},
	}
}

// PodValue is pod i as kube-apiserver stores it.
func PodValue(i int) ([]byte, error) {
	v, _, err := storage.EncodeObject(Pod(i))
	return v, err
}

// SmallValue is the value of small key i: a few dozen bytes of text.
func SmallValue(i int) []byte {
	return []byte(fmt.Sprintf(`{"id":%d,"owner":"team-%02d","enabled":%t}`, i, i%Namespaces, i%3 != 0))
}

// SmallKey is small key i under prefix.
func SmallKey(prefix string, i int) string {
	return fmt.Sprintf("%s/team-%02d/key-%08d", prefix, i%Namespaces, i)
}
