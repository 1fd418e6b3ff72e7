// Command kms-test-plugin is a KMS plugin for tests only (see package
// kmsplugin): no production KMS can run on the test machines.
//
//	kms-test-plugin --listen /path/kms.sock --key ID=BASE64 [--key ID=BASE64...]
//
// The first key is current (wraps new data keys); all of them unwrap.
package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kubectl-etcd/kubectl-etcd/internal/kmstest/kmsplugin"
)

type keyFlags []kmsplugin.Key

func (k *keyFlags) String() string { return fmt.Sprint(len(*k), " keys") }

func (k *keyFlags) Set(s string) error {
	id, secret, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want ID=BASE64, got %q", s)
	}
	b, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return fmt.Errorf("key %q: %w", id, err)
	}
	*k = append(*k, kmsplugin.Key{ID: id, Secret: b})
	return nil
}

func main() {
	listen := flag.String("listen", "", "unix socket path to serve on")
	var keys keyFlags
	flag.Var(&keys, "key", "ID=BASE64 key encryption key (32 bytes); repeat; the first is current")
	flag.Parse()
	if *listen == "" {
		fmt.Fprintln(os.Stderr, "error: --listen is required")
		os.Exit(2)
	}
	p, err := kmsplugin.New(keys, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	server, done, err := p.Serve(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		server.Stop()
		_ = os.Remove(*listen)
		fmt.Fprintln(os.Stderr, "kms-test-plugin: stopped by", s)
	case err := <-done:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
