package s3bucket

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUploads checks how the answers of a store to ListMultipartUploads
// are read: gofakes3's NoSuchUpload for a bucket that never had an upload
// is an empty list; other errors are errors.
func TestUploads(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		want    int
		wantErr bool
	}{
		{name: "uploads", status: http.StatusOK, want: 1, body: `<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult><Bucket>b</Bucket><Upload><Key>k</Key><UploadId>u</UploadId></Upload></ListMultipartUploadsResult>`},
		{name: "none yet in gofakes3", status: http.StatusNotFound, want: 0,
			body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>NoSuchUpload</Message></Error>`},
		{name: "no bucket", status: http.StatusNotFound, wantErr: true,
			body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>no bucket</Message></Error>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			ups, err := Uploads(context.Background(), Client(srv.URL, "a", "b", nil), "b")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if len(ups) != tc.want {
				t.Fatalf("%d uploads, want %d", len(ups), tc.want)
			}
		})
	}
}
