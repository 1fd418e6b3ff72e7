package codec

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

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
