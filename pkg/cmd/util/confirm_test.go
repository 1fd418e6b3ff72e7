package util

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestConfirmRefusesWithoutATerminal(t *testing.T) {
	f := &Factory{IOStreams: genericiooptions.IOStreams{In: strings.NewReader("yes\n"), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}}
	err := Confirm(f, "remove member m1", false)
	if err == nil || !strings.Contains(err.Error(), "refusing to remove member m1 without confirmation: pass --yes") {
		t.Fatalf("Confirm() = %v, want a refusal that names --yes", err)
	}
	if err := Confirm(f, "remove member m1", true); err != nil {
		t.Fatalf("Confirm(yes) = %v, want nil", err)
	}
}
