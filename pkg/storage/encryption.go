package storage

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
	"google.golang.org/protobuf/encoding/protowire"
	"sigs.k8s.io/yaml"
)

// EncryptedPrefix starts every value encrypted at rest by kube-apiserver.
const EncryptedPrefix = "k8s:enc:"

// IsEncrypted reports whether value was written by an encryption provider
// other than identity.
func IsEncrypted(value []byte) bool { return bytes.HasPrefix(value, []byte(EncryptedPrefix)) }

// EncryptionConfig is the apiserver's EncryptionConfiguration
// (--encryption-provider-config), reduced to what reading and writing
// values needs.
type EncryptionConfig struct {
	Resources []ResourceEncryption
}

// ResourceEncryption is one resources entry: the resources it covers and
// its providers, the first of which writes.
type ResourceEncryption struct {
	Resources []string
	Providers []Provider
}

// Provider is one provider of an entry. Type is aescbc, aesgcm, secretbox,
// identity or kms.
type Provider struct {
	Type string
	// Name is the KMS provider name.
	Name string
	// APIVersion is the KMS API version (v1, v2).
	APIVersion string
	Keys       []ProviderKey
}

// ProviderKey is a named secret key.
type ProviderKey struct {
	Name   string
	Secret []byte
}

type fileConfig struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Resources  []struct {
		Resources []string `json:"resources"`
		Providers []struct {
			AESCBC    *fileKeys `json:"aescbc"`
			AESGCM    *fileKeys `json:"aesgcm"`
			Secretbox *fileKeys `json:"secretbox"`
			Identity  *struct{} `json:"identity"`
			KMS       *struct {
				Name       string `json:"name"`
				APIVersion string `json:"apiVersion"`
			} `json:"kms"`
		} `json:"providers"`
	} `json:"resources"`
}

type fileKeys struct {
	Keys []struct {
		Name   string `json:"name"`
		Secret string `json:"secret"`
	} `json:"keys"`
}

// LoadEncryptionConfig reads an EncryptionConfiguration file.
func LoadEncryptionConfig(path string) (*EncryptionConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseEncryptionConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseEncryptionConfig parses an EncryptionConfiguration document and
// checks every key's size.
func ParseEncryptionConfig(data []byte) (*EncryptionConfig, error) {
	var fc fileConfig
	if err := yaml.UnmarshalStrict(data, &fc); err != nil {
		if err2 := yaml.Unmarshal(data, &fc); err2 != nil {
			return nil, err2
		}
	}
	if fc.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("kind %q, want EncryptionConfiguration", fc.Kind)
	}
	c := &EncryptionConfig{}
	for i, r := range fc.Resources {
		re := ResourceEncryption{Resources: r.Resources}
		for j, p := range r.Providers {
			var prov Provider
			var keys *fileKeys
			switch {
			case p.AESCBC != nil:
				prov.Type, keys = "aescbc", p.AESCBC
			case p.AESGCM != nil:
				prov.Type, keys = "aesgcm", p.AESGCM
			case p.Secretbox != nil:
				prov.Type, keys = "secretbox", p.Secretbox
			case p.Identity != nil:
				prov.Type = "identity"
			case p.KMS != nil:
				prov.Type, prov.Name, prov.APIVersion = "kms", p.KMS.Name, p.KMS.APIVersion
				if prov.APIVersion == "" {
					prov.APIVersion = "v1"
				}
			default:
				return nil, fmt.Errorf("resources[%d].providers[%d]: no known provider (aescbc, aesgcm, secretbox, identity, kms)", i, j)
			}
			if keys != nil {
				for _, k := range keys.Keys {
					secret, err := base64.StdEncoding.DecodeString(k.Secret)
					if err != nil {
						return nil, fmt.Errorf("%s key %q: secret is not base64: %w", prov.Type, k.Name, err)
					}
					if err := checkKeySize(prov.Type, len(secret)); err != nil {
						return nil, fmt.Errorf("%s key %q: %w", prov.Type, k.Name, err)
					}
					prov.Keys = append(prov.Keys, ProviderKey{Name: k.Name, Secret: secret})
				}
				if len(prov.Keys) == 0 {
					return nil, fmt.Errorf("resources[%d].providers[%d]: %s without keys", i, j, prov.Type)
				}
			}
			re.Providers = append(re.Providers, prov)
		}
		c.Resources = append(c.Resources, re)
	}
	return c, nil
}

func checkKeySize(provider string, n int) error {
	switch provider {
	case "secretbox":
		if n != 32 {
			return fmt.Errorf("secretbox keys are 32 bytes, this one is %d", n)
		}
	default:
		if n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("AES keys are 16, 24 or 32 bytes, this one is %d", n)
		}
	}
	return nil
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

