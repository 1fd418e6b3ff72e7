package storage

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// EncodeFor encodes doc as kube-apiserver stores it and encrypts it for its
// key when d has an encryption config. key "" is where the apiserver would
// store the object.
func EncodeFor(d *Decoder, prefix, key string, doc []byte) ([]byte, error) {
	value, gvk, err := Encode(doc)
	if err != nil {
		return nil, err
	}
	if d.Encryption == nil {
		return value, nil
	}
	resource, path := ResourceFor(gvk)
	if key == "" {
		ns, name, err := namespaceName(doc)
		if err != nil {
			return nil, err
		}
		key = ObjectKey(prefix, path, ns, name)
	} else if k, ok := ParseKey(prefix, key); ok {
		resource = k.Resource()
		if !strings.Contains(resource, ".") && gvk.Group != "" && !strings.Contains(path, ".") {
			resource += "." + gvk.Group
		}
	}
	return d.Encryption.Encrypt(resource, key, value)
}

// namespaceName reads metadata.namespace and metadata.name of a document.
func namespaceName(doc []byte) (string, string, error) {
	var m struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &m); err != nil {
		return "", "", err
	}
	if m.Metadata.Name == "" {
		return "", "", fmt.Errorf("the object has no metadata.name: give --storage-key")
	}
	return m.Metadata.Namespace, m.Metadata.Name, nil
}
