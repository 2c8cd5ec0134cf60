// Command git-remote-mega is git's remote helper for mega:// URLs. With it
// on PATH, plain git works with MegaEngine repositories:
//
//	git clone mega://<repo-id> [dir]             the canonical namespace (the creator's)
//	git clone mega://<repo-id>/<node-did> [dir]  that node's namespace (a fork)
//	git fetch, git pull, git ls-remote, git push
//
// Git runs it as "git-remote-mega <remote> <url>" and talks to it on stdin
// and stdout (gitremote-helpers(7)). It offers the "connect" capability:
// for a fetch it asks the local daemon (med, found through $MEGAENGINE_ROOT
// or ~/.megaengine) to sync the repository from the network, then runs git
// upload-pack on the daemon's bare replica with GIT_NAMESPACE set to the
// chosen namespace; for a push it runs git receive-pack into this node's own
// namespace and then has the daemon sign and announce the new refs.
// spec/remote-helper.md is the specification.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	h := newHelper(os.Stdin, os.Stdout, os.Stderr, os.Environ())
	code := h.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
