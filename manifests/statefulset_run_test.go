package manifests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	etcdflags "go.etcd.io/etcd/pkg/v3/flags"
	"go.etcd.io/etcd/server/v3/embed"
	"golang.org/x/net/dns/dnsmessage"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// fakeDNS answers A and PTR questions for the names a cluster's DNS would
// serve, so the members find each other by their stable pod names.
type fakeDNS struct {
	conn net.PacketConn
	a    map[string]net.IP // fully qualified name -> address
	ptr  map[string]string // reverse name -> fully qualified name
}

func startFakeDNS(t *testing.T, a map[string]net.IP, ptr map[string]string) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: conn, a: a, ptr: ptr}
	t.Cleanup(func() { conn.Close() })
	go d.serve()
	return d
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var req dnsmessage.Message
		if err := req.Unpack(buf[:n]); err != nil || len(req.Questions) != 1 {
			continue
		}
		q := req.Questions[0]
		resp := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: req.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError},
			Questions: req.Questions,
		}
		name := strings.ToLower(q.Name.String())
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
		if ip, ok := d.a[name]; ok {
			resp.RCode = dnsmessage.RCodeSuccess
			if q.Type == dnsmessage.TypeA {
				hdr.Type = dnsmessage.TypeA
				resp.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.AResource{A: [4]byte(ip.To4())}}}
			}
		}
		if target, ok := d.ptr[name]; ok && q.Type == dnsmessage.TypePTR {
			resp.RCode = dnsmessage.RCodeSuccess
			hdr.Type = dnsmessage.TypePTR
			resp.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(target)}}}
		}
		out, err := resp.Pack()
		if err == nil {
			d.conn.WriteTo(out, addr)
		}
	}
}

