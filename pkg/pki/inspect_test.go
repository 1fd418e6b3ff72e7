package pki

import (
	"testing"
	"time"
)

func TestCheckExpirationReportsMissing(t *testing.T) {
	infos := CheckExpiration(t.TempDir(), time.Now())
	if len(infos) != len(EtcdCerts) {
		t.Fatalf("%d rows, want %d", len(infos), len(EtcdCerts))
	}
	for _, i := range infos {
		if !i.Missing || i.ResidualString() != "<none>" {
			t.Errorf("%s: missing=%v residual=%s", i.Name, i.Missing, i.ResidualString())
		}
	}
}

func TestCheckExpirationDescribesCertificates(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, err := LoadOrCreateCA(dir, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewLeaf(ca, ServerConfig("cp-1", nil), ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Write(dir, ServerBaseName); err != nil {
		t.Fatal(err)
	}
	infos := CheckExpiration(dir, now)
	if c := infos[0]; c.Name != CACertName || c.Missing || !c.IsCA || c.CA != "" || c.Subject != "CN="+CACommonName {
		t.Errorf("CA row %+v", c)
	}
	s := infos[1]
	if s.Name != "etcd-server" || s.Missing || s.IsCA || s.CA != CACertName || s.Subject != "CN=cp-1" {
		t.Errorf("server row %+v", s)
	}
	if got := s.ResidualString(); got != "364d" && got != "365d" {
		t.Errorf("server residual %s, want about a year", got)
	}
	if infos[2].Name != "etcd-peer" || !infos[2].Missing {
		t.Errorf("peer row %+v, want missing", infos[2])
	}
}
