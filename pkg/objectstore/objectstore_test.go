package objectstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "s3://backups/etcd/prod/", want: "s3://backups/etcd/prod/"},
		{in: "s3://backups/etcd/prod", want: "s3://backups/etcd/prod/"},
		{in: "s3://backups", want: "s3://backups/"},
		{in: "s3://backups//a//b/", want: "s3://backups/a/b/"},
		{in: "/var/backups/etcd/", want: "/var/backups/etcd"},
		{in: "s3://Backups/x/", err: "lowercase"},
		{in: "s3://ab/", err: "3 to 63"},
		{in: "gs://bucket/x/", err: "gs:// is not supported"},
		{in: "", err: "no location"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			loc, err := ParseLocation(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseLocation(%q) = %v, want an error with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || loc.String() != tc.want {
				t.Fatalf("ParseLocation(%q) = %q, %v; want %q", tc.in, loc.String(), err, tc.want)
			}
		})
	}
}

func TestParseObject(t *testing.T) {
	loc, name, err := ParseObject("s3://backups/etcd/x.db.zst")
	if err != nil || loc.Bucket != "backups" || loc.Prefix != "etcd/" || name != "x.db.zst" {
		t.Fatalf("got %+v %q %v", loc, name, err)
	}
	if _, _, err := ParseObject("s3://backups/etcd/"); err == nil || !strings.Contains(err.Error(), "not an object") {
		t.Fatalf("a prefix: %v", err)
	}
	loc, name, err = ParseObject("/var/backups/a.db")
	if err != nil || loc.Dir != "/var/backups" || name != "a.db" {
		t.Fatalf("got %+v %q %v", loc, name, err)
	}
}

// exercise writes, lists, reads and deletes through a store, and checks
// that an aborted upload leaves nothing.
func exercise(t *testing.T, st Store, size int) {
	ctx := context.Background()
	data := make([]byte, size)
	rand.Read(data)
	up, err := st.Create(ctx, "a.db")
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes cross part boundaries.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20+7)
		if _, err := up.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	objs, _ := st.List(ctx)
	if len(objs) != 0 {
		t.Fatalf("before Commit the store lists %v; want nothing", objs)
	}
	if err := up.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "a.db.json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	aborted, err := st.Create(ctx, "b.db")
	if err != nil {
		t.Fatal(err)
	}
	aborted.Write(data)
	aborted.Abort()

	objs, err = st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Name != "a.db" || objs[0].Size != int64(size) || objs[1].Name != "a.db.json" {
		t.Fatalf("List = %+v; want a.db (%d bytes) and a.db.json", objs, size)
	}
	r, err := st.Open(ctx, "a.db")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v); want the %d written", len(got), err, len(data))
	}
	if _, err := st.Open(ctx, "missing.db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a missing object: %v; want ErrNotFound", err)
	}
	if err := st.Delete(ctx, "a.db"); err != nil {
		t.Fatal(err)
	}
	objs, _ = st.List(ctx)
	if len(objs) != 1 {
		t.Fatalf("after Delete: %+v", objs)
	}
}

func TestDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	exercise(t, &Dir{Path: dir}, 3<<20)
}

// TestS3 runs the same against a real S3 server (SeaweedFS), with the
// endpoint and keys from the AWS SDK's environment variables, parts small
// enough that the object takes several.
func TestS3(t *testing.T) {
	creds := s3test.Credentials{AccessKey: "AKIDBACKUPTEST", SecretKey: "backup-secret-key"}
	srv := s3test.Start(t, s3test.WithCredentials(creds))
	ctx := context.Background()
	srv.CreateBucket(ctx, "etcd-backups")
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretKey)
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	loc, _ := ParseLocation("s3://etcd-backups/cluster-a/")
	st, err := Open(ctx, loc, S3Options{PathStyle: true, PartSize: MinPartSize, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, st, 17<<20+123)
	if ups := srv.Uploads(ctx, "etcd-backups"); len(ups) != 0 {
		t.Fatalf("unfinished uploads left: %v", ups)
	}

	t.Log("A wrong secret key is one clear line")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	bad, err := Open(ctx, loc, S3Options{PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.List(ctx)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "s3://etcd-backups/cluster-a/") {
		t.Fatalf("listing with a wrong key: %v; want one line naming the location", err)
	}
	t.Log(err)

	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretKey)

	t.Log("AbortStale aborts an upload a killed writer left")
	up, err := st.Create(ctx, "killed.db")
	if err != nil {
		t.Fatal(err)
	}
	_ = up // never committed nor aborted, as after SIGKILL
	if got := srv.Uploads(ctx, "etcd-backups"); len(got) != 1 {
		t.Fatalf("uploads = %v; want the one left open", got)
	}
	removed, err := st.AbortStale(ctx, time.Now().Add(time.Minute))
	if err != nil || len(removed) != 1 {
		t.Fatalf("AbortStale = %v, %v", removed, err)
	}
	if got := srv.Uploads(ctx, "etcd-backups"); len(got) != 0 {
		t.Fatalf("uploads after AbortStale = %v", got)
	}
}

// TestS3PartsSignTheirHash checks what each part request carries: the
// signed payload hash (X-Amz-Content-Sha256) and the part's checksum are
// both the sha256 of the body sent, computed once by sendPart.
func TestS3PartsSignTheirHash(t *testing.T) {
	var mu sync.Mutex
	parts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPost && q.Has("uploads"):
			fmt.Fprint(w, `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPut && q.Get("partNumber") != "":
			sum := sha256.Sum256(body)
			if got := r.Header.Get("X-Amz-Content-Sha256"); got != hex.EncodeToString(sum[:]) {
				t.Errorf("part %s: X-Amz-Content-Sha256 %q, want the body's sha256 %x", q.Get("partNumber"), got, sum)
			}
			if got := r.Header.Get("X-Amz-Checksum-Sha256"); got != base64.StdEncoding.EncodeToString(sum[:]) {
				t.Errorf("part %s: X-Amz-Checksum-Sha256 %q, want the body's sha256", q.Get("partNumber"), got)
			}
			if !strings.Contains(r.Header.Get("Authorization"), "x-amz-content-sha256") {
				t.Errorf("part %s: the payload hash is not signed: %s", q.Get("partNumber"), r.Header.Get("Authorization"))
			}
			mu.Lock()
			parts++
			mu.Unlock()
			w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sum[:8]))
		case r.Method == http.MethodPost && q.Get("uploadId") != "":
			fmt.Fprint(w, `<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"x"</ETag></CompleteMultipartUploadResult>`)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx := context.Background()
	loc, _ := ParseLocation("s3://bucket/x/")
	st, err := Open(ctx, loc, S3Options{Endpoint: srv.URL, PathStyle: true, PartSize: MinPartSize, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	up, err := st.Create(ctx, "a.db")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2*MinPartSize+1000)
	_, _ = rand.Read(data)
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if parts != 3 {
		t.Fatalf("%d parts sent, want 3", parts)
	}
}
