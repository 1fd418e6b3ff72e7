package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.etcd.io/etcd/server/v3/embed"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd"
)

// doc is one decoded YAML document of a manifest file.
type doc struct {
	file  string
	index int
	obj   runtime.Object
}

func (d doc) String() string { return fmt.Sprintf("%s document %d", d.file, d.index) }

// strictDecoder rejects unknown and duplicate fields, as
// `kubectl apply --validate=strict` does.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// decodeStrict decodes one document with client-go's scheme, then again
// into its typed struct with sigs.k8s.io/yaml's strict mode, so a misspelt
// or misplaced field is an error rather than silently dropped.
func decodeStrict(raw []byte) (runtime.Object, error) {
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if _, _, err := strictDecoder.Decode(raw, nil, nil); err != nil {
		return nil, fmt.Errorf("strict decoding %s: %w", gvk.Kind, err)
	}
	typed, err := scheme.Scheme.New(*gvk)
	if err != nil {
		return nil, fmt.Errorf("%s is not a kind client-go knows: %w", gvk, err)
	}
	if err := yaml.UnmarshalStrict(raw, typed); err != nil {
		return nil, fmt.Errorf("strict unmarshal into %T: %w", typed, err)
	}
	return obj, nil
}

// splitDocuments returns the non-empty YAML documents of data.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		if v == nil { // comments only
			continue
		}
		docs = append(docs, raw)
	}
}

