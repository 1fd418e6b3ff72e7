package bootstrap

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// Cert is one etcd certificate of a control-plane node (pki.EtcdCerts)
// with what init creates for it.
type Cert struct {
	pki.NamedCert
	// config is what init creates for a node; nil for the CA.
	config func(n *Node) pki.LeafConfig
}

// CACertName is kubeadm's name for the etcd CA.
const CACertName = pki.CACertName

// leafConfigs are what init creates for each certificate but the CA.
var leafConfigs = map[string]func(n *Node) pki.LeafConfig{
	"etcd-server": func(n *Node) pki.LeafConfig {
		return pki.ServerConfig(n.Name, net.ParseIP(n.AdvertiseAddress))
	},
	"etcd-peer": func(n *Node) pki.LeafConfig {
		return pki.ServerConfig(n.Name, net.ParseIP(n.AdvertiseAddress))
	},
	"etcd-healthcheck-client": func(*Node) pki.LeafConfig {
		return pki.ClientConfig(pki.HealthcheckClientCommonName)
	},
	"apiserver-etcd-client": func(*Node) pki.LeafConfig {
		return pki.ClientConfig(pki.APIServerClientCommonName)
	},
}

// Certs lists the etcd certificates in kubeadm's order, CA first.
var Certs = func() []Cert {
	var out []Cert
	for _, c := range pki.EtcdCerts {
		out = append(out, Cert{NamedCert: c, config: leafConfigs[c.Name]})
	}
	return out
}()

// CertNames lists the names certs renew accepts.
func CertNames() []string {
	var names []string
	for _, c := range Certs[1:] {
		names = append(names, c.Name)
	}
	return names
}

// Certificate and key file modes: certificates are public, keys are not.
const (
	certMode os.FileMode = 0o644
	keyMode  os.FileMode = 0o600
)

func pairFiles(dir, baseName string, kp *pki.KeyPair, withKey bool) ([]File, error) {
	certFile, keyFile := pki.Paths(dir, baseName)
	certPEM, err := certutil.EncodeCertificates(kp.Cert)
	if err != nil {
		return nil, err
	}
	files := []File{{Path: certFile, Mode: certMode, Data: certPEM}}
	if withKey {
		keyPEM, err := keyutil.MarshalPrivateKeyToPEM(kp.Key)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: keyFile, Mode: keyMode, Data: keyPEM, Secret: true})
	}
	return files, nil
}

// exists reports whether the certificate and key of baseName are there;
// one without the other is an error, as replacing it would orphan the other.
func exists(dir, baseName string) (bool, error) {
	certFile, keyFile := pki.Paths(dir, baseName)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		return true, nil
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		return false, nil
	case certErr == nil:
		return false, fmt.Errorf("%s exists but its key %s does not: restore the key, or remove the certificate to have both created", certFile, keyFile)
	case keyErr == nil:
		return false, fmt.Errorf("%s exists but its certificate %s does not: restore the certificate, or remove the key to have both created", keyFile, certFile)
	default:
		return false, fmt.Errorf("checking %s: %v; %v", certFile, certErr, keyErr)
	}
}

// PKIOptions say what EnsurePKI may do.
type PKIOptions struct {
	// RequireCA refuses to create a CA: a joining node must use the CA of
	// the cluster, copied from an existing control-plane node.
	RequireCA bool
}

// EnsurePKI creates the etcd certificates the node lacks, reusing the CA
// when there is one. It never overwrites a certificate: an existing one
// that is valid for this node is kept, one that is not is an error.
func (n *Node) EnsurePKI(opts PKIOptions, now time.Time) error {
	var files []File
	ok, err := exists(n.PKIDir, pki.CABaseName)
	if err != nil {
		return err
	}
	var ca *pki.KeyPair
	if ok {
		if ca, err = pki.Load(n.PKIDir, pki.CABaseName); err != nil {
			return err
		}
		if err := checkCA(ca, now); err != nil {
			return err
		}
		n.logf("[certs] Using existing %s certificate authority", CACertName)
	} else {
		if opts.RequireCA {
			certFile, keyFile := pki.Paths(n.PKIDir, pki.CABaseName)
			return fmt.Errorf("no etcd CA at %s: copy ca.crt and ca.key from a control-plane node of the cluster to %s and %s", certFile, certFile, keyFile)
		}
		if ca, err = pki.NewCA(pki.CACommonName, n.KeyAlgorithm); err != nil {
			return err
		}
		caFiles, err := pairFiles(n.PKIDir, pki.CABaseName, ca, true)
		if err != nil {
			return err
		}
		files = append(files, caFiles...)
		n.logf("[certs] Generating %s certificate and key", CACertName)
	}
	for _, c := range Certs[1:] {
		want := c.config(n)
		ok, err := exists(n.PKIDir, c.BaseName)
		if err != nil {
			return err
		}
		if ok {
			kp, err := pki.Load(n.PKIDir, c.BaseName)
			if err != nil {
				return err
			}
			certFile, _ := pki.Paths(n.PKIDir, c.BaseName)
			if err := checkLeaf(kp, ca, want, now); err != nil {
				return fmt.Errorf("existing certificate %s cannot be used: %w; move it and its key away to have them created again", certFile, err)
			}
			n.logf("[certs] Using existing %s certificate and key", c.Name)
			continue
		}
		kp, err := pki.NewLeaf(ca, want, n.KeyAlgorithm)
		if err != nil {
			return err
		}
		leafFiles, err := pairFiles(n.PKIDir, c.BaseName, kp, true)
		if err != nil {
			return err
		}
		files = append(files, leafFiles...)
		n.logf("[certs] Generating %s certificate and key (DNS names %v, IPs %v)", c.Name, want.DNSNames, want.IPs)
	}
	return n.apply(files)
}

