// Package pki creates and loads the etcd certificates of a control plane in
// the layout kubeadm uses: a CA under etcd/ca, server and peer certificates
// named after the node, and client certificates for health checks and for
// kube-apiserver.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Common names and base file names kubeadm gives the etcd certificates.
const (
	CACommonName                = "etcd-ca"
	HealthcheckClientCommonName = "kube-etcd-healthcheck-client"
	APIServerClientCommonName   = "kube-apiserver-etcd-client"

	CABaseName                = "etcd/ca"
	ServerBaseName            = "etcd/server"
	PeerBaseName              = "etcd/peer"
	HealthcheckClientBaseName = "etcd/healthcheck-client"
	APIServerClientBaseName   = "apiserver-etcd-client"
)

// LeafValidity is how long kubeadm's leaf certificates are valid.
const LeafValidity = 365 * 24 * time.Hour

// KeyAlgorithm selects the kind of private key to generate.
type KeyAlgorithm string

const (
	// RSA2048 is kubeadm's default.
	RSA2048 KeyAlgorithm = "RSA-2048"
	// ECDSAP256 is much faster to generate, which tests and sandboxes want.
	ECDSAP256 KeyAlgorithm = "ECDSA-P256"
)

// KeyPair is a certificate with its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewKey generates a private key of the given algorithm.
func NewKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case "", RSA2048:
		return rsa.GenerateKey(cryptorand.Reader, 2048)
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q (use %s or %s)", alg, RSA2048, ECDSAP256)
	}
}

// NewCA creates a self-signed CA valid for ten years, as kubeadm does.
func NewCA(commonName string, alg KeyAlgorithm) (*KeyPair, error) {
	key, err := NewKey(alg)
	if err != nil {
		return nil, err
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: commonName}, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA %q: %w", commonName, err)
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// LeafConfig describes a certificate signed by a CA.
type LeafConfig struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usages       []x509.ExtKeyUsage
	// Validity defaults to LeafValidity.
	Validity time.Duration
	// NotBefore defaults to now.
	NotBefore time.Time
}

// ServerConfig is the etcd server or peer certificate kubeadm makes for a
// node: serverAuth and clientAuth, valid for the node name, localhost, the
// advertise address and both loopback addresses.
func ServerConfig(nodeName string, advertise net.IP) LeafConfig {
	ips := []net.IP{advertise, net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if advertise == nil || advertise.Equal(net.IPv4(127, 0, 0, 1)) {
		ips = ips[1:]
	}
	return LeafConfig{
		CommonName: nodeName,
		DNSNames:   []string{nodeName, "localhost"},
		IPs:        ips,
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

// ClientConfig is a client-only certificate such as healthcheck-client.
func ClientConfig(commonName string, organization ...string) LeafConfig {
	return LeafConfig{
		CommonName:   commonName,
		Organization: organization,
		Usages:       []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// NewLeaf creates a key and a certificate signed by ca.
func NewLeaf(ca *KeyPair, cfg LeafConfig, alg KeyAlgorithm) (*KeyPair, error) {
	key, err := NewKey(alg)
	if err != nil {
		return nil, err
	}
	return SignLeaf(ca, cfg, key)
}

// SignLeaf creates a certificate for an existing key, signed by ca. Renewing
// a certificate this way keeps its key, so nothing pinned to it breaks.
func SignLeaf(ca *KeyPair, cfg LeafConfig, key crypto.Signer) (*KeyPair, error) {
	serial, err := cryptorand.Int(cryptorand.Reader, big.NewInt(math.MaxInt64))
	if err != nil {
		return nil, err
	}
	notBefore := cfg.NotBefore
	if notBefore.IsZero() {
		// A little slack so a node whose clock lags the CA's still accepts it.
		notBefore = time.Now().Add(-5 * time.Minute)
	}
	validity := cfg.Validity
	if validity == 0 {
		validity = LeafValidity
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: cfg.CommonName, Organization: cfg.Organization},
		DNSNames:     cfg.DNSNames,
		IPAddresses:  cfg.IPs,
		NotBefore:    notBefore.UTC(),
		NotAfter:     notBefore.Add(validity).UTC(),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  cfg.Usages,
	}
	der, err := x509.CreateCertificate(cryptorand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", cfg.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// Paths returns the certificate and key file names of baseName under dir.
func Paths(dir, baseName string) (certFile, keyFile string) {
	p := filepath.Join(dir, baseName)
	return p + ".crt", p + ".key"
}

// Write stores the pair as baseName.crt (0644) and baseName.key (0600) under
// dir, creating directories as needed.
func (kp *KeyPair) Write(dir, baseName string) error {
	certFile, keyFile := Paths(dir, baseName)
	if err := os.MkdirAll(filepath.Dir(certFile), 0o755); err != nil {
		return err
	}
	certPEM, err := certutil.EncodeCertificates(kp.Cert)
	if err != nil {
		return err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(kp.Key)
	if err != nil {
		return err
	}
	if err := certutil.WriteCert(certFile, certPEM); err != nil {
		return fmt.Errorf("writing %s: %w", certFile, err)
	}
	if err := keyutil.WriteKey(keyFile, keyPEM); err != nil {
		return fmt.Errorf("writing %s: %w", keyFile, err)
	}
	return nil
}

// Load reads baseName.crt and baseName.key under dir.
func Load(dir, baseName string) (*KeyPair, error) {
	certFile, keyFile := Paths(dir, baseName)
	certs, err := certutil.CertsFromFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading certificate %s: %w", certFile, err)
	}
	key, err := keyutil.PrivateKeyFromFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading key %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %s cannot sign", keyFile)
	}
	return &KeyPair{Cert: certs[0], Key: signer}, nil
}

// LoadOrCreateCA loads the CA under dir, or creates and writes one when
// neither file exists. A CA with only one of its two files is an error:
// creating a new one would orphan every certificate the old one signed.
func LoadOrCreateCA(dir string, alg KeyAlgorithm) (*KeyPair, error) {
	certFile, keyFile := Paths(dir, CABaseName)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		return Load(dir, CABaseName)
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		ca, err := NewCA(CACommonName, alg)
		if err != nil {
			return nil, err
		}
		return ca, ca.Write(dir, CABaseName)
	default:
		return nil, fmt.Errorf("etcd CA under %s is incomplete: need both %s and %s", dir, certFile, keyFile)
	}
}
