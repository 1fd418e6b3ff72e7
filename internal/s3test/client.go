package s3test

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Client returns an S3 client of the AWS SDK for the server, path-style,
// signed with the server's credentials (any keys when it has none): what a
// test uses to look at the bucket behind the plugin's back.
func (s *Server) Client() *s3.Client {
	creds := Credentials{AccessKey: "any", SecretKey: "any"}
	if s.Credentials != nil {
		creds = *s.Credentials
	}
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKey, creds.SecretKey, ""),
	})
}

func createBucket(ctx context.Context, s *Server, name string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}

// Keys lists every object key in bucket under prefix, in order.
func (s *Server) Keys(ctx context.Context, bucket, prefix string) []string {
	s.T.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			s.T.Fatalf("listing s3://%s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// Uploads lists the keys of multipart uploads in bucket that are neither
// completed nor aborted.
func (s *Server) Uploads(ctx context.Context, bucket string) []string {
	s.T.Helper()
	out, err := s.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		s.T.Fatalf("listing uploads in %s: %v", bucket, err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// AbortUploads aborts every unfinished multipart upload in bucket.
func (s *Server) AbortUploads(ctx context.Context, bucket string) {
	s.T.Helper()
	out, err := s.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		s.T.Fatalf("listing uploads in %s: %v", bucket, err)
	}
	for _, u := range out.Uploads {
		if _, err := s.Client().AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
			s.T.Fatalf("aborting %s: %v", aws.ToString(u.Key), err)
		}
	}
}
