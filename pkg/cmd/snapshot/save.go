package snapshot

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

const saveExample = `  # Save a snapshot of the healthiest member of the local control plane's etcd
  kubectl etcd snapshot save /var/backups/etcd.db

  # From one member, zstd-compressed
  kubectl etcd snapshot save etcd.db.zst --endpoint https://10.0.0.2:2379 --compress zstd

  # Into a directory, named by time and revision, keeping the newest 7 (for a scheduled job)
  kubectl etcd snapshot save /var/backups/etcd/ --retain 7 --compress gzip

  # Print what was saved as JSON
  kubectl etcd snapshot save etcd.db -o json

  # Also check every page of the database once saved (scheduled backups)
  kubectl etcd snapshot save /var/backups/etcd/ --retain 7 --verify full

  # Stream it to an S3 prefix, encrypted to two age keys, keeping 30
  kubectl etcd snapshot save s3://backups/etcd/prod/ --compress zstd --retain 30 \
    --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --encrypt-to /etc/etcd-backup/recipients.txt`

// SaveOptions are the options of `kubectl etcd snapshot save`.
type SaveOptions struct {
	*cmdutil.Factory
	Path        string
	Dir         bool
	Endpoint    string
	Compress    string
	Retain      int
	Overwrite   bool
	NoMetadata  bool
	Verify      string
	Print       *cmdutil.PrintFlags
	retainIsSet bool
	changed     map[string]bool

	// EncryptTo are age recipients (--encrypt-to); Store the S3 flags.
	// Location is set when Path is an s3:// URL.
	EncryptTo []string
	Store     storeFlags
	Location  *objectstore.Location
}

