// Package encryption decrypts and encrypts etcd values as kube-apiserver's
// encryption at rest does, from its EncryptionConfiguration file: aescbc,
// aesgcm and secretbox with the keys in the file, and kms (v1 and v2)
// through the KMS plugin's socket. It knows nothing of the values' codec.
package encryption

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/proto"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/apiserver/pkg/storage/value"
	aestransformer "k8s.io/apiserver/pkg/storage/value/encrypt/aes"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"
	"k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
	"sigs.k8s.io/yaml"
)

// EncryptedPrefix starts every value encrypted at rest by kube-apiserver.
const EncryptedPrefix = "k8s:enc:"

// IsEncrypted reports whether value was written by an encryption provider
// other than identity.
func IsEncrypted(value []byte) bool { return bytes.HasPrefix(value, []byte(EncryptedPrefix)) }

// Config is the apiserver's EncryptionConfiguration
// (--encryption-provider-config) ready to decrypt and encrypt values. The
// ciphers are k8s.io/apiserver's own transformers, so values come out
// byte-compatible with what kube-apiserver reads and writes. KMS plugins are
// dialled on first use, not when the file is loaded, so a config with a KMS
// provider costs nothing until a KMS value is met; Close hangs up.
type Config struct {
	// Resources are the config's entries in order.
	Resources []ResourceEncryption

	// ctx lives as long as the config; the KMS gRPC clients close with it.
	ctx    context.Context
	cancel context.CancelFunc
}

// ResourceEncryption is one resources entry: the resources it covers and
// its providers, the first of which writes.
type ResourceEncryption struct {
	Resources []string
	Providers []*Provider
}

// Provider is one provider of an entry. Type is aescbc, aesgcm, secretbox,
// identity or kms.
type Provider struct {
	Type string
	// Keys are the named keys of aescbc, aesgcm and secretbox, the first
	// of which writes.
	Keys []ProviderKey
	// KMS is the kms provider's configuration, defaulted as the apiserver
	// defaults it (apiVersion v1, timeout 3s).
	KMS *apiserverv1.KMSConfiguration

	kms *kmsProvider
}

// ProviderKey is a named secret key and the apiserver's transformer for it.
type ProviderKey struct {
	Name   string
	Secret []byte

	transformer value.Transformer
}

// Load reads an EncryptionConfiguration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse parses an EncryptionConfiguration document into the
// apiserver's own v1 types, applies the apiserver's defaults and checks
// every key's size.
func Parse(data []byte) (*Config, error) {
	var fc apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(data, &fc); err != nil {
		// Fields a newer apiserver knows must not stop us reading the rest.
		if err2 := yaml.Unmarshal(data, &fc); err2 != nil {
			return nil, err2
		}
	}
	if fc.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("kind %q, want EncryptionConfiguration", fc.Kind)
	}
	apiserverv1.SetObjectDefaults_EncryptionConfiguration(&fc)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Config{ctx: ctx, cancel: cancel}
	plugins := map[string]*kmsProvider{}
	for i, r := range fc.Resources {
		re := ResourceEncryption{Resources: r.Resources}
		for j, p := range r.Providers {
			where := fmt.Sprintf("resources[%d].providers[%d]", i, j)
			prov := &Provider{}
			var keys []apiserverv1.Key
			switch {
			case p.AESCBC != nil:
				prov.Type, keys = "aescbc", p.AESCBC.Keys
			case p.AESGCM != nil:
				prov.Type, keys = "aesgcm", p.AESGCM.Keys
			case p.Secretbox != nil:
				prov.Type, keys = "secretbox", p.Secretbox.Keys
			case p.Identity != nil:
				prov.Type = "identity"
			case p.KMS != nil:
				prov.Type, prov.KMS = "kms", p.KMS
				if err := checkKMS(p.KMS); err != nil {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
				// The apiserver requires KMS names to be unique; one
				// plugin connection per name serves every entry using it.
				id := p.KMS.APIVersion + ":" + p.KMS.Name
				if plugins[id] == nil {
					plugins[id] = newKMSProvider(ctx, p.KMS)
				}
				prov.kms = plugins[id]
			default:
				return nil, fmt.Errorf("%s: no known provider (aescbc, aesgcm, secretbox, identity, kms)", where)
			}
			for _, k := range keys {
				secret, err := base64.StdEncoding.DecodeString(k.Secret)
				if err != nil {
					return nil, fmt.Errorf("%s key %q: secret is not base64: %w", prov.Type, k.Name, err)
				}
				t, err := keyTransformer(prov.Type, secret)
				if err != nil {
					return nil, fmt.Errorf("%s key %q: %w", prov.Type, k.Name, err)
				}
				prov.Keys = append(prov.Keys, ProviderKey{Name: k.Name, Secret: secret, transformer: t})
			}
			if keys != nil && len(prov.Keys) == 0 {
				return nil, fmt.Errorf("%s: %s without keys", where, prov.Type)
			}
			re.Providers = append(re.Providers, prov)
		}
		c.Resources = append(c.Resources, re)
	}
	return c, nil
}

