package util

import (
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
)

// The flags and helpers of every command that reads or writes Kubernetes
// objects in etcd (get, put, codec, stats, watch, history).

// StorageFlags are the flags of every command that reads stored objects.
type StorageFlags struct {
	// EncryptionConfig is the apiserver's --encryption-provider-config.
	EncryptionConfig string
	// StoragePrefix is the apiserver's --etcd-prefix.
	StoragePrefix string
}

// AddFlags registers the storage flags.
func (s *StorageFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.EncryptionConfig, "encryption-provider-config", s.EncryptionConfig, "the apiserver's EncryptionConfiguration file, to decrypt (and encrypt) values encrypted at rest: aescbc, aesgcm, secretbox, and kms through the KMS plugin's socket named in the file")
	fs.StringVar(&s.StoragePrefix, "storage-prefix", storage.DefaultPrefix, "the apiserver's --etcd-prefix: where Kubernetes objects are stored")
}

// Decoder loads the encryption config, if any, into a decoder.
func (s *StorageFlags) Decoder() (*storage.Decoder, error) {
	d := &storage.Decoder{}
	if s.EncryptionConfig != "" {
		cfg, err := encryption.Load(s.EncryptionConfig)
		if err != nil {
			return nil, fmt.Errorf("reading the encryption config: %w", err)
		}
		d.Encryption = cfg
	}
	return d, nil
}

// AddNamespaceFlag registers -n/--namespace on a command that reads
// Kubernetes objects: the namespace of those objects. It shadows the global
// -n, which names where the etcd pods run when etcd is reached through the
// Kubernetes API, so that reading pods of "prod" never looks for etcd there.
func AddNamespaceFlag(fs *pflag.FlagSet, namespace *string) {
	fs.StringVarP(namespace, "namespace", "n", "", `namespace of the objects (default: the kubeconfig context's namespace, else "default", as kubectl does)`)
}

// ObjectNamespace is the namespace to read objects in, as kubectl picks it:
// -n when given, else the namespace of the kubeconfig context (--kubeconfig,
// KUBECONFIG, --context), else "default".
func ObjectNamespace(namespace string, kube *genericclioptions.ConfigFlags) string {
	if namespace != "" {
		return namespace
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{}
	if kube != nil && kube.KubeConfig != nil {
		rules.ExplicitPath = *kube.KubeConfig
	}
	if kube != nil && kube.Context != nil {
		overrides.CurrentContext = *kube.Context
	}
	if ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).Namespace(); err == nil && ns != "" {
		return ns
	}
	return "default"
}