// loadAll decodes every document of every YAML file under this directory.
func loadAll(t *testing.T) []doc {
	t.Helper()
	var docs []doc
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		raws, err := splitDocuments(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(raws) == 0 {
			return fmt.Errorf("%s: no documents", p)
		}
		for i, raw := range raws {
			obj, err := decodeStrict(raw)
			if err != nil {
				return fmt.Errorf("%s document %d: %w", p, i+1, err)
			}
			docs = append(docs, doc{file: p, index: i + 1, obj: obj})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// only returns the one object of type T in file, failing otherwise.
func only[T runtime.Object](t *testing.T, docs []doc, file string) T {
	t.Helper()
	var found []T
	for _, d := range docs {
		if o, ok := d.obj.(T); ok && d.file == file {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%s: want exactly one %T, found %d", file, zero, len(found))
	}
	return found[0]
}

func TestEveryDocumentDecodesStrictly(t *testing.T) {
	docs := loadAll(t)
	t.Logf("%d documents decode strictly", len(docs))
	files := map[string]bool{}
	names := map[string]string{}
	for _, d := range docs {
		files[d.file] = true
		m, err := metaOf(d.obj)
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		if m.GetName() == "" {
			t.Errorf("%s: no metadata.name", d)
		}
		key := fmt.Sprintf("%s/%s/%s", d.obj.GetObjectKind().GroupVersionKind().Kind, m.GetNamespace(), m.GetName())
		if prev, ok := names[key]; ok {
			t.Errorf("%s: %s also defined in %s", d, key, prev)
		}
		names[key] = d.String()
	}
	for _, want := range []string{"backup-cronjob.yaml", "etcd-statefulset.yaml", "rbac.yaml"} {
		if !files[want] {
			t.Errorf("manifests/%s is missing", want)
		}
	}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

func TestStrictDecodingCatchesTypos(t *testing.T) {
	data, err := os.ReadFile("backup-cronjob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raws, err := splitDocuments(data)
	if err != nil {
		t.Fatal(err)
	}
	var cronJob []byte
	for _, raw := range raws {
		if bytes.Contains(raw, []byte("kind: CronJob")) {
			cronJob = raw
		}
	}
	if cronJob == nil {
		t.Fatal("no CronJob in backup-cronjob.yaml")
	}
	for _, tc := range []struct{ name, from, to string }{
		{"misspelt field", "hostNetwork: true", "hostNetwrok: true"},
		{"field at the wrong level", "path: /etc/kubernetes/pki/etcd\n", "path: /etc/kubernetes/pki/etcd\n              readOnly: true\n"},
		{"duplicate field", "hostNetwork: true", "hostNetwork: true\n          hostNetwork: false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(cronJob, []byte(tc.from)) {
				t.Fatalf("the CronJob has no %q to break", tc.from)
			}
			broken := bytes.Replace(cronJob, []byte(tc.from), []byte(tc.to), 1)
			if _, err := decodeStrict(broken); err == nil {
				t.Errorf("decoding a CronJob with %q succeeded; strict checking is not working", tc.to)
			} else {
				t.Logf("rejected as it should be: %v", err)
			}
		})
	}
}

// mountFor returns the volume mount of c that holds path p and its volume
// (empty for a volume claim template).
func mountFor(spec corev1.PodSpec, c corev1.Container, p string) (corev1.VolumeMount, corev1.Volume, bool) {
	best := -1
	for i, m := range c.VolumeMounts {
		mp := strings.TrimSuffix(m.MountPath, "/")
		if (p == mp || strings.HasPrefix(p, mp+"/")) && (best < 0 || len(mp) > len(c.VolumeMounts[best].MountPath)) {
			best = i
		}
	}
	if best < 0 {
		return corev1.VolumeMount{}, corev1.Volume{}, false
	}
	m := c.VolumeMounts[best]
	for _, v := range spec.Volumes {
		if v.Name == m.Name {
			return m, v, true
		}
	}
	return m, corev1.Volume{}, true
}

// backupCronJob reads the CronJob of file, the ServiceAccount beside it
// and the pod spec of its jobs.
func backupCronJob(t *testing.T, file string) (*batchv1.CronJob, *corev1.ServiceAccount, corev1.PodSpec) {
	t.Helper()
	docs := loadAll(t)
	cj := only[*batchv1.CronJob](t, docs, file)
	return cj, only[*corev1.ServiceAccount](t, docs, file), cj.Spec.JobTemplate.Spec.Template.Spec
}

func TestBackupCronJob(t *testing.T) {
	cj, sa, pod := backupCronJob(t, "backup-cronjob.yaml")

	if cj.Namespace != "kube-system" {
		t.Errorf("CronJob namespace %q, want kube-system", cj.Namespace)
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q, want Forbid: two saves would compete", cj.Spec.ConcurrencyPolicy)
	}
	if cj.Spec.SuccessfulJobsHistoryLimit == nil || cj.Spec.FailedJobsHistoryLimit == nil {
		t.Error("history limits are not set")
	}
	t.Log("the job runs on the host network of a control-plane node, tolerating its taint")
	if !pod.HostNetwork {
		t.Error("hostNetwork is off: the manifest's endpoints are on the node's addresses")
	}
	if _, ok := pod.NodeSelector["node-role.kubernetes.io/control-plane"]; !ok {
		t.Error("no nodeSelector for node-role.kubernetes.io/control-plane")
	}
	// kubeadm taints control-plane nodes node-role.kubernetes.io/control-plane:NoSchedule.
	tolerates := func(tol corev1.Toleration) bool {
		return tol.Key == "node-role.kubernetes.io/control-plane" &&
			(tol.Operator == corev1.TolerationOpExists || tol.Value == "") &&
			(tol.Effect == "" || tol.Effect == corev1.TaintEffectNoSchedule)
	}
	if !slices.ContainsFunc(pod.Tolerations, tolerates) {
		t.Error("no toleration for the control-plane taint node-role.kubernetes.io/control-plane:NoSchedule")
	}
	if pod.ServiceAccountName != sa.Name || sa.Namespace != cj.Namespace {
		t.Errorf("serviceAccountName %q, want the file's own ServiceAccount %s/%s", pod.ServiceAccountName, sa.Namespace, sa.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it does not need")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") ||
		(sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("container securityContext %+v: want no privilege escalation, a read-only root, all capabilities dropped", sc)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("no memory request and limit")
	}
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.HostPath != nil && v.HostPath.Path != "/var/backups/etcd" && !m.ReadOnly {
				t.Errorf("host path %s is mounted writable at %s", v.HostPath.Path, m.MountPath)
			}
		}
	}

	t.Log("the command line parses with the real kubectl-etcd command tree")
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 || path.Base(argv[0]) != "kubectl-etcd" {
		t.Fatalf("command %q does not run kubectl-etcd", argv)
	}
	root := cmd.NewRootCommand(genericiooptions.NewTestIOStreamsDiscard())
	sub, rest, err := root.Find(argv[1:])
	if err != nil {
		t.Fatalf("finding the command of %q: %v", argv, err)
	}
	if sub.Name() != "save" || !sub.HasParent() || sub.Parent().Name() != "snapshot" || sub.Parent().Parent() != root {
		t.Fatalf("%q runs %q, want snapshot save", argv, sub.CommandPath())
	}
	if err := sub.ParseFlags(rest); err != nil {
		t.Fatalf("the CronJob's flags %q: %v", rest, err)
	}
	if err := sub.ValidateArgs(sub.Flags().Args()); err != nil {
		t.Fatalf("the CronJob's arguments %q: %v", sub.Flags().Args(), err)
	}
	if !sub.Flags().Changed("retain") {
		t.Error("no --retain: backups would fill the node's disk")
	} else if n, _ := sub.Flags().GetInt("retain"); n < 1 {
		t.Errorf("--retain %d keeps everything", n)
	}
	if v, _ := sub.Flags().GetString("verify"); v != "full" {
		t.Errorf("--verify %s: a scheduled backup should check every page of the database it keeps", v)
	}
	dest := sub.Flags().Args()[0]
	if !strings.HasSuffix(dest, "/") {
		t.Errorf("destination %q does not end in /: --retain needs a directory", dest)
	}
	m, v, ok := mountFor(pod, c, strings.TrimSuffix(dest, "/"))
	switch {
	case !ok || v.HostPath == nil:
		t.Errorf("destination %s is not on a hostPath volume", dest)
	case m.ReadOnly:
		t.Errorf("destination %s is mounted read-only", dest)
	case v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate:
		t.Errorf("backup host path %s should be DirectoryOrCreate", v.HostPath.Path)
	}

	t.Log("the files the default connection reads are mounted read-only at their host paths")
	for _, f := range []string{"endpoints", "cacert", "cert", "key"} {
		if sub.Flags().Changed(f) {
			t.Errorf("--%s is set: the job is meant to follow the node's static pod manifest", f)
		}
	}
	manifest := sub.Flags().Lookup("etcd-manifest")
	pki := sub.Flags().Lookup("pki-dir")
	if manifest == nil || pki == nil {
		t.Fatal("the command has no --etcd-manifest or --pki-dir flag")
	}
	for _, p := range []string{
		manifest.Value.String(),
		path.Join(pki.Value.String(), "etcd", "ca.crt"),
		path.Join(pki.Value.String(), "etcd", "healthcheck-client.crt"),
		path.Join(pki.Value.String(), "etcd", "healthcheck-client.key"),
	} {
		m, v, ok := mountFor(pod, c, p)
		switch {
		case !ok || v.HostPath == nil:
			t.Errorf("%s is not on a hostPath volume", p)
		case !m.ReadOnly:
			t.Errorf("%s is mounted writable", p)
		case strings.TrimSuffix(v.HostPath.Path, "/") != strings.TrimSuffix(m.MountPath, "/"):
			t.Errorf("%s: host path %s is mounted at %s; the manifest's paths would not match", p, v.HostPath.Path, m.MountPath)
		}
	}

	t.Log("the image's entrypoint is the binary the CronJob runs")
	df := readDockerfile(t)
	if !slices.Contains(df.finalCopies, argv[0]) {
		t.Errorf("the CronJob runs %s, but the image puts kubectl-etcd at %q", argv[0], df.finalCopies)
	}
}

// expand expands $(VAR) as the kubelet does for the variables a container defines.
func expand(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

func TestEtcdStatefulSet(t *testing.T) {
	const file = "etcd-statefulset.yaml"
	const ns = "apps"
	docs := loadAll(t)
	sts := only[*appsv1.StatefulSet](t, docs, file)
	pdb := only[*policyv1.PodDisruptionBudget](t, docs, file)
	var headless, client *corev1.Service
	for _, d := range docs {
		if s, ok := d.obj.(*corev1.Service); ok && d.file == file {
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				headless = s
			} else {
				client = s
			}
		}
	}
	if headless == nil || client == nil {
		t.Fatal("want a headless and a client Service")
	}
	podLabels := labels.Set(sts.Spec.Template.Labels)

	t.Log("three replicas behind a headless service that publishes members before they are ready")
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Fatalf("replicas %v, want 3", sts.Spec.Replicas)
	}
	if sts.Spec.ServiceName != headless.Name {
		t.Errorf("serviceName %q, want the headless service %q", sts.Spec.ServiceName, headless.Name)
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Error("the headless service hides members that are not ready: the cluster could never form")
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q, want Parallel", sts.Spec.PodManagementPolicy)
	}
	selector, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil || !selector.Matches(podLabels) {
		t.Errorf("the StatefulSet's selector %v does not match its pods %v", sts.Spec.Selector, podLabels)
	}
	for _, s := range []*corev1.Service{headless, client} {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("service %s selects %v, not the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
	}
	pdbSelector, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || pdbSelector.Empty() || !pdbSelector.Matches(podLabels) {
		t.Errorf("the PodDisruptionBudget selects %v, not the pods %v", pdb.Spec.Selector, podLabels)
	}
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}

	pod := sts.Spec.Template.Spec
	anti := pod.Affinity
	if anti == nil || anti.PodAntiAffinity == nil || len(anti.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)+len(anti.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Error("no pod anti-affinity: members may share a node")
	} else {
		terms := anti.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		for _, w := range anti.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
		for _, term := range terms {
			s, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
			if term.TopologyKey != "kubernetes.io/hostname" || err != nil || !s.Matches(podLabels) {
				t.Errorf("anti-affinity term %+v does not spread the pods across nodes", term)
			}
		}
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volume claim templates, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.HasPrefix(c.Image, "registry.k8s.io/etcd:3.6.") && !strings.HasPrefix(c.Image, "quay.io/coreos/etcd:v3.6.") {
		t.Errorf("image %s, want etcd 3.6", c.Image)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Error("no cpu and memory requests")
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}

	t.Log("each member's command line is valid for etcd, expanded as the kubelet would")
	fieldVars := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fieldVars[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	peers := map[string]string{}
	var perPod []map[string]string
	for i := range int(*sts.Spec.Replicas) {
		name := fmt.Sprintf("%s-%d", sts.Name, i)
		vars := map[string]string{}
		for v, field := range fieldVars {
			switch field {
			case "metadata.name":
				vars[v] = name
			case "metadata.namespace":
				vars[v] = ns
			}
		}
		flags := parseEtcdFlags(t, c, vars)
		perPod = append(perPod, flags)
		if flags["name"] != name {
			t.Errorf("pod %s: --name=%s", name, flags["name"])
		}
		peers[name] = flags["initial-advertise-peer-urls"]
	}
	flags := perPod[0]

	cluster := map[string]string{}
	for _, member := range strings.Split(flags["initial-cluster"], ",") {
		n, u, _ := strings.Cut(member, "=")
		cluster[n] = u
	}
	if len(cluster) != 3 {
		t.Errorf("--initial-cluster names %d members, want 3: %s", len(cluster), flags["initial-cluster"])
	}
	for i := range 3 {
		name := fmt.Sprintf("%s-%d", sts.Name, i)
		u, err := url.Parse(cluster[name])
		want := fmt.Sprintf("%s.%s.%s.svc", name, headless.Name, ns)
		if err != nil || u.Scheme != "https" || u.Hostname() != want || u.Port() != fmt.Sprint(servicePort(headless, "peer")) {
			t.Errorf("--initial-cluster has %s=%q, want https://%s:%d", name, cluster[name], want, servicePort(headless, "peer"))
		}
		if peers[name] != cluster[name] {
			t.Errorf("pod %s advertises %s but --initial-cluster says %s", name, peers[name], cluster[name])
		}
	}
	for _, f := range []string{"listen-client-urls", "listen-peer-urls", "advertise-client-urls", "initial-advertise-peer-urls"} {
		for _, u := range strings.Split(flags[f], ",") {
			if !strings.HasPrefix(u, "https://") {
				t.Errorf("--%s=%s is not TLS", f, flags[f])
			}
		}
	}
	if servicePort(headless, "client") != 2379 || servicePort(client, "client") != 2379 || servicePort(headless, "peer") != 2380 {
		t.Error("services do not expose client 2379 and peer 2380")
	}

	t.Log("TLS flags name files mounted from the Secret")
	for _, f := range []string{"client-cert-auth", "peer-client-cert-auth"} {
		if flags[f] != "true" {
			t.Errorf("--%s is not true", f)
		}
	}
	for _, f := range []string{"trusted-ca-file", "cert-file", "key-file", "peer-trusted-ca-file", "peer-cert-file", "peer-key-file"} {
		p := flags[f]
		m, v, ok := mountFor(pod, c, p)
		if p == "" || !ok || v.Secret == nil || !m.ReadOnly {
			t.Errorf("--%s=%q is not in a read-only Secret volume", f, p)
			continue
		}
		key, _ := filepath.Rel(m.MountPath, p)
		if len(v.Secret.Items) > 0 {
			if !slices.ContainsFunc(v.Secret.Items, func(it corev1.KeyToPath) bool { return it.Path == key }) {
				t.Errorf("--%s=%s: the Secret volume has no item at %s", f, p, key)
			}
		} else if !slices.Contains([]string{"ca.crt", "tls.crt", "tls.key"}, key) {
			t.Errorf("--%s=%s: %s is not a key of a kubernetes.io/tls Secret", f, p, key)
		}
	}
	if p := flags["data-dir"]; p == "" {
		t.Error("no --data-dir")
	} else if m, _, ok := mountFor(pod, c, p); !ok || m.Name != sts.Spec.VolumeClaimTemplates[0].Name {
		t.Errorf("--data-dir=%s is not on the claim %s", p, sts.Spec.VolumeClaimTemplates[0].Name)
	}

	t.Log("probes use /livez and /readyz on the plain-http metrics listener")
	metrics, err := url.Parse(flags["listen-metrics-urls"])
	if err != nil || metrics.Scheme != "http" || metrics.Port() != "2381" {
		t.Fatalf("--listen-metrics-urls=%q, want http on 2381", flags["listen-metrics-urls"])
	}
	if h := metrics.Hostname(); h == "127.0.0.1" || h == "localhost" {
		t.Errorf("--listen-metrics-urls=%s: the kubelet probes the pod IP, not loopback", metrics)
	}
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"liveness": "/livez", "readiness": "/readyz"}[name]
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no %s HTTP probe", name)
			continue
		}
		port := probe.HTTPGet.Port.IntVal
		if probe.HTTPGet.Port.Type == intstr.String {
			port = ports[probe.HTTPGet.Port.StrVal]
		}
		if probe.HTTPGet.Path != want || port != 2381 || (probe.HTTPGet.Scheme != "" && probe.HTTPGet.Scheme != corev1.URISchemeHTTP) {
			t.Errorf("%s probe %+v, want http %s on 2381", name, probe.HTTPGet, want)
		}
	}
}

func servicePort(s *corev1.Service, name string) int32 {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return p.Port
		}
	}
	return 0
}

