package objectstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// S3Options are what the command line adds to the AWS SDK's own settings.
type S3Options struct {
	// Endpoint is the store's URL (--s3-endpoint), for stores other than
	// AWS; empty leaves it to AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the
	// shared config, or AWS itself.
	Endpoint string
	// PathStyle addresses buckets as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT (--s3-path-style): most self-hosted stores need it.
	PathStyle bool
	// CAFile is a PEM bundle to trust on top of the system's (--s3-ca-file).
	CAFile string
	// PartSize is the size of each part of a multipart upload (default
	// DefaultPartSize); Concurrency how many parts are in flight at once
	// (default DefaultConcurrency). Memory is about their product.
	PartSize    int64
	Concurrency int
}

// Multipart upload defaults: 5 MiB parts (S3's smallest), two in flight
// while a third fills, so a save holds 15 MiB of parts and a 1 GiB
// database takes 205 (S3 allows 10,000 parts: 48 GiB at 5 MiB, six times
// etcd's largest quota). The parts live on the Go heap until sent, so
// memory grows by PartsInMemory. Measured on the 1 GiB database of
// docs/benchmarks.md against weed on the same machine: one 16 MiB part in
// flight was about as fast (the store's CPU bounds both) and peaked at
// 152 MiB against 110-138 MiB; four 8 MiB parts peaked at 190 MiB on a
// 466 MB database.
const (
	DefaultPartSize    = MinPartSize
	DefaultConcurrency = 2
	// MinPartSize is S3's smallest part but the last, MaxPartSize its
	// largest.
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
)

// PartsInMemory is how many bytes of parts an upload holds at most: those
// in flight and the one filling.
func (o S3Options) PartsInMemory() int64 {
	o = o.withDefaults()
	return o.PartSize * int64(o.Concurrency+1)
}

func (o S3Options) withDefaults() S3Options {
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	return o
}

// S3 is a prefix of an S3 bucket.
type S3 struct {
	Client *s3.Client
	Bucket string
	Prefix string
	opts   S3Options
}

// defaultRegion is used when the SDK's chain names none: S3-compatible
// stores mostly ignore it, but requests must be signed for some region.
const defaultRegion = "us-east-1"

func openS3(ctx context.Context, loc Location, opts S3Options) (*S3, error) {
	var loadOpts []func(*config.LoadOptions) error
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--s3-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--s3-ca-file %s holds no PEM certificate", opts.CAFile)
		}
		client := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = pool
		})
		loadOpts = append(loadOpts, config.WithHTTPClient(client))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("reading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		// Objects uploaded in parts carry a checksum of checksums, which
		// the SDK cannot check on download and says so on stderr each
		// time; the sha256 in the metadata checks the whole object.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	opts = opts.withDefaults()
	if opts.PartSize < MinPartSize || opts.PartSize > MaxPartSize {
		return nil, fmt.Errorf("part size %d is outside S3's 5 MiB to 5 GiB", opts.PartSize)
	}
	return &S3{Client: client, Bucket: loc.Bucket, Prefix: loc.Prefix, opts: opts}, nil
}

func (s *S3) String() string { return "s3://" + s.Bucket + "/" + s.Prefix }

// URL is the object's s3:// URL.
func (s *S3) URL(name string) string { return s.String() + name }

func (s *S3) key(name string) string { return s.Prefix + name }