func checkCA(ca *pki.KeyPair, now time.Time) error {
	if !ca.Cert.IsCA {
		return fmt.Errorf("etcd CA certificate %q is not a CA", ca.Cert.Subject.CommonName)
	}
	if now.After(ca.Cert.NotAfter) {
		return fmt.Errorf("etcd CA expired on %s", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !sameKey(ca.Cert, ca.Key) {
		return errors.New("etcd CA key does not match its certificate")
	}
	return nil
}

// checkLeaf says why an existing certificate cannot serve as want: another
// CA, expired, another key, or names or usages missing.
func checkLeaf(kp *pki.KeyPair, ca *pki.KeyPair, want pki.LeafConfig, now time.Time) error {
	if !sameKey(kp.Cert, kp.Key) {
		return errors.New("its key does not match it")
	}
	if err := kp.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		return fmt.Errorf("it was not signed by the etcd CA %q", ca.Cert.Subject.CommonName)
	}
	if now.After(kp.Cert.NotAfter) {
		return fmt.Errorf("it expired on %s (kubectl etcd certs renew renews it)", kp.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if kp.Cert.Subject.CommonName != want.CommonName {
		return fmt.Errorf("its common name is %q, want %q", kp.Cert.Subject.CommonName, want.CommonName)
	}
	for _, dns := range want.DNSNames {
		if !contains(kp.Cert.DNSNames, dns) {
			return fmt.Errorf("it is not valid for DNS name %s", dns)
		}
	}
	for _, ip := range want.IPs {
		found := false
		for _, have := range kp.Cert.IPAddresses {
			found = found || have.Equal(ip)
		}
		if !found {
			return fmt.Errorf("it is not valid for IP address %s", ip)
		}
	}
	for _, u := range want.Usages {
		found := false
		for _, have := range kp.Cert.ExtKeyUsage {
			found = found || have == u
		}
		if !found {
			return fmt.Errorf("it lacks extended key usage %s", usageName(u))
		}
	}
	return nil
}

func sameKey(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	default:
		return fmt.Sprint(int(u))
	}
}

// Renew issues the named certificates again (names "all" or CertNames),
// signed by the etcd CA, with the same subject, SANs, key usages and key,
// valid for one year from now. The CA itself is never renewed.
func (n *Node) Renew(names []string, now time.Time) ([]pki.CertInfo, error) {
	selected, err := selectCerts(names)
	if err != nil {
		return nil, err
	}
	ca, err := pki.Load(n.PKIDir, pki.CABaseName)
	if err != nil {
		return nil, fmt.Errorf("renewing needs the etcd CA: %w", err)
	}
	if err := checkCA(ca, now); err != nil {
		return nil, err
	}
	var out []pki.CertInfo
	var files []File
	for _, c := range selected {
		kp, err := pki.Load(n.PKIDir, c.BaseName)
		if err != nil {
			return nil, fmt.Errorf("renewing %s: %w", c.Name, err)
		}
		if err := kp.Cert.CheckSignatureFrom(ca.Cert); err != nil {
			return nil, fmt.Errorf("renewing %s: it was not signed by the etcd CA, renewing it would change its issuer", c.Name)
		}
		old := kp.Cert
		renewed, err := pki.SignLeaf(ca, pki.LeafConfig{
			CommonName:   old.Subject.CommonName,
			Organization: old.Subject.Organization,
			DNSNames:     old.DNSNames,
			IPs:          old.IPAddresses,
			Usages:       old.ExtKeyUsage,
			NotBefore:    now.Add(-5 * time.Minute),
		}, kp.Key)
		if err != nil {
			return nil, fmt.Errorf("renewing %s: %w", c.Name, err)
		}
		f, err := pairFiles(n.PKIDir, c.BaseName, renewed, false)
		if err != nil {
			return nil, err
		}
		files = append(files, f...)
		info := pki.CertInfo{Name: c.Name, Path: f[0].Path, CA: CACertName}
		info.Describe(renewed.Cert, now)
		out = append(out, info)
		n.logf("[certs] Renewed %s: valid until %s", c.Name, renewed.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return out, n.apply(files)
}

func selectCerts(names []string) ([]Cert, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("name the certificates to renew: all, or one of %s", strings.Join(CertNames(), ", "))
	}
	want := map[string]bool{}
	for _, name := range names {
		if name == "all" {
			return Certs[1:], nil
		}
		if name == CACertName {
			return nil, fmt.Errorf("%s cannot be renewed: a new CA would invalidate every certificate of every node", CACertName)
		}
		if !contains(CertNames(), name) {
			return nil, fmt.Errorf("unknown certificate %q: use all, or one of %s", name, strings.Join(CertNames(), ", "))
		}
		want[name] = true
	}
	var out []Cert
	for _, c := range Certs[1:] {
		if want[c.Name] {
			out = append(out, c)
		}
	}
	return out, nil
}