// TestEtcdStatefulSetForms starts the StatefulSet's three members as the
// kubelet would (each command line expanded for its pod, the Secret and
// volume mapped into the test) with a certificate made as the manifest's
// comment says, on 127.0.0.11-13 instead of 0.0.0.0 and on free ports
// instead of 2379-2381, with a fake cluster DNS (its PTR records are not
// reached: /etc/hosts answers for 127.0.0.1):
// they must form a cluster over peer TLS, pass their probes and serve
// clients through the pod and Service names.
func TestEtcdStatefulSetForms(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	const ns = "apps"
	docs := loadAll(t)
	sts := only[*appsv1.StatefulSet](t, docs, "etcd-statefulset.yaml")
	var client *corev1.Service
	for _, d := range docs {
		if s, ok := d.obj.(*corev1.Service); ok && d.file == "etcd-statefulset.yaml" && s.Spec.ClusterIP != corev1.ClusterIPNone {
			client = s
		}
	}
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]
	replicas := int(*sts.Spec.Replicas)

	t.Log("a cluster DNS: pod names and reverse records on 127.0.0.11-13, the client Service on the first")
	a := map[string]net.IP{}
	ptr := map[string]string{}
	ips := map[string]string{}
	for i := range replicas {
		name := fmt.Sprintf("%s-%d", sts.Name, i)
		ip := net.IPv4(127, 0, 0, byte(11+i))
		ips[name] = ip.String()
		fqdn := fmt.Sprintf("%s.%s.%s.svc.cluster.local.", name, sts.Spec.ServiceName, ns)
		a[fmt.Sprintf("%s.%s.%s.svc.", name, sts.Spec.ServiceName, ns)] = ip
		a[fqdn] = ip
		ptr[fmt.Sprintf("%d.0.0.127.in-addr.arpa.", 11+i)] = fqdn
	}
	a[fmt.Sprintf("%s.%s.svc.", client.Name, ns)] = net.IPv4(127, 0, 0, 11)
	// Peers dial from 127.0.0.1 whichever address they use: etcd checks
	// the client certificate of a peer against the reverse name of that.
	ptr["1.0.0.127.in-addr.arpa."] = fmt.Sprintf("%s-0.%s.%s.svc.cluster.local.", sts.Name, sts.Spec.ServiceName, ns)
	dns := startFakeDNS(t, a, ptr)
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns.conn.LocalAddr().String())
	}}
	t.Cleanup(func() { net.DefaultResolver = old })

	t.Log("the etcd-tls Secret as documented: one certificate, serverAuth and clientAuth, the SANs the manifest documents")
	secretDir := t.TempDir()
	ca, err := pki.NewCA("etcd-ca", pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.NewLeaf(ca, pki.LeafConfig{
		CommonName: "etcd",
		DNSNames: []string{
			fmt.Sprintf("*.%s.%s.svc", sts.Spec.ServiceName, ns),
			fmt.Sprintf("*.%s.%s.svc.cluster.local", sts.Spec.ServiceName, ns),
			fmt.Sprintf("%s.%s.svc", client.Name, ns),
			fmt.Sprintf("%s.%s.svc.cluster.local", client.Name, ns),
			// Peers here connect from 127.0.0.1, which /etc/hosts names
			// localhost, and etcd accepts their certificate by this name. So
			// this test does not reach the match a pod IP needs in a
			// cluster: its reverse name against a wildcard above.
			"localhost",
		},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	user, err := pki.NewLeaf(ca, pki.ClientConfig("app"), pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for base, kp := range map[string]*pki.KeyPair{"ca": ca, "tls": leaf, "user": user} {
		if err := kp.Write(secretDir, base); err != nil {
			t.Fatal(err)
		}
	}

	var secretMount, dataMount string
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				secretMount = m.MountPath
			}
		}
		if m.Name == sts.Spec.VolumeClaimTemplates[0].Name {
			dataMount = m.MountPath
		}
	}
	if secretMount == "" || dataMount == "" {
		t.Fatal("no Secret or data volume mount")
	}

	t.Log("the container ports, moved to ports free on every member's address: another test or a second run may hold the manifest's own there")
	ports := freePortsOn(t, slices.Collect(maps.Values(ips)), c.Ports)
	port := func(p int) int {
		if q, ok := ports[p]; ok {
			return q
		}
		return p
	}

	t.Logf("%d members start together, as podManagementPolicy Parallel does", replicas)
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	members := make([]*embed.Etcd, replicas)
	for i := range replicas {
		name := fmt.Sprintf("%s-%d", sts.Name, i)
		args := podArgs(t, c, name, ns)
		dataDir := t.TempDir()
		for j, arg := range args {
			arg = strings.ReplaceAll(arg, secretMount+"/", secretDir+"/")
			arg = strings.ReplaceAll(arg, "="+dataMount+"/", "="+dataDir+"/")
			arg = strings.ReplaceAll(arg, "://0.0.0.0:", "://"+ips[name]+":")
			for from, to := range ports {
				arg = strings.ReplaceAll(arg, fmt.Sprintf(":%d", from), fmt.Sprintf(":%d", to))
			}
			args[j] = arg
		}
		cfg, err := embedConfig(args)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg.LogLevel = "error"
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = fmt.Errorf("starting %s: %w", name, err)
				return
			}
			members[i] = e
			select {
			case <-e.Server.ReadyNotify():
			case err := <-e.Err():
				errs[i] = fmt.Errorf("%s: %w", name, err)
			case <-time.After(60 * time.Second):
				errs[i] = fmt.Errorf("%s is not ready after a minute", name)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		// A member that never found its peers can take long to stop: give
		// up waiting rather than hang the suite.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, e := range members {
				if e != nil {
					e.Close()
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Log("the members did not stop within 20s")
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	t.Log("each member passes the kubelet's probes on its metrics port")
	for i := range replicas {
		name := fmt.Sprintf("%s-%d", sts.Name, i)
		for _, probe := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			if probe == nil || probe.HTTPGet == nil {
				continue
			}
			probePort := probe.HTTPGet.Port.IntValue()
			for _, p := range c.Ports {
				if p.Name == probe.HTTPGet.Port.StrVal {
					probePort = int(p.ContainerPort)
				}
			}
			u := fmt.Sprintf("http://%s:%d%s", ips[name], port(probePort), probe.HTTPGet.Path)
			if err := probeOK(u); err != nil {
				t.Errorf("%s: probe %s: %v", name, u, err)
			}
		}
	}

	t.Log("a client with its own certificate writes through a pod name and reads through the Service name")
	certFile, keyFile := pki.Paths(secretDir, "user")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	for _, ep := range []string{
		fmt.Sprintf("https://%s-2.%s.%s.svc:%d", sts.Name, sts.Spec.ServiceName, ns, port(2379)),
		fmt.Sprintf("https://%s.%s.svc:%d", client.Name, ns, port(int(servicePort(client, "client")))),
	} {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: tlsConfig, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cli.Put(ctx, "/app/via", ep)
		if err == nil {
			var ml *clientv3.MemberListResponse
			ml, err = cli.MemberList(ctx)
			if err == nil && len(ml.Members) != replicas {
				err = fmt.Errorf("%d members, want %d", len(ml.Members), replicas)
			}
		}
		cancel()
		cli.Close()
		if err != nil {
			t.Errorf("through %s: %v", ep, err)
		}
	}
}

// freePortsOn maps each container port to one that is free on every
// address, so the members can all listen on it, each on its own address.
func freePortsOn(t *testing.T, addrs []string, container []corev1.ContainerPort) map[int]int {
	t.Helper()
	out := map[int]int{}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for _, cp := range container {
		for tries := 0; ; tries++ {
			if tries > 50 {
				t.Fatalf("no port free on all of %v", addrs)
			}
			first, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
			if err != nil {
				t.Fatal(err)
			}
			p := first.Addr().(*net.TCPAddr).Port
			ls := []net.Listener{first}
			for _, a := range addrs[1:] {
				if l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(p))); err == nil {
					ls = append(ls, l)
				}
			}
			if len(ls) == len(addrs) {
				// Held until all are chosen, so two container ports
				// never get the same one.
				held = append(held, ls...)
				out[int(cp.ContainerPort)] = p
				break
			}
			for _, l := range ls {
				l.Close()
			}
		}
	}
	return out
}