// describe turns an SDK error into one line naming the object and what
// the store said, without the SDK's request IDs.
func (s *S3) describe(what, name string, err error) error {
	target := s.URL(name)
	if name == "" {
		target = s.String()
	}
	var nsb *types.NoSuchBucket
	if errors.As(err, &nsb) {
		return fmt.Errorf("%s %s: bucket %s does not exist", what, target, s.Bucket)
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return fmt.Errorf("%s %s: %w", what, target, ErrNotFound)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%s %s: bucket %s does not exist", what, target, s.Bucket)
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%s %s: %w", what, target, ErrNotFound)
		}
		msg := ae.ErrorMessage()
		if msg == "" {
			msg = "the store refused the request"
		}
		return fmt.Errorf("%s %s: %s (%s)", what, target, msg, ae.ErrorCode())
	}
	// A certificate the client does not trust: say which flag fixes it,
	// without the SDK's retry and request details around it.
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		var ua x509.UnknownAuthorityError
		switch {
		case errors.As(cve.Err, &ua) && s.opts.CAFile != "":
			return fmt.Errorf("%s %s: the store's TLS certificate is not signed by a CA of --s3-ca-file %s (%v)", what, target, s.opts.CAFile, cve.Err)
		case errors.As(cve.Err, &ua):
			return fmt.Errorf("%s %s: the store's TLS certificate is signed by an unknown CA (%v): pass that CA's certificate with --s3-ca-file", what, target, cve.Err)
		}
		return fmt.Errorf("%s %s: the store's TLS certificate is not accepted: %v", what, target, cve.Err)
	}
	// A store that cannot be reached: the network error says it all,
	// without the SDK's retry and request details around it.
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("%s %s: %v", what, target, oe)
	}
	return fmt.Errorf("%s %s: %w", what, target, err)
}

// Open streams an object.
func (s *S3) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: aws.String(s.key(name))})
	if err != nil {
		return nil, s.describe("reading", name, err)
	}
	return out.Body, nil
}

// Put writes a small object with its sha256, so the store checks it.
func (s *S3) Put(ctx context.Context, name string, data []byte) error {
	sum := sha256.Sum256(data)
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.Bucket, Key: aws.String(s.key(name)), Body: bytes.NewReader(data),
		ContentLength:     aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err != nil {
		return s.describe("writing", name, err)
	}
	return nil
}

// List lists the objects directly under the prefix.
func (s *S3) List(ctx context.Context) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{
		Bucket: &s.Bucket, Prefix: aws.String(s.Prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.describe("listing", "", err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.Prefix)
			if name == "" || strings.Contains(name, "/") {
				continue
			}
			out = append(out, Object{Name: name, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes an object.
func (s *S3) Delete(ctx context.Context, name string) error {
	_, err := s.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: aws.String(s.key(name))})
	if err != nil {
		return s.describe("deleting", name, err)
	}
	return nil
}

// AbortStale aborts the multipart uploads under the prefix started before
// the given time: those of saves killed before they could abort them.
// Parts of an unfinished upload cost storage but are never an object.
func (s *S3) AbortStale(ctx context.Context, before time.Time) ([]string, error) {
	out, err := s.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket, Prefix: aws.String(s.Prefix)})
	if err != nil {
		return nil, s.describe("listing unfinished uploads in", "", err)
	}
	var aborted []string
	for _, u := range out.Uploads {
		if u.Initiated == nil || !u.Initiated.Before(before) {
			continue
		}
		if _, err := s.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.Bucket, Key: u.Key, UploadId: u.UploadId}); err != nil {
			return aborted, s.describe("aborting the unfinished upload of", strings.TrimPrefix(aws.ToString(u.Key), s.Prefix), err)
		}
		aborted = append(aborted, "s3://"+s.Bucket+"/"+aws.ToString(u.Key)+" (unfinished upload)")
	}
	return aborted, nil
}

// Create starts a multipart upload. Parts carry their sha256, which the
// store checks (and object-locked buckets require); the object exists only
// once Commit completes the upload.
func (s *S3) Create(ctx context.Context, name string) (Upload, error) {
	out, err := s.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.Bucket, Key: aws.String(s.key(name)),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return nil, s.describe("starting the upload of", name, err)
	}
	u := &s3Upload{
		s: s, name: name, id: aws.ToString(out.UploadId),
		buf:  make([]byte, 0, s.opts.PartSize),
		sem:  make(chan struct{}, s.opts.Concurrency),
		free: make(chan []byte, s.opts.Concurrency+1),
	}
	// The upload outlives a cancelled write only as long as Abort needs.
	u.ctx, u.cancel = context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, u.cancel)
	u.stop = stop
	return u, nil
}

