// Command med is the MegaEngine daemon: it runs one node in the foreground
// until SIGINT or SIGTERM, logging to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/daemon"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

const usage = `med runs a MegaEngine node in the foreground.

Usage:
  med [flags]

It creates the node's identity on first start ($ROOT/identity.key), listens
for peers on UDP (QUIC), serves mecli on $ROOT/med.sock, and stops cleanly on
SIGINT or SIGTERM.

Examples:
  med --alias node1 --listen 127.0.0.1:9000
  med --root ~/.megaengine2 --alias node2 --listen 127.0.0.1:9001 \
      --bootstrap did:key:z6Mk…@127.0.0.1:9000

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := pflag.NewFlagSet("med", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defaults := daemon.DefaultConfig("")
	root := fs.String("root", "", "node root directory (default $MEGAENGINE_ROOT, else ~/.megaengine)")
	listen := fs.String("listen", defaults.Listen, "UDP address to listen on for peers")
	alias := fs.String("alias", defaults.Alias, "human-readable name announced to other nodes")
	bootstrap := fs.StringArray("bootstrap", nil, "node to connect to, did:key:…@host:port (repeatable)")
	relay := fs.Bool("relay", defaults.Relay, "announce this node as a relay")
	announce := fs.StringArray("announce", defaults.Announce, "host:port to announce instead of the listen address (repeatable)")
	targetPeers := fs.Int("target-peers", defaults.TargetPeers, "dial nodes learned from gossip until this many peers (0: bootstrap nodes only)")
	idle := fs.Duration("idle-timeout", defaults.IdleTimeout, "drop a peer that has been silent this long")
	replicate := fs.String("replicate", defaults.Replicate, "which announced repositories to replicate: all, or none (choose with 'mecli repo seed')")
	replicateMax := fs.Int64("replicate-max", defaults.ReplicateMax>>20, "MiB a repository replicated automatically (--replicate all) may hold on disk")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	version := fs.Bool("version", false, "print the version and exit")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "med: %v\nRun 'med --help' for usage.\n", err)
		return 2
	}
	if *help {
		fmt.Fprint(stdout, usage+fs.FlagUsages())
		return 0
	}
	if *version {
		fmt.Fprintln(stdout, "med", rpc.Version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "med: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "med: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(stderr, opts)
	switch *logFormat {
	case "text":
	case "json":
		handler = slog.NewJSONHandler(stderr, opts)
	default:
		fmt.Fprintf(stderr, "med: --log-format %q: want text or json\n", *logFormat)
		return 2
	}
	log := slog.New(handler)

	rootDir, err := identity.ResolveRoot(firstNonEmpty(*root, getenv(identity.RootEnv)))
	if err != nil {
		fmt.Fprintf(stderr, "med: %v\n", err)
		return 1
	}
	cfg := daemon.DefaultConfig(rootDir)
	cfg.Listen, cfg.Alias, cfg.Relay, cfg.Announce = *listen, *alias, *relay, *announce
	cfg.TargetPeers, cfg.IdleTimeout, cfg.Logger = *targetPeers, *idle, log
	if *replicate != daemon.ReplicateAll && *replicate != daemon.ReplicateNone {
		fmt.Fprintf(stderr, "med: --replicate %q: want all or none\n", *replicate)
		return 2
	}
	cfg.Replicate = *replicate
	cfg.ReplicateMax = *replicateMax << 20
	for _, b := range *bootstrap {
		// Accept a comma-separated list too, as some shells and scripts pass one.
		for _, s := range strings.Split(b, ",") {
			a, err := identity.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				fmt.Fprintf(stderr, "med: --bootstrap: %v\n", err)
				return 2
			}
			cfg.Bootstrap = append(cfg.Bootstrap, a)
		}
	}
	if err := identity.CheckHostPort(*listen); err != nil && !strings.HasSuffix(*listen, ":0") {
		fmt.Fprintf(stderr, "med: --listen %q: %v\n", *listen, err)
		return 2
	}

	node, err := daemon.New(cfg)
	if err != nil {
		if errors.Is(err, daemon.ErrDaemonRunning) {
			fmt.Fprintf(stderr, "med: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "med: starting: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "did:     %s\naddress: %s\nsocket:  %s\n", node.ID(), node.Addr(), node.SocketPath())
	if err := node.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "med: %v\n", err)
		return 1
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
