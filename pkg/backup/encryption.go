// Package backup manages the snapshots kept in a backup location (a
// directory or an S3 prefix, see pkg/objectstore): their encryption to age
// recipients, the catalog read from their metadata objects, retention,
// deletion, fetching one back (decrypted and checked) for status or
// restore, and the restore drill that proves one would restore.
package backup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// Recipients are the age public keys a snapshot is encrypted to.
type Recipients struct {
	List []age.Recipient
	// Names are the keys as given (age1...), for the metadata.
	Names []string
}

// ParseRecipients reads --encrypt-to values: each an age public key
// (age1..., age1pq1...) or a file of them, one a line, # comments allowed.
func ParseRecipients(values []string) (*Recipients, error) {
	r := &Recipients{}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "age1") {
			rec, err := parseRecipient(v)
			if err != nil {
				return nil, err
			}
			r.List, r.Names = append(r.List, rec), append(r.Names, v)
			continue
		}
		if strings.HasPrefix(v, "AGE-SECRET-KEY-") {
			return nil, errors.New("--encrypt-to got an age secret key: give the public key (age-keygen -y KEYFILE prints it), and keep the secret key away from the cluster")
		}
		data, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("--encrypt-to %q is neither an age public key (age1...) nor a readable file: %w", v, err)
		}
		found := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if strings.HasPrefix(line, "AGE-SECRET-KEY-") {
				return nil, fmt.Errorf("--encrypt-to %s holds an age secret key: give a file of public keys (age-keygen -y KEYFILE prints them)", v)
			}
			rec, err := parseRecipient(line)
			if err != nil {
				return nil, fmt.Errorf("--encrypt-to %s: %w", v, err)
			}
			r.List, r.Names = append(r.List, rec), append(r.Names, line)
			found++
		}
		if found == 0 {
			return nil, fmt.Errorf("--encrypt-to %s holds no age public key", v)
		}
	}
	return r, nil
}

func parseRecipient(s string) (age.Recipient, error) {
	var rec age.Recipient
	var err error
	if strings.HasPrefix(s, "age1pq1") {
		rec, err = age.ParseHybridRecipient(s)
	} else {
		rec, err = age.ParseX25519Recipient(s)
	}
	if err != nil {
		return nil, fmt.Errorf("age public key %q: %v", short(s), err)
	}
	return rec, nil
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return s
}

// Encrypter returns a function that encrypts a stream to r, for
// snapshot.StoreSaver.
func (r *Recipients) Encrypter() func(io.Writer) (io.WriteCloser, error) {
	return func(w io.Writer) (io.WriteCloser, error) { return age.Encrypt(w, r.List...) }
}

// LoadIdentities reads an age identity file (--identity): secret keys, one
// a line, as age-keygen writes them.
func LoadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--identity: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("--identity %s: %v", path, err)
	}
	return ids, nil
}

// ageMagic starts every age file (the binary format; armored files start
// with a PEM line and are not what saves write).
var ageMagic = []byte("age-encryption.org/v1\n")

// IsEncrypted reports whether head, the first bytes of a file, starts an
// age file.
func IsEncrypted(head []byte) bool { return bytes.HasPrefix(head, ageMagic) }

// ErrNoIdentity is wrapped when an encrypted snapshot is read without
// --identity.
var ErrNoIdentity = errors.New("it is encrypted with age: pass --identity FILE with a secret key of one of its recipients")

// decrypt returns a reader of the plaintext of an age stream.
func decrypt(name string, r io.Reader, ids []age.Identity) (io.Reader, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrNoIdentity)
	}
	plain, err := age.Decrypt(r, ids...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("%s is encrypted to other recipients: no key in --identity can read it", name)
		}
		return nil, fmt.Errorf("%s: reading its age header: %v", name, err)
	}
	return plain, nil
}
