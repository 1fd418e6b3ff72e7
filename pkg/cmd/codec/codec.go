// Package codec holds `kubectl etcd decode` and `kubectl etcd encode`: one
// stored value to YAML or JSON and back, without a cluster.
package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/printer"
)

// DecodeOptions are the options of `kubectl etcd decode`.
type DecodeOptions struct {
	*cmdutil.Factory
	cmdutil.StorageFlags
	File string
	// StorageKey is the etcd key the value was stored under: aesgcm and kms
	// authenticates it.
	StorageKey  string
	Output      string
	ModRevision int64
}

// NewCmdDecode returns the decode command.
func NewCmdDecode(f *cmdutil.Factory) *cobra.Command {
	o := &DecodeOptions{Output: printer.OutputYAML}
	cmd := &cobra.Command{
		Use:   "decode [-f FILE]",
		Short: "Decode one stored etcd value into YAML or JSON",
		Long: `Decode one value as kube-apiserver stored it in etcd (protobuf with the
k8s\x00 prefix, JSON, or encrypted at rest) into the object kubectl shows.
The value is read from standard input, or from -f.`,
		Example: `  # A value fetched with etcdctl
  etcdctl get /registry/pods/default/web --print-value-only | kubectl etcd decode

  # An encrypted secret, as JSON
  kubectl etcd decode -f secret.bin -o json --encryption-provider-config enc.yaml --storage-key /registry/secrets/default/db`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVarP(&o.File, "filename", "f", "-", "file holding the value; - for standard input")
	cmd.Flags().StringVar(&o.StorageKey, "storage-key", "", "the etcd key the value was stored under (needed to decrypt aesgcm and kms values)")
	cmd.Flags().Int64Var(&o.ModRevision, "mod-revision", 0, "set metadata.resourceVersion to this revision")
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "output format: yaml or json")
	o.StorageFlags.AddFlags(cmd.Flags())
	return cmd
}

func readInput(in io.Reader, file string) ([]byte, error) {
	if file == "-" || file == "" {
		return io.ReadAll(in)
	}
	return os.ReadFile(file)
}

// Complete binds the factory.
func (o *DecodeOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	return nil
}

// Validate checks the format.
func (o *DecodeOptions) Validate() error {
	return output.Validate(o.Output, printer.OutputYAML, printer.OutputJSON)
}

// Run decodes and prints.
func (o *DecodeOptions) Run(context.Context) error {
	d, err := o.Decoder()
	if err != nil {
		return err
	}
	value, err := readInput(o.In, o.File)
	if err != nil {
		return err
	}
	key := o.StorageKey
	if key == "" {
		key = "(value)"
	}
	obj, err := d.Decode(key, value, o.ModRevision)
	if err != nil && bytes.HasSuffix(value, []byte("\n")) {
		// etcdctl get --print-value-only ends the value with a newline.
		if o2, err2 := d.Decode(key, value[:len(value)-1], o.ModRevision); err2 == nil {
			obj, err, value = o2, nil, value[:len(value)-1]
		}
	}
	if err != nil {
		return err
	}
	if obj.Object == nil {
		return fmt.Errorf("the value is not a Kubernetes object (no protobuf envelope, not a JSON object with apiVersion and kind)")
	}
	if obj.Partial != nil {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", obj.Partial)
	}
	p := &printer.Printer{Out: o.Out, ErrOut: o.ErrOut, Format: o.Output}
	return p.Print(storage.KV{Key: key, Value: value, ModRevision: o.ModRevision}, obj)
}

// EncodeOptions are the options of `kubectl etcd encode`.
type EncodeOptions struct {
	*cmdutil.Factory
	cmdutil.StorageFlags
	File       string
	StorageKey string
}

// NewCmdEncode returns the encode command.
func NewCmdEncode(f *cmdutil.Factory) *cobra.Command {
	o := &EncodeOptions{}
	cmd := &cobra.Command{
		Use:   "encode -f FILE",
		Short: "Encode an object into the bytes kube-apiserver would store",
		Long: `Encode one object (YAML or JSON) into the bytes kube-apiserver stores in etcd:
protobuf with the k8s\x00 prefix for built-in kinds, JSON for custom
resources, encrypted with the write key of --encryption-provider-config when
the config covers the resource. metadata.resourceVersion is dropped, as the
apiserver does. The bytes go to standard output.`,
		Example: `  # The stored form of a config map
  kubectl etcd encode -f cm.yaml > cm.bin

  # Encrypted as the apiserver would, for its key
  kubectl etcd encode -f secret.yaml --encryption-provider-config enc.yaml`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVarP(&o.File, "filename", "f", "", "file holding the object; - for standard input")
	cmd.Flags().StringVar(&o.StorageKey, "storage-key", "", "the etcd key to encrypt for (default: where the apiserver stores the object)")
	o.StorageFlags.AddFlags(cmd.Flags())
	return cmd
}

// Complete binds the factory.
func (o *EncodeOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	return nil
}

// Validate checks that there is a file.
func (o *EncodeOptions) Validate() error {
	if o.File == "" {
		return errors.New("-f is required (- for standard input)")
	}
	return nil
}

// Run encodes and writes the bytes.
func (o *EncodeOptions) Run(context.Context) error {
	d, err := o.Decoder()
	if err != nil {
		return err
	}
	doc, err := readInput(o.In, o.File)
	if err != nil {
		return err
	}
	value, err := storage.EncodeFor(d, o.StoragePrefix, o.StorageKey, doc)
	if err != nil {
		return err
	}
	_, err = o.Out.Write(value)
	return err
}