func checkKMS(k *apiserverv1.KMSConfiguration) error {
	switch {
	case k.Name == "":
		return errors.New("kms provider without a name")
	case strings.Contains(k.Name, ":"):
		return fmt.Errorf("kms provider name %q has a colon", k.Name)
	case k.APIVersion != "v1" && k.APIVersion != "v2":
		return fmt.Errorf("kms provider %q: apiVersion %q, want v1 or v2", k.Name, k.APIVersion)
	case k.Endpoint == "":
		return fmt.Errorf("kms provider %q without an endpoint", k.Name)
	case k.Timeout.Duration <= 0:
		return fmt.Errorf("kms provider %q: timeout %s, want a positive duration", k.Name, k.Timeout.Duration)
	}
	return nil
}

// keyTransformer checks the key's size and makes the apiserver's
// transformer for it.
func keyTransformer(provider string, secret []byte) (value.Transformer, error) {
	if provider == "secretbox" {
		if len(secret) != 32 {
			return nil, fmt.Errorf("secretbox keys are 32 bytes, this one is %d", len(secret))
		}
		return secretbox.NewSecretboxTransformer([32]byte(secret)), nil
	}
	if n := len(secret); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("AES keys are 16, 24 or 32 bytes, this one is %d", n)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	if provider == "aescbc" {
		return aestransformer.NewCBCTransformer(block), nil
	}
	return aestransformer.NewGCMTransformer(block)
}

// Close hangs up the KMS plugins the config has dialled.
func (c *Config) Close() {
	if c != nil && c.cancel != nil {
		c.cancel()
	}
}

// covers reports whether entry r covers the resource ("secrets",
// "deployments.apps"), with the apiserver's wildcards "*.group" and "*.*".
func (r *ResourceEncryption) covers(resource string) bool {
	group := ""
	if i := strings.IndexByte(resource, '.'); i >= 0 {
		group = resource[i+1:]
	}
	for _, s := range r.Resources {
		s = strings.TrimSuffix(s, ".")
		switch {
		case s == resource, s == "*.*":
			return true
		case s == "*." && group == "":
			return true
		case strings.HasPrefix(s, "*.") && s[2:] == group:
			return true
		}
	}
	return false
}

// kmsProvider finds the kms provider of that API version and name.
func (c *Config) kmsProvider(version, name string) *Provider {
	for _, r := range c.Resources {
		for _, p := range r.Providers {
			if p.KMS != nil && p.KMS.APIVersion == version && p.KMS.Name == name {
				return p
			}
		}
	}
	return nil
}

// kmsNames lists the config's kms providers of that API version, for
// errors.
func (c *Config) kmsNames(version string) []string {
	var names []string
	for _, r := range c.Resources {
		for _, p := range r.Providers {
			if p.KMS != nil && p.KMS.APIVersion == version {
				names = append(names, fmt.Sprintf("%q", p.KMS.Name))
			}
		}
	}
	return names
}