// podArgs returns the container's arguments expanded for one pod.
func podArgs(t *testing.T, c corev1.Container, podName, ns string) []string {
	t.Helper()
	vars := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				vars[e.Name] = podName
			case "metadata.namespace":
				vars[e.Name] = ns
			}
		}
	}
	var args []string
	for _, a := range append(slices.Clone(c.Command), c.Args...)[1:] {
		args = append(args, expand(a, vars))
	}
	return args
}

// embedConfig turns an etcd command line into the embedded server's
// configuration, as etcdmain does for the flags these manifests use.
func embedConfig(args []string) (*embed.Config, error) {
	cfg := embed.NewConfig()
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	fs.Func("initial-cluster-state", "new or existing", func(v string) error {
		cfg.ClusterState = v
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg.ListenPeerUrls = etcdflags.UniqueURLsFromFlag(fs, "listen-peer-urls")
	cfg.AdvertisePeerUrls = etcdflags.UniqueURLsFromFlag(fs, "initial-advertise-peer-urls")
	cfg.ListenClientUrls = etcdflags.UniqueURLsFromFlag(fs, "listen-client-urls")
	cfg.AdvertiseClientUrls = etcdflags.UniqueURLsFromFlag(fs, "advertise-client-urls")
	cfg.ListenMetricsUrls = etcdflags.UniqueURLsFromFlag(fs, "listen-metrics-urls")
	if err := os.MkdirAll(filepath.Dir(cfg.Dir), 0o700); err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}

func probeOK(u string) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
