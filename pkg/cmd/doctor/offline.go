package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/bundle"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor/offline"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// DefaultDataDir is kubeadm's etcd data directory on a node.
const DefaultDataDir = "/var/lib/etcd"

// offlineFacts reads the data directory and this node's manifest.
func (o *Options) offlineFacts() *offline.Facts {
	f := &offline.Facts{}
	dataDir := o.DataDir
	path := o.Connect.EtcdManifest
	if f.ParkedManifest = doctor.FindParkedManifest(path); f.ParkedManifest != nil {
		// The manifest the node runs once it is back.
		path = f.ParkedManifest.Parked
	}
	m, err := staticpod.Read(path)
	switch {
	case err == nil:
		f.Manifest = offline.ManifestFacts(m)
		if dataDir == "" {
			if d, derr := m.HostDataDir(); derr == nil {
				dataDir = d
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		f.ManifestError = fmt.Sprintf("no etcd manifest at %s: the quota, image and feature gates were not checked", o.Connect.EtcdManifest)
	default:
		f.ManifestError = err.Error()
	}
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	f.Inspection = datadir.Inspect(dataDir)
	f.Leftovers = datadir.Leftovers(dataDir)
	return f
}

// runOffline is doctor --offline: the report from the files alone.
func (o *Options) runOffline(ctx context.Context) error {
	facts := o.offlineFacts()
	report := offline.Diagnose(facts)
	if o.Bundle != "" {
		if err := o.writeBundle(ctx, facts, report, nil); err != nil {
			return err
		}
	}
	return o.print(report)
}

func (o *Options) print(report *doctor.Report) error {
	printer := o.Print.Printer()
	if err := printer.PrintTable(o.Out, report, func(bool) ([]string, [][]string) {
		return doctor.Headers, report.Rows()
	}); err != nil {
		return err
	}
	if report.Errors > 0 {
		return unhealthy(report)
	}
	if printer.Human() {
		fmt.Fprintln(o.ErrOut, counts(report))
	}
	return nil
}

// writeBundle writes the support bundle: both reports (the one not asked
// for is made here: the online one with what the cluster answers within
// the command timeout, the offline one from the files), the manifests,
// members, metrics and the key listing. online is the online facts when
// the caller gathered them already.
func (o *Options) writeBundle(ctx context.Context, offFacts *offline.Facts, offReport *doctor.Report, online *doctor.Facts) error {
	b := &bundle.Bundle{Now: o.Now()}
	if offFacts == nil {
		offFacts = o.offlineFacts()
		offReport = offline.Diagnose(offFacts)
	}
	add := func(name string, v any) error { return b.AddJSON(name, v) }
	if err := add("offline/report.json", offReport); err != nil {
		return err
	}
	var table bytes.Buffer
	_ = output.WriteTable(&table, doctor.Headers, offReport.Rows(), false)
	b.Add("offline/report.txt", table.Bytes())
	if err := add("offline/datadir.json", offFacts.Inspection); err != nil {
		return err
	}

	var keysSrc source.Source
	keysFrom := ""
	if db := offFacts.Inspection.DB; db != nil && db.OpenError == "" {
		if snap, err := source.ReadSnapshot(db.Path, 0); err == nil {
			keysSrc, keysFrom = &source.SnapshotSource{Snapshot: snap}, db.Path
		}
	}

	var onlineErr error
	if online == nil {
		cfg, cli, err := o.Client()
		if err != nil {
			onlineErr = err
		} else {
			defer cli.Close()
			gctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.CommandTimeout)
			defer cancel()
			online = doctor.Gather(gctx, cfg, cli, doctor.GatherOptions{PKIDir: o.Connect.PKIDir, ManifestPath: o.Connect.EtcdManifest, Now: o.Now(),
				WALFsyncP99: o.WALFsyncP99, BackendCommitP99: o.BackendCommitP99})
			if keysSrc == nil && online.ListError == "" {
				keysSrc, keysFrom = &source.Etcd{Client: cli, RequestContext: cfg.WithCommandTimeout, ChunkTimeout: cfg.CommandTimeout}, strings.Join(cfg.Endpoints, ",")
			}
		}
	}
	if online != nil {
		if err := add("online/report.json", doctor.Diagnose(online)); err != nil {
			return err
		}
		if err := add("online/members.json", online.Members); err != nil {
			return err
		}
		if err := add("online/health.json", online.Health); err != nil {
			return err
		}
		if err := add("online/metrics.json", online.Metrics); err != nil {
			return err
		}
	} else {
		b.Add("online/error.txt", []byte(onlineErr.Error()+"\n"))
	}
	members := struct {
		Raft    []datadir.Member `json:"raft"`
		Backend []datadir.Member `json:"backend"`
	}{offFacts.Inspection.WALMembers, nil}
	if offFacts.Inspection.DB != nil {
		members.Backend = offFacts.Inspection.DB.Members
	}
	if err := add("offline/members.json", members); err != nil {
		return err
	}
	o.addManifests(b)

	if keysSrc != nil {
		rs, err := bundle.KeySizes(ctx, keysSrc, o.StoragePrefix, 0)
		if err != nil {
			b.Add("keys/error.txt", []byte(fmt.Sprintf("listing keys from %s: %v\n", keysFrom, err)))
		} else {
			if err := add("keys/keys.json", rs); err != nil {
				return err
			}
			b.Add("keys/keys.txt", bundle.KeySizesText(rs))
		}
	} else {
		b.Add("keys/error.txt", []byte("no key listing: the database could not be read and the cluster did not answer\n"))
	}
	if err := b.WriteFile(o.Bundle); err != nil {
		return err
	}
	fmt.Fprintf(o.ErrOut, "support bundle written to %s (%d files; key names and sizes only, no values)\n", o.Bundle, len(b.Names()))
	return nil
}

// addManifests puts the static pod manifests of the etcd manifest's
// directory in the bundle.
func (o *Options) addManifests(b *bundle.Bundle) {
	dir := filepath.Dir(o.Connect.EtcdManifest)
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Add("manifests/error.txt", []byte(err.Error()+"\n"))
		return
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			b.Add("manifests/"+e.Name(), data)
		}
	}
}
