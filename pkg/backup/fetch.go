package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// Fetched is a snapshot made readable as a local file: the file itself
// when it is local and not encrypted, otherwise a temporary copy of the
// decrypted bytes (still compressed, if it was), removed by Close.
type Fetched struct {
	// Path is the local file to read; Source what the user named.
	Path   string
	Source string
	// Encrypted says it was decrypted on the way. Metadata is the save's
	// metadata when the location has it.
	Encrypted bool
	Metadata  *snapshot.Result
	temporary bool
}

// Close removes the temporary copy, if any.
func (f *Fetched) Close() {
	if f.temporary {
		os.Remove(f.Path)
	}
}

// Fetcher fetches snapshots.
type Fetcher struct {
	S3 objectstore.S3Options
	// Identities decrypt age-encrypted snapshots (--identity).
	Identities []age.Identity
	// TempDir holds the copies (os.TempDir when empty).
	TempDir string
}

// Fetch reads src, a local path or an s3:// URL, into a local file:
// streamed, decrypted when it is age-encrypted, and checked against the
// sha256 its metadata recorded, so a changed object fails here rather than
// in a restore.
func (f *Fetcher) Fetch(ctx context.Context, src string) (*Fetched, error) {
	loc, name, err := objectstore.ParseObject(src)
	if err != nil {
		return nil, err
	}
	if !loc.IsS3() {
		head, err := readHead(src)
		if err != nil {
			return nil, fmt.Errorf("opening snapshot: %w", err)
		}
		if !IsEncrypted(head) {
			return &Fetched{Path: src, Source: src}, nil
		}
	}
	st, err := objectstore.Open(ctx, loc, f.S3)
	if err != nil {
		return nil, err
	}
	out := &Fetched{Source: src}
	if md, err := readMetadata(ctx, st, name); err == nil {
		out.Metadata = md
	}
	r, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	stored := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(r, stored), 1<<20)
	head, _ := br.Peek(len(ageMagic))
	var plain io.Reader = br
	if IsEncrypted(head) {
		out.Encrypted = true
		if plain, err = decrypt(src, br, f.Identities); err != nil {
			return nil, err
		}
	}
	tmp, err := os.CreateTemp(f.TempDir, "kubectl-etcd-fetch-*.db")
	if err != nil {
		return nil, fmt.Errorf("a temporary copy of %s: %w", src, err)
	}
	out.Path, out.temporary = tmp.Name(), true
	defer func() {
		if err != nil {
			out.Close()
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if _, err = io.Copy(bw, plain); err != nil {
		tmp.Close()
		if out.Encrypted && !errors.Is(err, context.Canceled) {
			return nil, &snapshot.CorruptError{Path: src, Reason: fmt.Sprintf("the encrypted data does not decrypt: %v", err)}
		}
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	// Drain what age left unread so the stored hash covers every byte.
	if _, err = io.Copy(io.Discard, br); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	if err = bw.Flush(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing a copy of %s: %w", src, err)
	}
	if err = tmp.Close(); err != nil {
		return nil, err
	}
	if md := out.Metadata; md != nil && md.SHA256 != "" {
		if got := hex.EncodeToString(stored.Sum(nil)); got != md.SHA256 {
			err = &snapshot.CorruptError{Path: src, Reason: fmt.Sprintf("its sha256 %s differs from %s recorded when it was saved: it changed since", got, md.SHA256)}
			return nil, err
		}
	}
	return out, nil
}

func readHead(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	head := make([]byte, len(ageMagic))
	n, _ := io.ReadFull(fh, head)
	return head[:n], nil
}
