package main

import (
	"strings"
	"testing"

	"github.com/megaengine/megaengine/rpc"
)

// med --version prints rpc.Version on stdout and starts nothing.
func TestVersionFlag(t *testing.T) {
	var out, errOut strings.Builder
	code := run(t.Context(), []string{"--version"}, &out, &errOut, func(string) string { return "" })
	if want := "med " + rpc.Version + "\n"; code != 0 || out.String() != want {
		t.Fatalf("med --version: exit %d, printed %q (stderr %q), want %q", code, out.String(), errOut.String(), want)
	}
}
