package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"

	"github.com/kubectl-etcd/kubectl-etcd/internal/kmstest"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
)

// The KMS plugin in these tests is kms-test-plugin, a test plugin speaking
// the real KMS gRPC API: no production KMS can run here. The other side of
// every check is k8s.io/apiserver's own encryption config loader and
// transformers, the code kube-apiserver runs.

func kmsConfig(endpoint, name, apiVersion, timeout string) string {
	return `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - kms:
      apiVersion: ` + apiVersion + `
      name: ` + name + `
      endpoint: ` + endpoint + `
      timeout: ` + timeout + `
  - identity: {}
`
}

// apiserverTransformer loads config with the apiserver's own loader and
// returns its transformer for secrets.
func apiserverTransformer(t *testing.T, config string) value.Transformer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "enc.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	loaded, err := encryptionconfig.LoadEncryptionConfig(ctx, path, false, "test-apiserver")
	if err != nil {
		t.Fatal(err)
	}
	return loaded.Transformers[schema.GroupResource{Resource: "secrets"}]
}

func ourConfig(t *testing.T, config string) *encryption.Config {
	t.Helper()
	cfg, err := encryption.Parse([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cfg.Close)
	return cfg
}

func testSecret(t *testing.T) []byte {
	t.Helper()
	value, _, err := Encode([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\ndata: {password: aHVudGVyMg==}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return value
}

func TestKMSValuesOfTheAPIServerDecode(t *testing.T) {
	// KMS v1 is off by default since Kubernetes 1.29; the apiserver's
	// loader wants the gate, as kube-apiserver wants --feature-gates=KMSv1=true.
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(features.KMSv1): true}); err != nil {
		t.Fatal(err)
	}
	plain := testSecret(t)
	key := "/registry/secrets/prod/db"
	for _, version := range []string{"v2", "v1"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			t.Log("a test KMS plugin with key-1, and the apiserver's transformers using it")
			key1 := kmstest.NewKey(t, "key-1")
			plugin := kmstest.Start(t, filepath.Join(dir, "kms.sock"), key1)
			name := "test-kms-" + version
			config := kmsConfig(plugin.Endpoint, name, version, "2s")
			apiserver := apiserverTransformer(t, config)
			stored, err := apiserver.TransformToStorage(context.Background(), plain, value.DefaultContext(key))
			if err != nil {
				t.Fatal(err)
			}
			if want := "k8s:enc:kms:" + version + ":" + name + ":"; !bytes.HasPrefix(stored, []byte(want)) || bytes.Contains(stored, []byte("aHVudGVyMg")) {
				t.Fatalf("apiserver wrote %q..., want prefix %q and no plaintext", stored[:min(40, len(stored))], want)
			}

			t.Log("the apiserver's value decodes with our config")
			d := &Decoder{Encryption: ourConfig(t, config)}
			o, err := d.Decode(key, stored, 9)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(o.Value, plain) || o.Encryption != "kms:"+name || o.GVK().Kind != "Secret" {
				t.Errorf("decoded %q (encryption %q), want the secret", o.Value, o.Encryption)
			}
			if _, err := d.Decode("/registry/secrets/prod/other", stored, 9); err == nil {
				t.Error("a value moved to another key decoded; the key is the authenticated data")
			}

			t.Log("our encryption reads back in the apiserver")
			ours, err := d.Encryption.Encrypt("secrets", key, plain)
			if err != nil {
				t.Fatal(err)
			}
			back, _, err := apiserver.TransformFromStorage(context.Background(), ours, value.DefaultContext(key))
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("apiserver read of our value: %v", err)
			}

			t.Log("rotation: key-2 becomes current, key-1 values still decode")
			key2 := kmstest.NewKey(t, "key-2")
			plugin.Restart(key2, key1)
			d = &Decoder{Encryption: ourConfig(t, config)}
			if o, err := d.Decode(key, stored, 9); err != nil || !bytes.Equal(o.Value, plain) {
				t.Fatalf("after rotation: %v", err)
			}

			t.Log("a plugin that lost key-1")
			plugin.Restart(key2)
			_, err = (&Decoder{Encryption: ourConfig(t, config)}).Decode(key, stored, 9)
			wants := []string{key, "KMS " + version + ` provider "` + name + `"`, plugin.Endpoint, `unknown key id "key-1"`}
			if version == "v2" {
				wants = append(wants, `could not decrypt the data key of key id "key-1"`, `its current key id is "key-2"`)
			}
			checkError(t, err, wants...)
		})
	}
}

