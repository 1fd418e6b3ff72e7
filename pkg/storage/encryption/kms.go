package encryption

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/uuid"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope"
	envelopekmsv2 "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"
	kmsservice "k8s.io/kms/pkg/service"
	kmsutil "k8s.io/kms/pkg/util"
)

// kmsClientID stands where the apiserver passes its own id to the KMS
// transformers (only their metrics use it).
const kmsClientID = "kubectl-etcd"

// kmsDEKLifetime bounds how long encode and put reuse the data key seed
// they had the plugin encrypt; the apiserver rotates on the same order.
const kmsDEKLifetime = time.Hour

// kmsProvider is one kms provider of the config: its KMS plugin, reached
// over gRPC on the endpoint's unix socket with the apiserver's own clients
// and envelope transformers (k8s.io/apiserver envelope and envelope/kmsv2).
type kmsProvider struct {
	ctx    context.Context
	config *apiserverv1.KMSConfiguration

	connectOnce sync.Once
	// connectErr says why the plugin cannot be used; kept, so a listing of
	// many KMS values waits for a dead plugin once, not once per value.
	connectErr error
	// transformer reads and writes values after the k8s:enc:kms:vN:NAME:
	// prefix.
	transformer value.Transformer
	v2          kmsservice.Service
	// status is the v2 plugin's answer to Status when first dialled.
	status *kmsservice.StatusResponse

	writeOnce sync.Once
	writeErr  error
	mu        sync.Mutex
	// state is the v2 write state: the data key seed and its encrypted
	// form, made on the first write.
	state envelopekmsv2.State
}

func newKMSProvider(ctx context.Context, config *apiserverv1.KMSConfiguration) *kmsProvider {
	return &kmsProvider{ctx: ctx, config: config}
}

// what names the provider in errors.
func (p *kmsProvider) what() string {
	return fmt.Sprintf("KMS %s provider %q", p.config.APIVersion, p.config.Name)
}

func (p *kmsProvider) connect() error {
	p.connectOnce.Do(func() { p.connectErr = p.dial() })
	return p.connectErr
}

// dial checks that a plugin listens on the socket before handing it to the
// apiserver's gRPC client: that client waits for the socket until the call
// times out and then says only "deadline exceeded".
func (p *kmsProvider) dial() error {
	endpoint, timeout := p.config.Endpoint, p.config.Timeout.Duration
	addr, err := kmsutil.ParseEndpoint(endpoint)
	if err != nil {
		return fmt.Errorf("%s: %w", p.what(), err)
	}
	conn, err := net.DialTimeout("unix", addr, timeout)
	if err != nil {
		// "dial unix /path: connect: ..." repeats the path the endpoint
		// already names; keep the reason.
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			err = opErr.Err
		}
		return fmt.Errorf("%s: no KMS plugin listens at %s (%w)", p.what(), endpoint, err)
	}
	_ = conn.Close()
	switch p.config.APIVersion {
	case "v2":
		svc, err := envelopekmsv2.NewGRPCService(p.ctx, endpoint, p.config.Name, timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", p.what(), err)
		}
		st, err := svc.Status(p.ctx)
		if err != nil {
			return p.pluginError("report its status", err)
		}
		if st.Version != envelopekmsv2.KMSAPIVersionv2 && st.Version != envelopekmsv2.KMSAPIVersionv2beta1 {
			return fmt.Errorf("%s: the KMS plugin at %s speaks KMS API %q, want %s", p.what(), endpoint, st.Version, envelopekmsv2.KMSAPIVersionv2)
		}
		p.v2, p.status = svc, st
		p.transformer = envelopekmsv2.NewEnvelopeTransformer(svc, p.config.Name, p.currentState, kmsClientID)
	case "v1":
		svc, err := envelope.NewGRPCService(p.ctx, endpoint, timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", p.what(), err)
		}
		cacheSize := 0
		if p.config.CacheSize != nil {
			cacheSize = int(*p.config.CacheSize)
		}
		p.transformer = envelope.NewEnvelopeTransformer(svc, cacheSize, kmsV1DataTransformer)
	}
	return nil
}

// currentState is the v2 transformer's view of the write key: none until
// the first write; reads do not need one.
func (p *kmsProvider) currentState() (envelopekmsv2.State, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, nil
}

