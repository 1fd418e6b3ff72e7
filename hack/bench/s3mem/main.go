// Command s3mem is the benchmark's cheap S3 store: gofakes3's in-memory
// backend (github.com/johannesboyne/gofakes3, backend/s3mem) served over
// plain HTTP on a loopback port. hack/bench starts it for the
// snapshot-save-s3 row that asks what the plugin reaches against a store
// costing little CPU, beside SeaweedFS's weed, which spends about 10 s of
// CPU per GiB.
//
// It lives in a module of its own so that the plugin's go.mod does not
// gain gofakes3's dependencies. It does not check request signatures or
// the parts' sha256 (gofakes3 checks neither): a stand-in for a store on
// other cores, not a test of the protocol, which the weed rows and the
// tests against weed cover.
//
//	s3mem [-listen 127.0.0.1:0] [-bucket NAME]... [-cpuprofile FILE]
//
// It prints its endpoint (http://127.0.0.1:PORT) as the first line on
// standard output once it accepts connections, then serves until SIGINT
// or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// buckets collects the repeatable -bucket flag.
type buckets []string

func (b *buckets) String() string     { return strings.Join(*b, ",") }
func (b *buckets) Set(v string) error { *b = append(*b, v); return nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve S3 on")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	var names buckets
	flag.Var(&names, "bucket", "a bucket to create at start (repeatable)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := profiled(*cpuProfile, func() error { return serve(ctx, *listen, names) })
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// profiled runs f, under a CPU profile written to path when path is set.
func profiled(path string, f func() error) error {
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return err
	}
	err = f()
	pprof.StopCPUProfile()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func serve(ctx context.Context, listen string, names []string) error {
	backend := s3mem.New()
	for _, name := range names {
		if err := backend.CreateBucket(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gofakes3.New(backend).Server(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("http://%s\n", l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