func checkError(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", wants)
	}
	t.Logf("error: %v", err)
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is more than one line", err)
	}
}

func TestLocalProvidersMatchTheAPIServer(t *testing.T) {
	plain := testSecret(t)
	key := "/registry/secrets/prod/db"
	for _, provider := range []string{"aescbc", "aesgcm", "secretbox"} {
		t.Run(provider, func(t *testing.T) {
			config := `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - ` + provider + `:
      keys:
      - {name: new, secret: ` + randomKey(t, 32) + `}
      - {name: old, secret: ` + randomKey(t, 32) + `}
`
			apiserver := apiserverTransformer(t, config)
			ours := ourConfig(t, config)
			stored, err := apiserver.TransformToStorage(context.Background(), plain, value.DefaultContext(key))
			if err != nil {
				t.Fatal(err)
			}
			o, err := (&Decoder{Encryption: ours}).Decode(key, stored, 1)
			if err != nil || !bytes.Equal(o.Value, plain) || o.Encryption != provider+":new" {
				t.Fatalf("the apiserver's value: %v (encryption %q)", err, o.Encryption)
			}
			enc, err := ours.Encrypt("secrets", key, plain)
			if err != nil {
				t.Fatal(err)
			}
			back, _, err := apiserver.TransformFromStorage(context.Background(), enc, value.DefaultContext(key))
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("the apiserver's read of our value: %v", err)
			}
		})
	}
}

func TestEmptyAESCBCValueIsAnError(t *testing.T) {
	cfg := ourConfig(t, "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc: {keys: [{name: k, secret: "+randomKey(t, 32)+"}]}\n")
	_, err := (&Decoder{Encryption: cfg}).Decode("/registry/secrets/a/b", []byte("k8s:enc:aescbc:v1:k:0123456789abcdef"), 1)
	checkError(t, err, "/registry/secrets/a/b", "aescbc data is empty after the IV")
}

func TestKMSErrorsNameWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	plugin := kmstest.Start(t, filepath.Join(dir, "kms.sock"), kmstest.NewKey(t, "key-1"))
	config := kmsConfig(plugin.Endpoint, "vault", "v2", "1s")
	key := "/registry/secrets/prod/db"
	stored, err := ourConfig(t, config).Encrypt("secrets", key, testSecret(t))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("no config", func(t *testing.T) {
		_, err := (&Decoder{}).Decode(key, stored, 1)
		checkError(t, err, `KMS v2 provider "vault" with key id "key-1"`, "--encryption-provider-config")
	})
	t.Run("provider not in the config", func(t *testing.T) {
		_, err := (&Decoder{Encryption: ourConfig(t, kmsConfig(plugin.Endpoint, "other", "v2", "1s"))}).Decode(key, stored, 1)
		checkError(t, err, `KMS v2 provider "vault" with key id "key-1", which the encryption config does not have (it has KMS v2 providers "other")`)
	})
	t.Run("plugin not answering", func(t *testing.T) {
		plugin.Pause()
		defer plugin.Resume()
		start := time.Now()
		_, err := (&Decoder{Encryption: ourConfig(t, config)}).Decode(key, stored, 1)
		checkError(t, err, `KMS v2 provider "vault"`, plugin.Endpoint, "did not answer within 1s")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s to give up, want about the 1s timeout", d)
		}
	})
	t.Run("no plugin on the socket", func(t *testing.T) {
		plugin.Kill()
		cfg := ourConfig(t, config)
		for range 2 {
			_, err := (&Decoder{Encryption: cfg}).Decode(key, stored, 1)
			checkError(t, err, `KMS v2 provider "vault"`, "no KMS plugin listens at "+plugin.Endpoint)
		}
		_, err := cfg.Encrypt("secrets", key, testSecret(t))
		checkError(t, err, "encrypting secrets", `KMS v2 provider "vault"`, "no KMS plugin listens at "+plugin.Endpoint)
	})
}