// parseEtcdFlags expands the container's command line for one pod and
// parses it with etcd's own flag set, so an unknown flag or a bad URL fails.
func parseEtcdFlags(t *testing.T, c corev1.Container, vars map[string]string) map[string]string {
	t.Helper()
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 || path.Base(argv[0]) != "etcd" {
		t.Fatalf("command %q does not run etcd", argv)
	}
	var args []string
	for _, a := range argv[1:] {
		e := expand(a, vars)
		if strings.Contains(e, "$(") {
			t.Errorf("%q refers to a variable the container does not define", a)
		}
		args = append(args, e)
	}
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	embed.NewConfig().AddFlags(fs)
	// etcdmain adds this one to embed's flags.
	fs.Func("initial-cluster-state", "new or existing", func(v string) error {
		if v != "new" && v != "existing" {
			return fmt.Errorf("%q is not new or existing", v)
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		t.Fatalf("etcd rejects the command line %q: %v", args, err)
	}
	if fs.NArg() > 0 {
		t.Errorf("etcd takes no arguments, got %q", fs.Args())
	}
	flags := map[string]string{}
	fs.Visit(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })
	// Unique URL flags print sorted; keep what was written.
	for _, a := range args {
		if k, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); ok {
			flags[k] = v
		}
	}
	return flags
}

