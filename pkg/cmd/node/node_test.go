package node_test

import (
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	certutil "k8s.io/client-go/util/cert"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"init", "--advertise-address", "10.0.0.1"}, "--name is required"},
		{[]string{"init", "--name", "a", "--advertise-address", "nope"}, `advertise address "nope" is not an IP address`},
		{[]string{"init", "--name", "a", "--advertise-address", "10.0.0.1", "--peer-port", "2379"}, "must differ"},
		{[]string{"join", "--name", "a", "--advertise-address", "10.0.0.1"}, "--endpoints is required"},
		{[]string{"init", "--name", "a", "--advertise-address", "10.0.0.1", "--key-algorithm", "DSA"}, `--key-algorithm "DSA" is not RSA-2048 or ECDSA-P256`},
		{[]string{"leave", "--data-dir", "/"}, "--data-dir must not be /"},
		{[]string{"certs", "renew"}, "requires at least 1 arg"},
		{[]string{"certs", "renew", "bogus", "--pki-dir", dir}, `unknown certificate "bogus"`},
		{[]string{"certs", "check-expiration", "-o", "wide"}, `unknown output format "wide"`},
		{[]string{"reset", "--manifests-dir", dir, "--data-dir", dir}, "pass --yes"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, _, err := cmdtest.Run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want one with %q", err, tt.want)
			}
		})
	}
}

// TestInitJoinCertsLeaveCommands runs the commands in process against the
// kubelet stand-in (etcdtest.Kubelet), so the unit stage checks their
// wiring without root or the kubelet build; e2e/bootstrap_test.go runs
// the same commands on real kubelets.
func TestInitJoinCertsLeaveCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real etcd binaries")
	}
	version := etcdtest.Versions(t)[0]
	root := t.TempDir()
	dir1, dir2 := filepath.Join(root, "cp-1"), filepath.Join(root, "cp-2")
	args1, url1 := cmdtest.NodeArgs(t, dir1, "cp-1", "127.0.0.11")
	args2, url2 := cmdtest.NodeArgs(t, dir2, "cp-2", "127.0.0.12")

	t.Log("kubectl etcd init on cp-1; the kubelet stand-in starts etcd from the manifest")
	conn1 := initFirst(t, version, dir1, url1, args1)

	t.Log("kubectl etcd join on cp-2 with the CA copied from cp-1")
	cmdtest.CopyCA(t, dir1, dir2)
	k2 := etcdtest.StartKubelet(t, version, filepath.Join(dir2, "manifests", "etcd.yaml"))
	out, stderr, _, err := cmdtest.Run(t, append([]string{"join", "--endpoints", url1, "--timeout", "2m"}, args2...)...)
	if err != nil {
		t.Fatalf("join: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "joined as a voting member") {
		t.Errorf("join printed %q", out)
	}

	t.Log("member list through cp-1 shows two started voters")
	out, _, _, err = cmdtest.Run(t, append(conn1, "member", "list", "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var members []cluster.Member
	if err := json.Unmarshal([]byte(out), &members); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(members) != 2 || members[1].Name != "cp-2" || members[1].Learner || !members[1].Started {
		t.Fatalf("members after join: %+v", members)
	}

	t.Log("certs check-expiration on cp-2 lists every certificate")
	out, _, _, err = cmdtest.Run(t, "certs", "check-expiration", "-o", "json", "--pki-dir", filepath.Join(dir2, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	var infos []pki.CertInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 5 || infos[1].Name != "etcd-server" || !strings.Contains(strings.Join(infos[1].SANs, ","), "127.0.0.12") {
		t.Errorf("check-expiration: %+v", infos)
	}

	t.Log("certs renew all --restart on cp-2 is refused: with two voters, one stopped loses quorum")
	oldSerial := servedSerial(t, dir2, url2)
	k2starts := k2.Starts()
	renew := []string{"certs", "renew", "all", "--restart", "--pki-dir", filepath.Join(dir2, "pki"), "--manifests-dir", filepath.Join(dir2, "manifests")}
	_, stderr, _, err = cmdtest.Run(t, renew...)
	if err == nil || !strings.Contains(err.Error(), "the cluster would stop serving: 1 of 2 voters healthy while cp-2") || !strings.Contains(stderr, "Preflight: restart member cp-2") {
		t.Errorf("restart of one of two members: %v\n%s", err, stderr)
	}
	if k2.Starts() != k2starts {
		t.Error("the refused restart restarted cp-2's etcd")
	}

	t.Log("with --force it restarts: new certificates, served after the restart, cluster healthy")
	out, stderr, _, err = cmdtest.Run(t, append(renew, "--force")...)
	if err != nil {
		t.Fatalf("renew --restart: %v\n%s", err, stderr)
	}
	if strings.Count(out, "renewed") != 4 {
		t.Errorf("renew printed %q", out)
	}
	if k2.Starts() <= k2starts {
		t.Error("renew --restart did not restart cp-2's etcd")
	}
	served := servedSerial(t, dir2, url2)
	data, err := os.ReadFile(filepath.Join(dir2, "pki", "etcd", "server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := certutil.ParseCertsPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	if served == oldSerial || served != onDisk[0].SerialNumber.String() {
		t.Errorf("served serial %s, old %s, renewed on disk %s", served, oldSerial, onDisk[0].SerialNumber)
	}
	if _, _, _, err := cmdtest.Run(t, append(conn1, "health")...); err != nil {
		t.Errorf("health after renew --restart: %v", err)
	}

	t.Log("leave on cp-2 with a --data-dir other than its manifest's is refused, and changes nothing")
	leave := []string{"leave", "--yes", "--pki-dir", filepath.Join(dir2, "pki"), "--manifests-dir", filepath.Join(dir2, "manifests")}
	other := filepath.Join(dir2, "data-other")
	_, _, code, err := cmdtest.Run(t, append(leave, "--data-dir", other)...)
	if code != 1 || err == nil || err.Error() != "--data-dir "+other+" is not the data directory "+filepath.Join(dir2, "manifests", "etcd.yaml")+" runs etcd on, "+filepath.Join(dir2, "data")+": leave --data-dir out to clear that one" {
		t.Errorf("leave with another --data-dir: exit %d, %v", code, err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "manifests", "etcd.yaml")); err != nil {
		t.Errorf("the refused leave touched the manifest: %v", err)
	}

	t.Log("kubectl etcd leave on cp-2 without --data-dir clears the manifest's, then health through cp-1 shows one member")
	out, stderr, _, err = cmdtest.Run(t, leave...)
	if err != nil {
		t.Fatalf("leave: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "removed") || !strings.Contains(out, "cleared "+filepath.Join(dir2, "data")+"\n") {
		t.Errorf("leave printed %q", out)
	}
	if entries, err := os.ReadDir(filepath.Join(dir2, "data")); err != nil || len(entries) > 0 {
		t.Errorf("leave left %d entries in the manifest's data directory (%v)", len(entries), err)
	}
	out, _, _, err = cmdtest.Run(t, append(conn1, "health")...)
	if err != nil || strings.Contains(out, "cp-2") || cmdutil.ExitCode(err) != 0 {
		t.Errorf("health after leave: %v\n%s", err, out)
	}
}

// servedSerial is the serial number of the server certificate etcd at url
// presents now.
func servedSerial(t *testing.T, dir, url string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki", "etcd", "healthcheck-client.crt"), filepath.Join(dir, "pki", "etcd", "healthcheck-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{
		Certificates:       []tls.Certificate{pair},
		InsecureSkipVerify: true, // only the serial is read
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