// Decrypt decrypts a value that starts with k8s:enc:, stored at key (the
// authenticated data of aesgcm and KMS). It returns the plaintext and
// "provider:keyname" ("kms:NAME" for KMS). A nil config, a key or KMS
// provider not in the config, or a KMS plugin that cannot be reached is an
// error that says which key, provider or plugin is needed.
func (c *Config) Decrypt(key string, value []byte) ([]byte, string, error) {
	rest := string(value[len(EncryptedPrefix):])
	parts := strings.SplitN(rest, ":", 4)
	if len(parts) < 4 || parts[1] != "v1" && parts[1] != "v2" {
		return nil, "", errors.New("malformed encryption prefix (want k8s:enc:PROVIDER:v1:KEYNAME:)")
	}
	provider, version, name := parts[0], parts[1], parts[2]
	body := value[len(EncryptedPrefix)+len(provider)+len(version)+len(name)+3:]
	how := provider + ":" + name
	if provider == "kms" {
		if c == nil {
			return nil, how, fmt.Errorf("%s: pass the apiserver's --encryption-provider-config file, whose provider names the KMS plugin's socket", describeKMSValue(version, name, body))
		}
		p := c.kmsProvider(version, name)
		if p == nil {
			has := "no KMS " + version + " providers"
			if names := c.kmsNames(version); len(names) > 0 {
				has = "KMS " + version + " providers " + strings.Join(names, ", ")
			}
			return nil, how, fmt.Errorf("%s, which the encryption config does not have (it has %s)", describeKMSValue(version, name, body), has)
		}
		plain, err := p.kms.decrypt(key, body)
		return plain, how, err
	}
	if c == nil {
		return nil, how, fmt.Errorf("value is encrypted with %s key %q: pass the apiserver's --encryption-provider-config file", provider, name)
	}
	if provider == "aescbc" && len(body) <= aes.BlockSize {
		// The apiserver's CBC transformer indexes past an empty payload.
		return nil, how, errors.New("aescbc data is empty after the IV")
	}
	var lastErr error
	for _, r := range c.Resources {
		for _, p := range r.Providers {
			if p.Type != provider {
				continue
			}
			for _, k := range p.Keys {
				if k.Name != name {
					continue
				}
				plain, _, err := k.transformer.TransformFromStorage(c.ctx, body, valueContext(key))
				if err == nil {
					return plain, how, nil
				}
				lastErr = err
			}
		}
	}
	if lastErr != nil {
		return nil, how, fmt.Errorf("%s key %q does not decrypt it: %w", provider, name, lastErr)
	}
	return nil, how, fmt.Errorf("value is encrypted with %s key %q, which the encryption config does not have", provider, name)
}

// valueContext is the authenticated data the apiserver binds a value to:
// its etcd key.
func valueContext(key string) value.Context { return value.DefaultContext(key) }

// describeKMSValue names the KMS provider of a value and, for v2, the key
// id it was written with.
func describeKMSValue(version, name string, body []byte) string {
	if version == "v2" {
		keyID := kmsV2KeyID(body)
		if keyID == "" {
			keyID = "<unreadable>"
		}
		return fmt.Sprintf("value is encrypted by KMS v2 provider %q with key id %q", name, keyID)
	}
	return fmt.Sprintf("value is encrypted by KMS v1 provider %q", name)
}

// kmsV2KeyID reads the key id of a KMS v2 EncryptedObject, "" when the
// body is not one.
func kmsV2KeyID(body []byte) string {
	var o kmstypes.EncryptedObject
	if err := proto.Unmarshal(body, &o); err != nil {
		return ""
	}
	return o.KeyID
}

// Encrypt encrypts value for the etcd key as kube-apiserver would: with the
// first provider of the first entry that covers resource ("secrets",
// "deployments.apps"), and its first key; a KMS write provider asks its
// plugin. Identity, or no entry, returns value unchanged.
func (c *Config) Encrypt(resource, key string, value []byte) ([]byte, error) {
	if c == nil {
		return value, nil
	}
	for _, r := range c.Resources {
		if !r.covers(resource) || len(r.Providers) == 0 {
			continue
		}
		p := r.Providers[0]
		switch p.Type {
		case "identity":
			return value, nil
		case "kms":
			body, err := p.kms.encrypt(key, value)
			if err != nil {
				return nil, fmt.Errorf("encrypting %s with its write provider: %w", resource, err)
			}
			prefix := EncryptedPrefix + "kms:" + p.KMS.APIVersion + ":" + p.KMS.Name + ":"
			return append([]byte(prefix), body...), nil
		}
		k := p.Keys[0]
		body, err := k.transformer.TransformToStorage(c.ctx, value, valueContext(key))
		if err != nil {
			return nil, err
		}
		prefix := EncryptedPrefix + p.Type + ":v1:" + k.Name + ":"
		return append([]byte(prefix), body...), nil
	}
	return value, nil
}

// readUnion reads with the first transformer that succeeds and writes with
// the first: the KMS v1 envelope's data is AES-GCM since Kubernetes 1.25
// and AES-CBC before.
type readUnion []value.Transformer

func (u readUnion) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	var errs []error
	for _, t := range u {
		out, stale, err := t.TransformFromStorage(ctx, data, dataCtx)
		if err == nil {
			return out, stale, nil
		}
		errs = append(errs, err)
	}
	return nil, false, errors.Join(errs...)
}

func (u readUnion) TransformToStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, error) {
	return u[0].TransformToStorage(ctx, data, dataCtx)
}

func kmsV1DataTransformer(block cipher.Block) (value.Transformer, error) {
	gcm, err := aestransformer.NewGCMTransformer(block)
	if err != nil {
		return nil, err
	}
	return readUnion{gcm, aestransformer.NewCBCTransformer(block)}, nil
}
