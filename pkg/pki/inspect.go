package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	certutil "k8s.io/client-go/util/cert"
)

// CACertName is kubeadm's name for the etcd CA.
const CACertName = "etcd-ca"

// NamedCert is one etcd certificate of a control-plane node: the name
// `kubeadm certs` gives it and its file under the PKI directory.
type NamedCert struct {
	// Name is kubeadm's name for it: etcd-server, etcd-peer, ...
	Name string
	// BaseName is its file name without extension under the PKI directory.
	BaseName string
}

// EtcdCerts lists the etcd certificates in kubeadm's order, CA first.
var EtcdCerts = []NamedCert{
	{Name: CACertName, BaseName: CABaseName},
	{Name: "etcd-server", BaseName: ServerBaseName},
	{Name: "etcd-peer", BaseName: PeerBaseName},
	{Name: "etcd-healthcheck-client", BaseName: HealthcheckClientBaseName},
	{Name: "apiserver-etcd-client", BaseName: APIServerClientBaseName},
}

// CertInfo describes one certificate as check-expiration shows it.
type CertInfo struct {
	Name      string        `json:"name"`
	Path      string        `json:"path"`
	Subject   string        `json:"subject,omitempty"`
	SANs      []string      `json:"sans,omitempty"`
	NotAfter  time.Time     `json:"notAfter,omitzero"`
	Residual  time.Duration `json:"residual"`
	CA        string        `json:"ca,omitempty"`
	IsCA      bool          `json:"isCA"`
	Missing   bool          `json:"missing,omitempty"`
	Error     string        `json:"error,omitempty"`
	NotBefore time.Time     `json:"notBefore,omitzero"`
}

// CheckExpiration describes every etcd certificate under pkiDir, missing
// ones included, in kubeadm's order.
func CheckExpiration(pkiDir string, now time.Time) []CertInfo {
	var out []CertInfo
	for _, c := range EtcdCerts {
		certFile, _ := Paths(pkiDir, c.BaseName)
		info := CertInfo{Name: c.Name, Path: certFile}
		certs, err := certutil.CertsFromFile(certFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
			info.Missing = true
		case err != nil:
			info.Error = err.Error()
		default:
			info.Describe(certs[0], now)
			if c.Name != CACertName {
				info.CA = CACertName
			}
		}
		out = append(out, info)
	}
	return out
}

// Describe fills in what cert says: subject, SANs, validity and the time
// left at now.
func (c *CertInfo) Describe(cert *x509.Certificate, now time.Time) {
	c.Subject = cert.Subject.String()
	c.SANs = SANs(cert)
	c.NotBefore = cert.NotBefore.UTC()
	c.NotAfter = cert.NotAfter.UTC()
	c.Residual = cert.NotAfter.Sub(now)
	c.IsCA = cert.IsCA
}

// SANs lists the DNS names and IP addresses a certificate is valid for.
func SANs(cert *x509.Certificate) []string {
	var out []string
	out = append(out, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// ResidualString prints the time left as kubeadm does, "<invalid>" once
// expired.
func (c CertInfo) ResidualString() string {
	if c.Missing || c.NotAfter.IsZero() {
		return "<none>"
	}
	if c.Residual <= 0 {
		return "<invalid>"
	}
	return duration.ShortHumanDuration(c.Residual)
}