func TestRBAC(t *testing.T) {
	const file = "rbac.yaml"
	docs := loadAll(t)
	rules := map[string][]string{}
	roles := map[string]*rbacv1.Role{}
	for _, d := range docs {
		if r, ok := d.obj.(*rbacv1.Role); ok && d.file == file {
			roles[r.Name] = r
		}
	}
	role, certRole := roles["kubectl-etcd"], roles["kubectl-etcd-client-cert"]
	if role == nil || certRole == nil || len(roles) != 2 {
		t.Fatalf("%s: Roles %v, want kubectl-etcd and kubectl-etcd-client-cert", file, slices.Collect(maps.Keys(roles)))
	}
	// --cert-secret reads one secret; nothing else in the namespace.
	if len(certRole.Rules) != 1 || !slices.Equal(certRole.Rules[0].Resources, []string{"secrets"}) ||
		!slices.Equal(certRole.Rules[0].Verbs, []string{"get"}) || len(certRole.Rules[0].ResourceNames) != 1 {
		t.Errorf("Role %s rules %+v: want get on one named secret only", certRole.Name, certRole.Rules)
	}
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			rules[res] = append(rules[res], r.Verbs...)
		}
	}
	for res, verbs := range map[string][]string{
		"pods":             {"get", "list"},
		"pods/portforward": {"create"},
		"pods/exec":        {"create"},
	} {
		for _, v := range verbs {
			if !slices.Contains(rules[res], v) {
				t.Errorf("Role %s cannot %s %s", role.Name, v, res)
			}
		}
	}
	if role.Namespace != "kube-system" {
		t.Errorf("Role namespace %q, want kube-system where the etcd pods run", role.Namespace)
	}
	bound := map[string]bool{}
	for _, d := range docs {
		switch b := d.obj.(type) {
		case *rbacv1.RoleBinding:
			bound[b.RoleRef.Kind+"/"+b.RoleRef.Name] = true
		case *rbacv1.ClusterRoleBinding:
			bound[b.RoleRef.Kind+"/"+b.RoleRef.Name] = true
		}
	}
	var all []string
	for _, d := range docs {
		switch r := d.obj.(type) {
		case *rbacv1.Role:
			all = append(all, "Role/"+r.Name)
		case *rbacv1.ClusterRole:
			all = append(all, "ClusterRole/"+r.Name)
		}
	}
	sort.Strings(all)
	for _, r := range all {
		if !bound[r] {
			t.Errorf("%s is bound by nothing", r)
		}
	}
}

