package kubetest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
)

func TestAPIServerOnEmbeddedEtcd(t *testing.T) {
	start := time.Now()
	etcd := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	s := StartAPIServer(t, etcd.State.Endpoints(), EtcdTLSOf(etcd.State), TokenUser("nobody", "nobody-token"))
	t.Logf("kube-apiserver ready at %s in %s", s.URL, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Log("the admin creates a ConfigMap through client-go")
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
		Data:       map[string]string{"greeting": "hi"},
	}
	created, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a ConfigMap: %v", err)
	}

	t.Log("it is stored in the test etcd under /registry")
	resp, err := etcd.Client().Get(ctx, "/registry/configmaps/default/hello")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("no key /registry/configmaps/default/hello in etcd")
	}
	if got, want := resp.Kvs[0].ModRevision, created.ResourceVersion; want != strconv.FormatInt(got, 10) {
		t.Errorf("etcd mod revision %d, resourceVersion %s", got, want)
	}

	t.Log("the real kubectl reads it with the admin kubeconfig")
	out, err := s.Kubectl(ctx, "get", "configmap", "hello", "-n", "default", "-o", "jsonpath={.data.greeting}")
	if err != nil {
		t.Fatal(err)
	}
	if out != "hi" {
		t.Errorf("kubectl read greeting %q, want hi", out)
	}

	t.Log("a user with no rights is refused, by token and by client certificate")
	if _, err := s.KubectlAs(ctx, s.KubeconfigForToken("nobody"), "get", "configmap", "hello", "-n", "default"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("token user nobody read the ConfigMap: %v", err)
	}
	certUser, err := kubernetes.NewForConfig(RESTConfig(t, s.KubeconfigFor("jane")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certUser.CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("certificate user jane: %v, want forbidden", err)
	}
	t.Log("a certificate user in system:masters may")
	master, err := kubernetes.NewForConfig(RESTConfig(t, s.KubeconfigFor("root", "system:masters")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := master.CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{}); err != nil {
		t.Errorf("certificate user root in system:masters: %v", err)
	}

	t.Log("Stop ends the server")
	s.Stop()
	if _, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{}); err == nil {
		t.Error("the server still answers after Stop")
	}
}
