// Package s3bucket looks at and empties a bucket of an S3 store that a
// test or the benchmark runs on this machine, through the AWS SDK and
// behind the plugin's back: SeaweedFS's weed (internal/weed) or the
// benchmark's in-memory store (hack/bench/s3mem).
package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Client returns a path-style S3 client for endpoint, signed with the
// given keys; hc (nil: the SDK's own) carries the TLS settings of an
// HTTPS endpoint.
func Client(endpoint, accessKey, secretKey string, hc *http.Client) *s3.Client {
	o := s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return s3.New(o)
}

// Create creates a bucket.
func Create(ctx context.Context, c *s3.Client, name string) error {
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}

// Keys lists every object key in bucket under prefix, in order.
func Keys(ctx context.Context, c *s3.Client, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// Uploads lists the multipart uploads in bucket that are neither
// completed nor aborted.
func Uploads(ctx context.Context, c *s3.Client, bucket string) ([]types.MultipartUpload, error) {
	out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	// gofakes3 answers NoSuchUpload for a bucket that never had one.
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing uploads in %s: %w", bucket, err)
	}
	return out.Uploads, nil
}

// AbortUploads aborts every unfinished multipart upload in bucket.
func AbortUploads(ctx context.Context, c *s3.Client, bucket string) error {
	ups, err := Uploads(ctx, c, bucket)
	if err != nil {
		return err
	}
	for _, u := range ups {
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
			return fmt.Errorf("aborting %s: %w", aws.ToString(u.Key), err)
		}
	}
	return nil
}

// Empty removes every object under prefix in bucket and aborts every
// unfinished upload there.
func Empty(ctx context.Context, c *s3.Client, bucket, prefix string) error {
	keys, err := Keys(ctx, c, bucket, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			return fmt.Errorf("deleting s3://%s/%s: %w", bucket, k, err)
		}
	}
	return AbortUploads(ctx, c, bucket)
}