// dockerfile is what the tests need to know of the Dockerfile.
type dockerfile struct {
	stages      []string // base image of each stage
	builds      []string // RUN lines of the build stages that run go build
	finalRuns   int
	finalCopies []string // destinations of COPY in the final stage
	entrypoint  string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	var df dockerfile
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			df.stages = append(df.stages, strings.Fields(rest)[0])
			df.finalRuns, df.finalCopies, df.entrypoint = 0, nil, ""
		case "RUN":
			if strings.Contains(rest, "go build") {
				df.builds = append(df.builds, rest)
			}
			df.finalRuns++
		case "COPY":
			f := strings.Fields(rest)
			df.finalCopies = append(df.finalCopies, f[len(f)-1])
		case "ENTRYPOINT":
			df.entrypoint = rest
		}
	}
	return df
}

func TestDockerfile(t *testing.T) {
	df := readDockerfile(t)
	if len(df.stages) < 2 {
		t.Fatalf("stages %q: want a build stage and a final stage", df.stages)
	}
	if !strings.HasPrefix(df.stages[0], "golang:1.26") {
		t.Errorf("build stage FROM %s, want golang:1.26", df.stages[0])
	}
	ok := slices.ContainsFunc(df.builds, func(run string) bool {
		return strings.Contains(run, "./cmd/kubectl-etcd") && strings.Contains(run, "-trimpath") && strings.Contains(run, "CGO_ENABLED=0")
	})
	if !ok {
		t.Errorf("no RUN builds ./cmd/kubectl-etcd with CGO_ENABLED=0 and -trimpath: %q", df.builds)
	}
	final := df.stages[len(df.stages)-1]
	if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want distroless static or scratch", final)
	}
	if df.finalRuns != 0 {
		t.Errorf("the final stage has %d RUN instructions; it has no shell to run them", df.finalRuns)
	}
	if !strings.Contains(df.entrypoint, "kubectl-etcd") {
		t.Errorf("ENTRYPOINT %s does not run kubectl-etcd", df.entrypoint)
	}
	for _, dst := range df.finalCopies {
		if !strings.Contains(df.entrypoint, dst) && path.Base(dst) == "kubectl-etcd" {
			t.Errorf("the binary is copied to %s but ENTRYPOINT is %s", dst, df.entrypoint)
		}
	}
}

