package snapshot

import (
	"github.com/spf13/pflag"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
)

// storeFlags are how the commands reach an object store beyond the AWS
// SDK's own environment and files.
type storeFlags struct {
	objectstore.S3Options
}

func (f *storeFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Endpoint, "s3-endpoint", "", "URL of an S3-compatible store (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the AWS config file, or AWS)")
	fs.BoolVar(&f.PathStyle, "s3-path-style", false, "address buckets as ENDPOINT/BUCKET (most self-hosted stores need it) instead of BUCKET.ENDPOINT")
	fs.StringVar(&f.CAFile, "s3-ca-file", "", "PEM file of CA certificates to trust for the store, on top of the system's")
}

// identityFlags read encrypted snapshots.
type identityFlags struct {
	IdentityFile string
}

func (f *identityFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.IdentityFile, "identity", "", "age identity file (secret keys, as age-keygen writes them) to decrypt an encrypted snapshot")
}

// fetcher reads snapshots from files and stores, decrypting with the
// identity when one is given.
func fetcher(s storeFlags, id identityFlags) (*backup.Fetcher, error) {
	f := &backup.Fetcher{S3: s.S3Options}
	if id.IdentityFile != "" {
		ids, err := backup.LoadIdentities(id.IdentityFile)
		if err != nil {
			return nil, err
		}
		f.Identities = ids
	}
	return f, nil
}
