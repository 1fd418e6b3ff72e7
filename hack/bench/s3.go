package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubectl-etcd/kubectl-etcd/internal/weed"
)

// The bucket and prefix the s3:// snapshot saves go to.
const (
	s3Bucket = "bench"
	s3Prefix = "snapshots/"
)

// s3SaveRow compares a snapshot save into an S3 store with a save to a
// file, of the same member: SeaweedFS's weed on 127.0.0.1 (plain HTTP,
// requests signed with the keys it is started with), its data on the
// same disk as the file's. Every run starts with an empty bucket.
func s3SaveRow(ctx context.Context, o options, work string, env, one []string, plugin, file string,
	add func(name, target string, a, b tool, met func(float64, sample) bool) error) error {
	dir := filepath.Join(work, "weed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	creds := &weed.Credentials{AccessKey: "AKIDKUBECTLETCDBENCH", SecretKey: "kubectl-etcd-bench-secret"}
	// Deleted objects stay in weed's volumes until it compacts them: room
	// for 200 volumes of 64 MiB (12.5 GiB, written only as needed) holds
	// every run of a 1 GiB database.
	srv, err := weed.Start(o.weed, dir, creds, "-volume.max", "200")
	if err != nil {
		return err
	}
	defer srv.Stop()
	if err := srv.CreateBucket(ctx, s3Bucket); err != nil {
		return fmt.Errorf("creating bucket %s: %w", s3Bucket, err)
	}
	s3env := append(append([]string{}, one...),
		"AWS_ACCESS_KEY_ID="+creds.AccessKey, "AWS_SECRET_ACCESS_KEY="+creds.SecretKey,
		"AWS_ENDPOINT_URL_S3="+srv.Endpoint, "AWS_REGION=us-east-1",
		// Nothing from this machine's AWS files, no instance metadata.
		"AWS_CONFIG_FILE="+filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
	empty := func() error { return srv.Empty(ctx, s3Bucket, s3Prefix) }
	url := "s3://" + s3Bucket + "/" + s3Prefix
	toS3 := tool{Name: "kubectl-etcd snapshot save s3://", Args: []string{plugin, "snapshot", "save", url, "--s3-path-style"}, Env: s3env, Before: empty}
	// The store's first writes create its volumes (seconds): one save
	// before the measured ones.
	if _, err := runOnce(ctx, env, toS3); err != nil {
		return fmt.Errorf("a first save into the store: %w", err)
	}
	const rssLimit = 150 << 20
	return add("snapshot save to s3:// vs to a file (time ratio; throughput = 1/ratio)", "throughput >= 0.9x, peak < 150 MiB",
		toS3,
		tool{Name: "kubectl-etcd snapshot save FILE", Args: []string{plugin, "snapshot", "save", file}, Env: one, Before: removeAll(file, file+".json")},
		func(r float64, sa sample) bool { return 1/r >= 0.9 && sa.maxRSS() < rssLimit })
}
