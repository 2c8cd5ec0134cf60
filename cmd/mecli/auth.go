package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/protocol/identity"
)

// didResult is the JSON answer of the identity commands.
type didResult struct {
	DID string `json:"did"`
}

func init() {
	register(&command{
		path:  "auth init",
		short: "create this node's identity (never overwrites one)",
		long: `Create the node's Ed25519 identity at $ROOT/identity.key (mode 0600) and
print its did:key. If an identity already exists it is kept and printed.
No daemon is needed.`,
		run: runAuthInit,
	})
	register(&command{
		path:  "node id",
		short: "print this node's did:key",
		long:  "Print the node's did:key, read from $ROOT/identity.key. No daemon is needed.",
		run:   runNodeID,
	})
}

func runAuthInit(_ context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
	k, created, err := identity.LoadOrCreateKey(e.root)
	if err != nil {
		return err
	}
	return e.output(didResult{DID: k.ID().String()}, func(w io.Writer) {
		if created {
			fmt.Fprintf(w, "Created identity %s\n", identity.KeyPath(e.root))
		} else {
			fmt.Fprintf(w, "Identity exists at %s (kept)\n", identity.KeyPath(e.root))
		}
		fmt.Fprintf(w, "%s\n", k.ID())
	})
}

func runNodeID(_ context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
	k, err := identity.LoadKey(e.root)
	if err != nil {
		return err
	}
	return e.output(didResult{DID: k.ID().String()}, func(w io.Writer) { fmt.Fprintln(w, k.ID()) })
}
