package main

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

// node start passes med only the flags the user gave, so that med's
// defaults do not override $ROOT/config.json.
func TestMedArgsPassOnlyGivenFlags(t *testing.T) {
	var start *command
	for _, c := range commands {
		if c.path == "node start" {
			start = c
		}
	}
	for _, tc := range []struct {
		given, want []string
	}{
		{nil, []string{"--root", "/r"}},
		{[]string{"--alias", "a"}, []string{"--root", "/r", "--alias", "a"}},
		{[]string{"--addr", "127.0.0.1:1", "--bootstrap-node", "b1", "--bootstrap-node", "b2", "--relay"},
			[]string{"--root", "/r", "--listen", "127.0.0.1:1", "--bootstrap", "b1", "--bootstrap", "b2", "--relay=true"}},
		{[]string{"--", "--idle-timeout", "3s"}, []string{"--root", "/r", "--idle-timeout", "3s"}},
	} {
		fs := pflag.NewFlagSet("node start", pflag.ContinueOnError)
		start.flags(fs)
		if err := fs.Parse(tc.given); err != nil {
			t.Fatal(err)
		}
		if got := medArgs("/r", fs, fs.Args()); !slices.Equal(got, tc.want) {
			t.Errorf("node start %q: med %q, want %q", tc.given, got, tc.want)
		}
	}
}
