// Command mecli is MegaEngine's control tool. Identity commands work without
// a daemon; the others talk to med over its JSON-RPC socket.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, getwd: os.Getwd}, os.Args[1:])
	stop()
	os.Exit(code)
}