// NewCmdSave returns the snapshot save command.
func NewCmdSave(f *cmdutil.Factory) *cobra.Command {
	o := &SaveOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput), Verify: snapshot.VerifyQuick}
	cmd := &cobra.Command{
		Use:   "save FILE|DIR",
		Short: "Save a verified snapshot of the healthiest member to a file",
		Long: `Stream a snapshot from the healthiest member (or --endpoint) into FILE.part,
sync it to disk, check the sha256 trailer etcd appends and the database in
it, and only then rename it to FILE.

--verify quick (the default) checks every byte the member sent against the
sha256 trailer while it streams, then the database header, size, revision
and storage version; the member counts the live keys at that revision. It
is as fast as etcdctl's save. --verify full also reads the whole database
back: bbolt's integrity check of every page, etcdutl's hash and the live
keys counted from the file (about 2 s of CPU and the file's size in page
cache per GiB); use it for scheduled backups, where time matters less than
knowing the file restores. An interrupted save (Ctrl-C, a member
that dies) removes the partial file: a file with the final name is always
complete. A progress bar shows on a terminal; piped, the command is quiet.

Given a directory (an existing one, or a path ending in /), the file is
named by the UTC time and revision, etcd-snapshot-20261125T120000Z-rev1234.db,
and --retain N removes the oldest beyond N; partial files a killed save left
there are removed after a day. A metadata file FILE.json with
the revision, key count, hashes, member and etcd version goes beside it.

Given s3://BUCKET/PREFIX/, the snapshot streams into the bucket as it
arrives, with no local copy: a multipart upload whose parts carry their
sha256 (object-locked buckets require it), completed only once the sha256
trailer and the database structure check out, so the object appears
complete or not at all; an interrupted save aborts the upload. It is named
etcd-snapshot-TIME-MEMBERID.db[.gz|.zst][.age], its revision read from the
stream itself, and NAME.json goes beside it. Credentials, region and
endpoint come from the AWS SDK's usual sources (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL_S3,
AWS_ENDPOINT_URL, AWS_PROFILE and the shared files, web identity for pods);
--s3-endpoint, --s3-path-style and --s3-ca-file cover stores that need
them. --verify full keeps a temporary local copy to check every page before
the upload completes. --s3-multipart-chunksize and
--s3-max-concurrent-requests (the AWS CLI's multipart_chunksize and
max_concurrent_requests) size the upload: the parts in flight and the one
filling are held in memory, so a store far away may want more requests at
once, and a small pod fewer.

--encrypt-to encrypts the snapshot with age to each recipient (a public
key age1..., or a file of them) as it streams; status, restore and verify
read it with --identity.`,
		Example: saveExample,
		Args:    cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE:    cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVar(&o.Endpoint, "endpoint", "", "client URL of the member to stream from (default: the healthiest member)")
	cmd.Flags().StringVar(&o.Compress, "compress", "", "compress the file: gzip or zstd")
	cmd.Flags().IntVar(&o.Retain, "retain", 0, "when saving into a directory, keep this many snapshots and remove older ones (0 keeps all)")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace FILE when it exists (only after the new snapshot is verified)")
	cmd.Flags().BoolVar(&o.NoMetadata, "no-metadata", false, "do not write the FILE.json metadata file")
	cmd.Flags().StringVar(&o.Verify, "verify", o.Verify, "how to check the saved file: quick (sha256 trailer, header, revision) or full (also every page of the database)")
	cmd.Flags().StringArrayVar(&o.EncryptTo, "encrypt-to", nil, "encrypt the snapshot with age to this recipient: a public key (age1...) or a file of them; repeatable")
	o.Store.AddFlags(cmd.Flags())
	o.Store.AddUploadFlags(cmd.Flags())
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Complete reads the argument: an object store location, or a directory
// when it exists as one or ends in a path separator.
func (o *SaveOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Factory, o.Path = f, args[0]
	o.retainIsSet = cmd.Flags().Changed("retain")
	o.changed = cmdutil.ChangedFlags(cmd)
	if strings.Contains(o.Path, "://") {
		loc, err := objectstore.ParseLocation(o.Path)
		if err != nil {
			return cmdutil.UsageErrorf(cmd, "%v", err)
		}
		o.Location, o.Dir = &loc, true
		return o.Print.Complete()
	}
	if strings.HasSuffix(o.Path, "/") || strings.HasSuffix(o.Path, string(os.PathSeparator)) {
		o.Dir = true
	} else if fi, err := os.Stat(o.Path); err == nil && fi.IsDir() {
		o.Dir = true
	}
	return o.Print.Complete()
}

// Validate checks the options.
func (o *SaveOptions) Validate() error {
	if err := o.Print.Validate(); err != nil {
		return err
	}
	if o.Compress != "" && o.Compress != snapshot.Gzip && o.Compress != snapshot.Zstd {
		return fmt.Errorf("unknown --compress %q: use %s", o.Compress, strings.Join(snapshot.Compressions, " or "))
	}
	if o.Verify != snapshot.VerifyQuick && o.Verify != snapshot.VerifyFull {
		return fmt.Errorf("unknown --verify %q: use %s", o.Verify, strings.Join(snapshot.Verifications, " or "))
	}
	if o.Retain < 0 {
		return fmt.Errorf("--retain must be 0 or more, got %d", o.Retain)
	}
	if o.retainIsSet && !o.Dir {
		return fmt.Errorf("--retain needs a directory: %s is not one (end it with / to create it)", o.Path)
	}
	if o.Dir && o.Overwrite {
		return fmt.Errorf("--overwrite is for a file: a directory gets a new name each time")
	}
	if o.Location == nil {
		for _, f := range uploadFlags {
			if o.changed[f] {
				return fmt.Errorf("--%s are for an s3:// location", strings.Join(uploadFlags, ", --"))
			}
		}
	}
	return o.Store.parseUpload()
}

// Run saves the snapshot and prints what was saved.
func (o *SaveOptions) Run(ctx context.Context) error {
	if o.Location != nil || len(o.EncryptTo) > 0 {
		return o.runStore(ctx)
	}
	if o.Dir {
		if err := os.MkdirAll(o.Path, 0o700); err != nil {
			return fmt.Errorf("creating backup directory: %w", err)
		}
	}
	cfg, cli, err := o.ConnectedClient("a snapshot")
	if err != nil {
		return err
	}
	defer cli.Close()
	s := &snapshot.Saver{
		Config: cfg, Client: cli, Endpoint: o.Endpoint,
		Path: o.Path, Dir: o.Dir, Compression: o.Compress, Retain: o.Retain,
		Overwrite: o.Overwrite, NoMetadata: o.NoMetadata, Verify: o.Verify,
	}
	o.showProgress(s)
	res, err := s.Save(ctx)
	if err != nil && res == nil {
		return err
	}
	if perr := o.print(res); perr != nil {
		return perr
	}
	return err
}

// showProgress has s log its steps and draw a progress bar on the error
// stream when that is a terminal; a script's error stream gets neither.
func (o *SaveOptions) showProgress(s *snapshot.Saver) {
	if !isTerminal(o.ErrOut) {
		return
	}
	s.Log = o.ErrOut
	s.Progress = func(member string, total int64) snapshot.Meter {
		return newProgressBar(o.ErrOut, "snapshot of "+member, total)
	}
}

func (o *SaveOptions) print(res *snapshot.Result) error {
	return o.Print.Printer().PrintTable(o.Out, res, func(bool) ([]string, [][]string) {
		return []string{"FIELD", "VALUE"}, SaveRows(res)
	})
}

// SaveRows lists what a save reports, one field a row.
func SaveRows(res *snapshot.Result) [][]string {
	version := res.EtcdVersion
	if version == "" {
		version = "unknown (etcd before 3.6 does not say)"
	}
	if res.StorageVersion != "" {
		version += " (storage version " + res.StorageVersion + ")"
	}
	size := output.Bytes(res.FileSize)
	if res.Compression != "" {
		size += fmt.Sprintf(" %s, database %s", res.Compression, output.Bytes(res.TotalSize))
	}
	hash := fmt.Sprintf("%x (as etcdutl snapshot status prints it)", res.Hash)
	verified := "sha256 trailer, database header, revision (--verify quick)"
	if res.Verified == snapshot.VerifyFull {
		verified = "sha256 trailer and every database page (--verify full)"
	} else {
		hash = "not computed (--verify full computes it)"
	}
	rows := [][]string{
		{"file", res.Path},
		{"member", fmt.Sprintf("%s (%s, %s)", res.Member, res.MemberID, res.Endpoint)},
		{"revision", fmt.Sprint(res.Revision)},
		{"total keys", fmt.Sprint(res.TotalKeys)},
		{"size", size},
		{"sha256", res.SHA256},
		{"hash", hash},
		{"etcd version", version},
		{"verified", verified},
		{"taken", res.Taken.Format(time.RFC3339)},
	}
	if res.Encryption != "" {
		rows = append(rows, []string{"encryption", fmt.Sprintf("%s, to %d recipient%s", res.Encryption, len(res.Recipients), plural(len(res.Recipients)))})
	}
	if res.MetadataFile != "" {
		rows = append(rows, []string{"metadata", res.MetadataFile})
	}
	for _, p := range res.Pruned {
		rows = append(rows, []string{"pruned", p})
	}
	return rows
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar shows bytes streamed against the database size.
type progressBar struct {
	*progressbar.ProgressBar
	w io.Writer
}

func newProgressBar(w io.Writer, what string, total int64) *progressBar {
	return &progressBar{w: w, ProgressBar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
	)}
}

// Done ends the bar: full when the stream completed (the database size
// was an estimate), left where it stopped otherwise.
func (p *progressBar) Done(complete bool) {
	if complete {
		_ = p.Finish()
	} else {
		_ = p.Exit()
	}
	fmt.Fprintln(p.w)
}

// uploadMemoryLimit is the Go runtime's soft memory limit while a
// snapshot streams into an object store: the multipart upload's parts
// (--s3-multipart-chunksize times --s3-max-concurrent-requests + 1) stay
// live until sent, and by default the collector lets the heap grow to
// twice what is live before it runs, so the parts would cost twice their
// size in resident memory. With the limit the collector runs earlier
// instead. Beside the parts about 20 MiB is live during such a save, and
// 25 MiB is left for the stream's garbage (a save to a file peaks near
// 30 MiB of heap): a limit below the parts plus those 45 MiB makes the
// collector run all the time (seen: 48 MiB of parts under a 60 MiB limit
// doubled the plugin's CPU). The plugin's code and data pages (about
// 80 MiB) come on top.
func uploadMemoryLimit(o objectstore.S3Options) int64 {
	return 45<<20 + o.PartsInMemory()
}

// boundUploadMemory sets uploadMemoryLimit unless the user chose a limit
// with GOMEMLIMIT.
func boundUploadMemory(o objectstore.S3Options) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(uploadMemoryLimit(o))
	}
}

