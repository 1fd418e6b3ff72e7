package maintenance_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
)

// addLearner adds a fourth member as a learner and starts it in process,
// with a configuration derived from member-1's and certificates from the
// cluster's CA.
func addLearner(t *testing.T, c *etcdtest.Embedded) {
	t.Helper()
	const name, ip = "member-4", "127.0.0.4"
	port, err := sandbox.FreePortPair([]string{ip}, 20000+rand.IntN(30000))
	if err != nil {
		t.Fatal(err)
	}
	clientURL, peerURL := fmt.Sprintf("https://%s:%d", ip, port), fmt.Sprintf("https://%s:%d", ip, port+1)
	ctx := context.Background()
	// etcd refuses member changes until every member has been connected
	// for a few seconds ("unhealthy cluster"): a fresh cluster must wait.
	var resp *clientv3.MemberAddResponse
	if err := poll.Until(ctx, "etcd to accept a learner", time.Second, 30*time.Second, func(ctx context.Context) (err error) {
		resp, err = c.Client().MemberAddAsLearner(ctx, []string{peerURL})
		return err
	}); err != nil {
		t.Fatalf("adding a learner: %v", err)
	}
	var initial []string
	for _, m := range resp.Members {
		n := m.Name
		if len(m.PeerURLs) > 0 && m.PeerURLs[0] == peerURL {
			n = name
		}
		initial = append(initial, n+"="+m.PeerURLs[0])
	}

	dir := filepath.Join(c.State.Dir, name)
	ca, err := pki.LoadOrCreateCA(filepath.Join(c.State.Dir, "pki"), pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{pki.ServerBaseName, pki.PeerBaseName} {
		kp, err := pki.NewLeaf(ca, pki.ServerConfig(name, net.ParseIP(ip)), pki.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.Write(filepath.Join(dir, "pki"), base); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(c.State.Members[0].ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	serverCert, serverKey := pki.Paths(filepath.Join(dir, "pki"), pki.ServerBaseName)
	peerCert, peerKey := pki.Paths(filepath.Join(dir, "pki"), pki.PeerBaseName)
	cfg["name"] = name
	cfg["data-dir"] = filepath.Join(dir, "data")
	cfg["listen-client-urls"], cfg["advertise-client-urls"] = clientURL, clientURL
	cfg["listen-peer-urls"], cfg["initial-advertise-peer-urls"] = peerURL, peerURL
	cfg["initial-cluster"] = strings.Join(initial, ",")
	cfg["initial-cluster-state"] = "existing"
	cfg["client-transport-security"].(map[string]any)["cert-file"] = serverCert
	cfg["client-transport-security"].(map[string]any)["key-file"] = serverKey
	cfg["peer-transport-security"].(map[string]any)["cert-file"] = peerCert
	cfg["peer-transport-security"].(map[string]any)["key-file"] = peerKey
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "etcd.yaml")
	if err := os.WriteFile(configFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := sandbox.StartEmbedded(configFile, filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("the learner did not become ready within 30s")
	}
}

func TestLearnersAreSkippedAndReported(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	addLearner(t, c)
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()

	d := &maintenance.Defragmenter{Config: cfg, Client: cli}
	var plan *maintenance.Plan
	// The learner needs a moment to catch up and answer Status.
	err := poll.Until(ctx, "a plan with the learner", 500*time.Millisecond, 30*time.Second, func(ctx context.Context) (err error) {
		plan, err = d.Plan(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("plan with a learner: %v", err)
	}
	var learner *maintenance.Step
	for i := range plan.Steps {
		if plan.Steps[i].Learner {
			learner = &plan.Steps[i]
		}
	}
	if learner == nil || learner.Defrag || !strings.HasPrefix(learner.Reason, "learner:") || len(plan.Targets()) != 3 {
		t.Fatalf("plan %+v: want the learner skipped with its reason and the 3 voters targeted", plan.Steps)
	}
	report, err := d.Run(ctx, plan)
	if err != nil {
		t.Fatalf("rolling defrag with a learner: %v", err)
	}
	if report.Defragmented != 3 {
		t.Errorf("%d defragmented, want the 3 voting members", report.Defragmented)
	}

	res, err := maintenance.CheckConsistency(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	skipped := 0
	for _, m := range res.Members {
		if strings.HasPrefix(m.Skipped, "learner") {
			skipped++
		}
	}
	if !res.Consistent || skipped != 1 {
		t.Errorf("consistency with a learner: %+v; want consistent with the learner skipped", res)
	}
}