// TestBackupCronJobObjectStore checks the object-store form of the backup
// CronJob: it streams to an s3:// location with retention, encrypts to the
// recipients file it mounts, reads the store's credentials from a Secret
// (the AWS SDK's variables), and keeps the directory form's node access.
func TestBackupCronJobObjectStore(t *testing.T) {
	cj, sa, pod := backupCronJob(t, "backup-cronjob-s3.yaml")
	if cj.Namespace != "kube-system" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("CronJob %s/%s concurrency %q: want kube-system and Forbid", cj.Namespace, cj.Name, cj.Spec.ConcurrencyPolicy)
	}
	if !pod.HostNetwork || pod.ServiceAccountName != sa.Name || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod: hostNetwork %v, service account %q (file's %q), token automount %v", pod.HostNetwork, pod.ServiceAccountName, sa.Name, pod.AutomountServiceAccountToken)
	}
	c := pod.Containers[0]
	argv := append(slices.Clone(c.Command), c.Args...)
	root := cmd.NewRootCommand(genericiooptions.NewTestIOStreamsDiscard())
	sub, rest, err := root.Find(argv[1:])
	if err != nil || sub.Name() != "save" || sub.Parent().Name() != "snapshot" {
		t.Fatalf("%q does not run snapshot save: %v", argv, err)
	}
	if err := sub.ParseFlags(rest); err != nil {
		t.Fatalf("the CronJob's flags %q: %v", rest, err)
	}
	args := sub.Flags().Args()
	if len(args) != 1 || !strings.HasPrefix(args[0], "s3://") || !strings.HasSuffix(args[0], "/") {
		t.Fatalf("destination %q, want one s3://BUCKET/PREFIX/", args)
	}
	if n, _ := sub.Flags().GetInt("retain"); n < 1 {
		t.Errorf("--retain %d: the bucket would grow without end", n)
	}
	recipients, _ := sub.Flags().GetStringArray("encrypt-to")
	if len(recipients) != 1 {
		t.Fatalf("--encrypt-to %q, want the mounted recipients file", recipients)
	}
	m, v, ok := mountFor(pod, c, recipients[0])
	if !ok || v.ConfigMap == nil || !m.ReadOnly || (v.ConfigMap.Optional != nil && *v.ConfigMap.Optional) {
		t.Errorf("recipients file %s: mount %+v volume %+v; want a required ConfigMap mounted read-only", recipients[0], m, v)
	}
	fromSecret := false
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil && (e.SecretRef.Optional == nil || !*e.SecretRef.Optional) {
			fromSecret = true
		}
	}
	if !fromSecret {
		t.Error("the store's credentials do not come from a required Secret (envFrom secretRef)")
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "AWS_SECRET") && e.Value != "" {
			t.Errorf("a secret in plain env: %s", e.Name)
		}
	}
	for _, p := range []string{"/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/pki/etcd/healthcheck-client.key"} {
		if m, v, ok := mountFor(pod, c, p); !ok || v.HostPath == nil || !m.ReadOnly {
			t.Errorf("%s is not on a read-only hostPath volume", p)
		}
	}
}