// pluginError turns a failed call to the plugin into one sentence naming
// the provider and its endpoint. asked is what the plugin was asked to do
// ("report its status").
func (p *kmsProvider) pluginError(asked string, err error) error {
	endpoint := p.config.Endpoint
	var withStatus interface{ GRPCStatus() *status.Status }
	if errors.As(err, &withStatus) {
		s := withStatus.GRPCStatus()
		switch s.Code() {
		case codes.DeadlineExceeded:
			return fmt.Errorf("%s: the KMS plugin at %s did not answer within %s (asked to %s)", p.what(), endpoint, p.config.Timeout.Duration, asked)
		case codes.Unimplemented:
			return fmt.Errorf("%s: the KMS plugin at %s does not serve KMS API %s (%s)", p.what(), endpoint, p.config.APIVersion, s.Message())
		}
		return fmt.Errorf("%s: the KMS plugin at %s could not %s: %s", p.what(), endpoint, asked, s.Message())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: the KMS plugin at %s did not answer within %s (asked to %s)", p.what(), endpoint, p.config.Timeout.Duration, asked)
	}
	return fmt.Errorf("%s: asking the KMS plugin at %s to %s: %w", p.what(), endpoint, asked, err)
}

func isPluginError(err error) bool {
	var withStatus interface{ GRPCStatus() *status.Status }
	return errors.As(err, &withStatus) || errors.Is(err, context.DeadlineExceeded)
}

// decrypt decrypts the body of a value stored at key: the plugin decrypts
// the data key (seed), the apiserver's transformer the data.
func (p *kmsProvider) decrypt(key string, body []byte) ([]byte, error) {
	keyID := ""
	if p.config.APIVersion == "v2" {
		var o kmstypes.EncryptedObject
		if err := proto.Unmarshal(body, &o); err != nil {
			return nil, fmt.Errorf("%s: the value is not a KMS v2 EncryptedObject: %w", p.what(), err)
		}
		if err := envelopekmsv2.ValidateEncryptedObject(&o); err != nil {
			return nil, fmt.Errorf("%s: the value is not a valid KMS v2 EncryptedObject: %w", p.what(), err)
		}
		keyID = o.KeyID
	}
	if err := p.connect(); err != nil {
		return nil, err
	}
	plain, _, err := p.transformer.TransformFromStorage(p.ctx, body, valueContext(key))
	if err == nil {
		return plain, nil
	}
	if !isPluginError(err) {
		return nil, fmt.Errorf("%s: %w", p.what(), err)
	}
	if p.config.APIVersion == "v1" {
		return nil, p.pluginError("decrypt the data key", err)
	}
	err = p.pluginError(fmt.Sprintf("decrypt the data key of key id %q", keyID), err)
	if p.status.KeyID != keyID {
		err = fmt.Errorf("%w (its current key id is %q)", err, p.status.KeyID)
	}
	return nil, err
}

// encrypt encrypts value for key as the apiserver writes it: KMS v2 with
// a data key seed the plugin encrypted once (HKDF-derived AES-GCM keys per
// value), KMS v1 with a fresh AES-GCM data key per value.
func (p *kmsProvider) encrypt(key string, val []byte) ([]byte, error) {
	if err := p.connect(); err != nil {
		return nil, err
	}
	if p.config.APIVersion == "v2" {
		p.writeOnce.Do(func() { p.writeErr = p.newSeed() })
		if p.writeErr != nil {
			return nil, p.writeErr
		}
	}
	out, err := p.transformer.TransformToStorage(p.ctx, val, valueContext(key))
	if err != nil {
		if isPluginError(err) {
			return nil, p.pluginError("encrypt a data key", err)
		}
		return nil, fmt.Errorf("%s: %w", p.what(), err)
	}
	return out, nil
}

// newSeed has the plugin encrypt a new data key seed, as the apiserver does
// when it starts and whenever the plugin's key id changes.
func (p *kmsProvider) newSeed() error {
	uid := string(uuid.NewUUID())
	t, o, cacheKey, err := envelopekmsv2.GenerateTransformer(p.ctx, uid, p.v2, true)
	if err != nil {
		return p.pluginError("encrypt a new data key seed", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = envelopekmsv2.State{
		Transformer:                           t,
		EncryptedObjectKeyID:                  o.KeyID,
		EncryptedObjectEncryptedDEKSource:     o.EncryptedDEKSource,
		EncryptedObjectAnnotations:            o.Annotations,
		EncryptedObjectEncryptedDEKSourceType: o.EncryptedDEKSourceType,
		UID:                                   uid,
		ExpirationTimestamp:                   time.Now().Add(kmsDEKLifetime),
		CacheKey:                              cacheKey,
		KMSProviderName:                       p.config.Name,
	}
	return nil
}