// Decrypt decrypts a value that starts with k8s:enc:, stored at key (the
// AAD of aesgcm). It returns the plaintext and "provider:keyname". A nil
// config, a key not in the config or a KMS value is an error that says which
// key or provider is needed.
func (c *EncryptionConfig) Decrypt(key string, value []byte) ([]byte, string, error) {
	rest := string(value[len(EncryptedPrefix):])
	parts := strings.SplitN(rest, ":", 4)
	if len(parts) < 4 || parts[1] != "v1" && parts[1] != "v2" {
		return nil, "", errors.New("malformed encryption prefix (want k8s:enc:PROVIDER:v1:KEYNAME:)")
	}
	provider, version, name := parts[0], parts[1], parts[2]
	body := value[len(EncryptedPrefix)+len(provider)+len(version)+len(name)+3:]
	how := provider + ":" + name
	if provider == "kms" {
		return nil, how, kmsError(version, name, body)
	}
	if c == nil {
		return nil, how, fmt.Errorf("value is encrypted with %s key %q: pass the apiserver's --encryption-provider-config file", provider, name)
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
				plain, err := decryptWith(provider, k.Secret, []byte(key), body)
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

func kmsError(version, name string, body []byte) error {
	if version == "v2" {
		keyID := kmsV2KeyID(body)
		if keyID == "" {
			keyID = "<unreadable>"
		}
		return fmt.Errorf("value is encrypted by KMS v2 provider %q with key id %q: decrypting needs that KMS plugin, which this tool does not call", name, keyID)
	}
	return fmt.Errorf("value is encrypted by KMS v1 provider %q: decrypting needs that KMS plugin, which this tool does not call", name)
}

// kmsV2KeyID reads keyID (field 2) of a KMS v2 EncryptedObject.
func kmsV2KeyID(b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ""
			}
			return string(v)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		b = b[n:]
	}
	return ""
}

func decryptWith(provider string, secret, aad, body []byte) ([]byte, error) {
	switch provider {
	case "aescbc":
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, err
		}
		if len(body) < aes.BlockSize || (len(body)-aes.BlockSize)%aes.BlockSize != 0 || len(body) == aes.BlockSize {
			return nil, errors.New("aescbc data is not a whole number of blocks after the IV")
		}
		iv, data := body[:aes.BlockSize], body[aes.BlockSize:]
		out := make([]byte, len(data))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
		pad := int(out[len(out)-1])
		if pad == 0 || pad > aes.BlockSize || pad > len(out) {
			return nil, errors.New("invalid PKCS#7 padding (wrong key?)")
		}
		for _, b := range out[len(out)-pad:] {
			if int(b) != pad {
				return nil, errors.New("invalid PKCS#7 padding (wrong key?)")
			}
		}
		return out[:len(out)-pad], nil
	case "aesgcm":
		gcm, err := newGCM(secret)
		if err != nil {
			return nil, err
		}
		ns := gcm.NonceSize()
		if len(body) < ns+gcm.Overhead() {
			return nil, errors.New("aesgcm data shorter than nonce and tag")
		}
		return gcm.Open(nil, body[:ns], body[ns:], aad)
	case "secretbox":
		if len(body) < 24+secretbox.Overhead {
			return nil, errors.New("secretbox data shorter than nonce and tag")
		}
		var k [32]byte
		var nonce [24]byte
		copy(k[:], secret)
		copy(nonce[:], body[:24])
		out, ok := secretbox.Open(nil, body[24:], &nonce, &k)
		if !ok {
			return nil, errors.New("secretbox authentication failed (wrong key?)")
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown provider %q", provider)
}

func newGCM(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Encrypt encrypts value for the etcd key as kube-apiserver would: with the
// first provider of the first entry that covers resource ("secrets",
// "deployments.apps"), and its first key. Identity, or no entry, returns
// value unchanged; a KMS write provider is an error.
func (c *EncryptionConfig) Encrypt(resource, key string, value []byte) ([]byte, error) {
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
			return nil, fmt.Errorf("the write provider for %s is KMS %s provider %q, which this tool does not call", resource, p.APIVersion, p.Name)
		}
		k := p.Keys[0]
		body, err := encryptWith(p.Type, k.Secret, []byte(key), value)
		if err != nil {
			return nil, err
		}
		prefix := EncryptedPrefix + p.Type + ":v1:" + k.Name + ":"
		return append([]byte(prefix), body...), nil
	}
	return value, nil
}

func encryptWith(provider string, secret, aad, value []byte) ([]byte, error) {
	switch provider {
	case "aescbc":
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, err
		}
		pad := aes.BlockSize - len(value)%aes.BlockSize
		data := append(append([]byte{}, value...), bytes.Repeat([]byte{byte(pad)}, pad)...)
		out := make([]byte, aes.BlockSize+len(data))
		if _, err := rand.Read(out[:aes.BlockSize]); err != nil {
			return nil, err
		}
		cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], data)
		return out, nil
	case "aesgcm":
		gcm, err := newGCM(secret)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, gcm.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		return gcm.Seal(nonce, nonce, value, aad), nil
	case "secretbox":
		var k [32]byte
		var nonce [24]byte
		copy(k[:], secret)
		if _, err := rand.Read(nonce[:]); err != nil {
			return nil, err
		}
		return secretbox.Seal(nonce[:], value, &nonce, &k), nil
	}
	return nil, fmt.Errorf("unknown provider %q", provider)
}
