package snapshot

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
)

// storeFlags are how the commands reach an object store beyond the AWS
// SDK's own environment and files.
type storeFlags struct {
	objectstore.S3Options
	// chunkSize is --s3-multipart-chunksize as given.
	chunkSize string
}

func (f *storeFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Endpoint, "s3-endpoint", "", "URL of an S3-compatible store (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the AWS config file, or AWS)")
	fs.BoolVar(&f.PathStyle, "s3-path-style", false, "address buckets as ENDPOINT/BUCKET (most self-hosted stores need it) instead of BUCKET.ENDPOINT")
	fs.StringVar(&f.CAFile, "s3-ca-file", "", "PEM file of CA certificates to trust for the store, on top of the system's")
}

// AddUploadFlags adds the flags of a multipart upload, named after the
// AWS CLI's multipart_chunksize and max_concurrent_requests settings.
func (f *storeFlags) AddUploadFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.chunkSize, "s3-multipart-chunksize", fmt.Sprintf("%dMiB", objectstore.DefaultPartSize>>20),
		"size of each part of the multipart upload (5MiB to 5GiB); memory grows by this times --s3-max-concurrent-requests + 1")
	fs.IntVar(&f.Concurrency, "s3-max-concurrent-requests", objectstore.DefaultConcurrency,
		"parts uploaded at once, while the next one fills")
}

// uploadFlags are the flags only an s3:// location takes.
var uploadFlags = []string{"s3-endpoint", "s3-path-style", "s3-ca-file", "s3-multipart-chunksize", "s3-max-concurrent-requests"}

// parseUpload reads --s3-multipart-chunksize and checks both upload
// flags against S3's limits.
func (f *storeFlags) parseUpload() error {
	n, err := humanize.ParseBytes(f.chunkSize)
	if err != nil {
		return fmt.Errorf("--s3-multipart-chunksize %q: not a size such as 16MiB", f.chunkSize)
	}
	if n < objectstore.MinPartSize || n > objectstore.MaxPartSize {
		return fmt.Errorf("--s3-multipart-chunksize %s: S3 takes parts of 5MiB to 5GiB", f.chunkSize)
	}
	f.PartSize = int64(n)
	if f.Concurrency < 1 {
		return fmt.Errorf("--s3-max-concurrent-requests must be 1 or more, got %d", f.Concurrency)
	}
	return nil
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