// runStore streams the snapshot into an object store, or into a local
// directory or file when it is encrypted, then applies --retain.
func (o *SaveOptions) runStore(ctx context.Context) error {
	var recipients *backup.Recipients
	if len(o.EncryptTo) > 0 {
		var err error
		if recipients, err = backup.ParseRecipients(o.EncryptTo); err != nil {
			return err
		}
	}
	var st objectstore.Store
	name := ""
	switch {
	case o.Location != nil:
		var err error
		if st, err = objectstore.Open(ctx, *o.Location, o.Store.S3Options); err != nil {
			return err
		}
		boundUploadMemory(o.Store.S3Options)
	case o.Dir:
		st = &objectstore.Dir{Path: o.Path}
	default:
		if _, err := os.Stat(o.Path); err == nil && !o.Overwrite {
			return fmt.Errorf("%s already exists: choose another name, pass --overwrite, or save into a directory", o.Path)
		}
		st, name = &objectstore.Dir{Path: filepath.Dir(o.Path)}, filepath.Base(o.Path)
	}
	cfg, cli, err := o.ConnectedClient("a snapshot")
	if err != nil {
		return err
	}
	defer cli.Close()
	s := &snapshot.StoreSaver{
		Saver: snapshot.Saver{Config: cfg, Client: cli, Endpoint: o.Endpoint, Compression: o.Compress, NoMetadata: o.NoMetadata, Verify: o.Verify, Overwrite: o.Overwrite},
		Store: st, Name: name,
	}
	if recipients != nil {
		s.Encrypt, s.Encryption, s.Recipients = recipients.Encrypter(), "age", recipients.Names
	}
	o.showProgress(&s.Saver)
	res, err := s.Save(ctx)
	if err != nil && res == nil {
		return err
	}
	if err == nil && o.Retain > 0 {
		pruned, perr := backup.Prune(ctx, st, backup.Policy{Retain: o.Retain}, false)
		if pruned != nil {
			for _, e := range pruned.Removed {
				res.Pruned = append(res.Pruned, e.URL)
			}
			res.Pruned = append(res.Pruned, pruned.Aborted...)
		}
		if perr != nil {
			err = fmt.Errorf("the snapshot %s is saved, but pruning old ones failed: %w", res.Path, perr)
		}
	}
	if perr := o.print(res); perr != nil {
		return perr
	}
	return err
}
