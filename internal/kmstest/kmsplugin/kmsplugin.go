// Package kmsplugin is a KMS plugin for tests only. No production KMS
// (Vault, a cloud KMS, an HSM) can run on the test machines, so this one
// stands in for it: it speaks the real KMS v2 gRPC API (k8s.io/kms/apis/v2,
// served through k8s.io/kms/pkg/service) and the deprecated v1beta1 API on
// one unix socket, and wraps data keys with AES-256-GCM under named key
// encryption keys held in memory. It is not a key management system: the
// keys come from its command line.
package kmsplugin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kmsv1beta1 "k8s.io/kms/apis/v1beta1"
	kmsv2 "k8s.io/kms/apis/v2"
	kmsservice "k8s.io/kms/pkg/service"
)

// Key is a named key encryption key.
type Key struct {
	ID     string
	Secret []byte // 32 bytes
}

// Plugin wraps and unwraps data keys. The first key wraps; every key
// unwraps what it wrapped, so rotation works as with a real KMS.
type Plugin struct {
	current string
	keys    map[string]cipher.AEAD
	log     *log.Logger
}

// New makes a plugin from its keys, the first of which is current.
func New(keys []Key, logTo io.Writer) (*Plugin, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	p := &Plugin{current: keys[0].ID, keys: map[string]cipher.AEAD{}, log: log.New(logTo, "kms-test-plugin: ", log.LstdFlags)}
	for _, k := range keys {
		if k.ID == "" || strings.Contains(k.ID, ":") {
			return nil, fmt.Errorf("key id %q: want a non-empty id without colons", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		p.keys[k.ID] = gcm
	}
	return p, nil
}

// wrap seals plaintext under the current key, bound to its id.
func (p *Plugin) wrap(plaintext []byte) ([]byte, error) {
	gcm := p.keys[p.current]
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plaintext, []byte(p.current)), nil
}

func (p *Plugin) unwrap(keyID string, ciphertext []byte) ([]byte, error) {
	gcm, ok := p.keys[keyID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown key id %q", keyID)
	}
	ns := gcm.NonceSize()
	if len(ciphertext) < ns+gcm.Overhead() {
		return nil, status.Error(codes.InvalidArgument, "ciphertext too short")
	}
	out, err := gcm.Open(nil, ciphertext[:ns], ciphertext[ns:], []byte(keyID))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ciphertext does not open with key %q", keyID)
	}
	return out, nil
}

// Status implements the KMS v2 service.
func (p *Plugin) Status(ctx context.Context) (*kmsservice.StatusResponse, error) {
	return &kmsservice.StatusResponse{Version: "v2", Healthz: "ok", KeyID: p.current}, nil
}

// Encrypt implements the KMS v2 service.
func (p *Plugin) Encrypt(ctx context.Context, uid string, plaintext []byte) (*kmsservice.EncryptResponse, error) {
	ct, err := p.wrap(plaintext)
	if err != nil {
		return nil, err
	}
	p.log.Printf("v2 encrypt uid=%s key=%s", uid, p.current)
	return &kmsservice.EncryptResponse{Ciphertext: ct, KeyID: p.current}, nil
}

// Decrypt implements the KMS v2 service.
func (p *Plugin) Decrypt(ctx context.Context, uid string, req *kmsservice.DecryptRequest) ([]byte, error) {
	out, err := p.unwrap(req.KeyID, req.Ciphertext)
	p.log.Printf("v2 decrypt uid=%s key=%s err=%v", uid, req.KeyID, err)
	return out, err
}

// v1beta1 is the deprecated KMS v1 API over the same keys. It has no key
// ids on the wire, so the ciphertext carries the id before a colon.
type v1beta1 struct {
	kmsv1beta1.UnimplementedKeyManagementServiceServer
	p *Plugin
}

func (s v1beta1) Version(ctx context.Context, _ *kmsv1beta1.VersionRequest) (*kmsv1beta1.VersionResponse, error) {
	return &kmsv1beta1.VersionResponse{Version: "v1beta1", RuntimeName: "kms-test-plugin", RuntimeVersion: "0.1.0"}, nil
}

func (s v1beta1) Encrypt(ctx context.Context, req *kmsv1beta1.EncryptRequest) (*kmsv1beta1.EncryptResponse, error) {
	ct, err := s.p.wrap(req.Plain)
	if err != nil {
		return nil, err
	}
	s.p.log.Printf("v1 encrypt key=%s", s.p.current)
	return &kmsv1beta1.EncryptResponse{Cipher: append([]byte(s.p.current+":"), ct...)}, nil
}

func (s v1beta1) Decrypt(ctx context.Context, req *kmsv1beta1.DecryptRequest) (*kmsv1beta1.DecryptResponse, error) {
	id, ct, ok := strings.Cut(string(req.Cipher), ":")
	if !ok {
		return nil, status.Error(codes.InvalidArgument, "ciphertext without a key id")
	}
	out, err := s.p.unwrap(id, []byte(ct))
	s.p.log.Printf("v1 decrypt key=%s err=%v", id, err)
	if err != nil {
		return nil, err
	}
	return &kmsv1beta1.DecryptResponse{Plain: out}, nil
}

// Serve answers KMS v2 and v1beta1 calls on the unix socket at path until
// the returned server is stopped.
func (p *Plugin) Serve(path string) (*grpc.Server, <-chan error, error) {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, nil, err
	}
	gs := grpc.NewServer()
	// The k8s.io/kms server adapter turns the Service methods into the v2
	// gRPC service; its own ListenAndServe would serve v2 only.
	kmsv2.RegisterKeyManagementServiceServer(gs, kmsservice.NewGRPCService(path, 0, p))
	kmsv1beta1.RegisterKeyManagementServiceServer(gs, v1beta1{p: p})
	done := make(chan error, 1)
	go func() { done <- gs.Serve(ln) }()
	return gs, done, nil
}
