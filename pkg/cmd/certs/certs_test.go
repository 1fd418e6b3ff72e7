package certs

import (
	"bytes"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

func TestExpirationTable(t *testing.T) {
	notAfter := time.Date(2027, 11, 25, 12, 0, 0, 0, time.UTC)
	infos := []pki.CertInfo{
		{Name: "etcd-ca", Subject: "CN=etcd-ca", SANs: []string{"etcd-ca"}, NotAfter: notAfter.AddDate(9, 0, 0), Residual: 9 * 366 * 24 * time.Hour, IsCA: true},
		{Name: "etcd-server", Subject: "CN=cp-1", SANs: []string{"cp-1", "localhost", "10.0.0.11"}, NotAfter: notAfter, Residual: 30 * 24 * time.Hour, CA: "etcd-ca"},
		{Name: "etcd-peer", Subject: "CN=cp-1", NotAfter: notAfter, Residual: -time.Hour, CA: "etcd-ca"},
		{Name: "apiserver-etcd-client", Missing: true, CA: "etcd-ca"},
	}
	headers, rows := ExpirationTable(infos)
	var buf bytes.Buffer
	if err := output.WriteTable(&buf, headers, rows, false); err != nil {
		t.Fatal(err)
	}
	want := `NAME                    SUBJECT      SANS                       EXPIRES                  RESIDUAL TIME   CA
etcd-ca                 CN=etcd-ca   etcd-ca                    Nov 25, 2036 12:00 UTC   9y              <self-signed>
etcd-server             CN=cp-1      cp-1,localhost,10.0.0.11   Nov 25, 2027 12:00 UTC   30d             etcd-ca
etcd-peer               CN=cp-1      <none>                     Nov 25, 2027 12:00 UTC   <invalid>       etcd-ca
apiserver-etcd-client   <missing>    <none>                     <none>                   <none>          etcd-ca
`
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestRenewValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    RenewOptions
		want string
	}{
		{"restart", RenewOptions{Restart: true, Timeout: time.Minute, LockTimeout: time.Minute}, ""},
		{"force without restart", RenewOptions{Force: true, Timeout: time.Minute}, "--force only applies with --restart"},
		{"kubelet root dir without restart", RenewOptions{kubeletRootDirSet: true, Timeout: time.Minute}, "--kubelet-root-dir only applies with --restart"},
		{"no timeout", RenewOptions{Restart: true}, "--timeout must be positive"},
		{"negative lock timeout", RenewOptions{Restart: true, Timeout: time.Minute, LockTimeout: -time.Second}, "--lock-timeout must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || err.Error() != tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestExpirationTableGolden(t *testing.T) {
	notAfter := time.Date(2027, 11, 25, 12, 0, 0, 0, time.UTC)
	headers, rows := ExpirationTable([]pki.CertInfo{
		{Name: "etcd-ca", Subject: "CN=etcd-ca", SANs: []string{"etcd-ca"}, NotAfter: notAfter.AddDate(9, 0, 0), Residual: 9 * 366 * 24 * time.Hour, IsCA: true},
		{Name: "etcd-server", Subject: "CN=cp-1", SANs: []string{"cp-1", "localhost", "10.0.0.11", "127.0.0.1", "::1"}, NotAfter: notAfter, Residual: 30 * 24 * time.Hour, CA: "etcd-ca"},
		{Name: "etcd-peer", Subject: "CN=cp-1", SANs: []string{"cp-1"}, NotAfter: notAfter, Residual: -time.Hour, CA: "etcd-ca"},
		{Name: "etcd-healthcheck-client", Error: "tls: failed to find any PEM data in certificate input", CA: "etcd-ca"},
		{Name: "apiserver-etcd-client", Missing: true, CA: "etcd-ca"},
	})
	golden.AssertTable(t, "check-expiration.golden", headers, rows)
}
