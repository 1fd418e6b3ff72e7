package s3test

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Client returns an S3 client of the AWS SDK for the server, path-style,
// signed with the server's credentials (any keys when it has none): what a
// test uses to look at the bucket behind the plugin's back.
func (s *Server) Client() *s3.Client { return s.srv.Client() }

// CreateBucket creates a bucket through the S3 API. With credentials on,
// the request is signed by the AWS SDK (see Client).
func (s *Server) CreateBucket(ctx context.Context, name string) {
	s.T.Helper()
	if err := s.srv.CreateBucket(ctx, name); err != nil {
		s.T.Fatalf("creating bucket %s: %v", name, err)
	}
}

// Keys lists every object key in bucket under prefix, in order.
func (s *Server) Keys(ctx context.Context, bucket, prefix string) []string {
	s.T.Helper()
	keys, err := s.srv.Keys(ctx, bucket, prefix)
	if err != nil {
		s.T.Fatal(err)
	}
	return keys
}

// Uploads lists the keys of multipart uploads in bucket that are neither
// completed nor aborted.
func (s *Server) Uploads(ctx context.Context, bucket string) []string {
	s.T.Helper()
	ups, err := s.srv.Uploads(ctx, bucket)
	if err != nil {
		s.T.Fatal(err)
	}
	var keys []string
	for _, u := range ups {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// AbortUploads aborts every unfinished multipart upload in bucket.
func (s *Server) AbortUploads(ctx context.Context, bucket string) {
	s.T.Helper()
	if err := s.srv.AbortUploads(ctx, bucket); err != nil {
		s.T.Fatal(err)
	}
}