type s3Upload struct {
	s      *S3
	name   string
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool

	buf  []byte
	sem  chan struct{}
	free chan []byte
	wg   sync.WaitGroup

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error
	done  bool
	next  int32
}

func (u *s3Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if err := u.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		c := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+c]
		p = p[c:]
		if len(u.buf) == cap(u.buf) {
			if err := u.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// flush sends the buffered part in the background, waiting while
// Concurrency parts are already in flight.
func (u *s3Upload) flush() error {
	if len(u.buf) == 0 && u.next > 0 {
		return nil
	}
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
	if err := u.failed(); err != nil {
		<-u.sem
		return err
	}
	u.next++
	num, part := u.next, u.buf
	select {
	case b := <-u.free:
		u.buf = b[:0]
	default:
		u.buf = make([]byte, 0, u.s.opts.PartSize)
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer func() { <-u.sem }()
		err := u.sendPart(num, part)
		u.free <- part[:0]
		if err != nil {
			u.mu.Lock()
			if u.err == nil {
				u.err = err
			}
			u.mu.Unlock()
			u.cancel()
		}
	}()
	return nil
}

func (u *s3Upload) sendPart(num int32, data []byte) error {
	sum := sha256.Sum256(data)
	checksum := base64.StdEncoding.EncodeToString(sum[:])
	out, err := u.s.Client.UploadPart(u.ctx, &s3.UploadPartInput{
		Bucket: &u.s.Bucket, Key: aws.String(u.s.key(u.name)), UploadId: &u.id,
		PartNumber: aws.Int32(num), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(checksum),
	}, signPayloadHash(sum))
	if err != nil {
		if u.ctx.Err() != nil {
			return context.Cause(u.ctx)
		}
		return u.s.describe(fmt.Sprintf("uploading part %d of", num), u.name, err)
	}
	u.mu.Lock()
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumSHA256: aws.String(checksum)})
	u.mu.Unlock()
	return nil
}

// signPayloadHash gives SigV4 the part's sha256, which sendPart has
// already computed for the part's checksum. Over plain HTTP the SDK signs
// the payload's sha256 (X-Amz-Content-Sha256) and would otherwise read the
// part again to compute the same hash: a third pass over every byte
// beside ours and the stream's check. The request is signed exactly as
// before (same header, same value; over TLS a signed payload instead of
// UNSIGNED-PAYLOAD), and the store still checks the body against it.
func signPayloadHash(sum [sha256.Size]byte) func(*s3.Options) {
	hash := hex.EncodeToString(sum[:])
	preset := middleware.FinalizeMiddlewareFunc("PresetPayloadHash", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		return next.HandleFinalize(v4.SetPayloadHash(ctx, hash), in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			// The SDK's step that hashes the payload does nothing when the
			// hash is already set.
			return st.Finalize.Insert(preset, "ComputePayloadHash", middleware.Before)
		})
	}
}

// Commit sends the last part, waits for every part and completes the
// upload. On any failure the upload is aborted.
func (u *s3Upload) Commit(context.Context) error {
	err := u.flush()
	u.wg.Wait()
	if err == nil {
		err = u.failed()
	}
	if err != nil {
		u.Abort()
		return err
	}
	sort.Slice(u.parts, func(i, j int) bool { return *u.parts[i].PartNumber < *u.parts[j].PartNumber })
	_, err = u.s.Client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.s.Bucket, Key: aws.String(u.s.key(u.name)), UploadId: &u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		u.Abort()
		return u.s.describe("completing the upload of", u.name, err)
	}
	u.done = true
	u.finish()
	return nil
}

// Abort waits for parts in flight and aborts the upload, so the store
// drops its parts. It has its own short deadline: the caller's context is
// often the one that was cancelled.
func (u *s3Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.cancel()
	u.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = u.s.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.s.Bucket, Key: aws.String(u.s.key(u.name)), UploadId: &u.id})
	u.finish()
}

func (u *s3Upload) finish() {
	u.stop()
	u.cancel()
}
