// Command med is the MegaEngine daemon: it runs one node in the foreground
// until SIGINT or SIGTERM, logging to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/daemon"
	"github.com/megaengine/megaengine/protocol/handshake"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

const usage = `med runs a MegaEngine node in the foreground.

Usage:
  med [flags]

It creates the node's identity on first start ($ROOT/identity.key), listens
for peers on UDP (QUIC), serves mecli on $ROOT/med.sock, and stops cleanly on
SIGINT or SIGTERM. $ROOT/config.json, if present, sets flags by their long
names ({"alias": "laptop", "bootstrap": ["did:key:…@host:port"]}); a flag
given here wins over the file.

Examples:
  med --alias node1 --listen 127.0.0.1:9000
  med --alias node1 --http 127.0.0.1:8777      # and the web view on http://127.0.0.1:8777/
  med --root ~/.megaengine2 --alias node2 --listen 127.0.0.1:9001 \
      --bootstrap did:key:z6Mk…@127.0.0.1:9000

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(diagnosed(os.Getenv, func() int {
		return run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	}))
}

// diagnostics are the recordings med makes of itself when the environment
// names a file for them: a CPU profile (MEGAENGINE_CPUPROFILE, for go tool
// pprof: where a busy daemon's time goes) and an execution trace
// (MEGAENGINE_TRACE, for go tool trace: what wakes an idle daemon).
var diagnostics = []struct {
	env   string
	start func(io.Writer) error
	stop  func()
}{
	{"MEGAENGINE_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile},
	{"MEGAENGINE_TRACE", trace.Start, trace.Stop},
}

// diagnosed runs f, recording the diagnostics getenv names files for.
func diagnosed(getenv func(string) string, f func() int) int {
	for _, d := range diagnostics {
		path := getenv(d.env)
		if path == "" {
			continue
		}
		out, err := os.Create(path)
		if err == nil {
			err = d.start(out)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "med: %s: %v\n", d.env, err)
			return 2
		}
		defer out.Close()
		defer d.stop()
	}
	return f()
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
	acceptSeeds := fs.Bool("accept-seed-requests", defaults.AcceptSeedRequests, "seed repositories peers ask for with 'mecli repo seed-request', within budgets (a relay always does)")
	httpAddr := fs.String("http", "", "serve the read-only web view on this TCP host:port, e.g. 127.0.0.1:8777 (off unless given; an empty host is 127.0.0.1)")
	network := fs.String("network", defaults.Network, "network to join: only nodes of the same network pair (a-z 0-9 . _ -, at most 64 bytes)")
	announce := fs.StringArray("announce", defaults.Announce, "host:port to announce instead of the listen address (repeatable)")
	targetPeers := fs.Int("target-peers", defaults.TargetPeers, "dial nodes learned from gossip until this many peers (0: bootstrap nodes only)")
	idle := fs.Duration("idle-timeout", defaults.IdleTimeout, "drop a peer that has been silent this long")
	replicate := fs.String("replicate", defaults.Replicate, "which announced repositories to replicate: all, or none (choose with 'mecli repo seed')")
	minFree := sizeFlag(defaults.MinFree)
	fs.Var(&minFree, "min-free", "free space to keep on the root's filesystem, e.g. 2GiB (default 5 % of it, at most 1GiB, at least 32MiB)")
	replicateMax := fs.Int64("replicate-max", defaults.ReplicateMax>>20, "MiB a repository replicated automatically (--replicate all) may hold on disk")
	originMax := fs.Int64("origin-max", defaults.OriginMax>>20, "MiB all automatically replicated repositories of one creator may hold on disk")
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
	rootDir, src, code := rootConfig(fs, *root, getenv, stderr)
	if code != 0 {
		return code
	}
	log, err := newLogger(stderr, src, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "med: %v\n", err)
		return 2
	}
	cfg := daemon.DefaultConfig(rootDir)
	cfg.Listen, cfg.Alias, cfg.Relay, cfg.Announce = *listen, *alias, *relay, *announce
	cfg.TargetPeers, cfg.IdleTimeout, cfg.Logger = *targetPeers, *idle, log
	cfg.MinFree, cfg.AcceptSeedRequests = int64(minFree), *acceptSeeds
	cfg.HTTP = *httpAddr
	if err := checkChoices(src, *replicate, *network); err != nil {
		fmt.Fprintf(stderr, "med: %v\n", err)
		return 2
	}
	cfg.Replicate, cfg.Network = *replicate, *network
	cfg.ReplicateMax, cfg.OriginMax = *replicateMax<<20, *originMax<<20
	if cfg.Bootstrap, err = parseBootstrap(*bootstrap); err != nil {
		fmt.Fprintf(stderr, "med: %s: %v\n", src.name("bootstrap"), err)
		return 2
	}
	if err := identity.CheckHostPort(*listen); err != nil && !strings.HasSuffix(*listen, ":0") {
		fmt.Fprintf(stderr, "med: %s: %q: %v\n", src.name("listen"), *listen, err)
		return 2
	}
	if _, _, err := net.SplitHostPort(*httpAddr); *httpAddr != "" && err != nil {
		fmt.Fprintf(stderr, "med: %s: %q: want host:port, e.g. 127.0.0.1:8777\n", src.name("http"), *httpAddr)
		return 2
	}
	return serve(ctx, cfg, stdout, stderr)
}

// serve runs the node until ctx ends; it returns the exit status.
func serve(ctx context.Context, cfg daemon.Config, stdout, stderr io.Writer) int {
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
	if web := node.WebAddr(); web != "" {
		fmt.Fprintf(stdout, "web:     http://%s/\n", web)
	}
	if err := node.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "med: %v\n", err)
		return 1
	}
	return 0
}

// rootConfig resolves the root and applies its configuration file to the
// flags the command line left unset; on failure it prints why and returns
// the exit status.
func rootConfig(fs *pflag.FlagSet, root string, getenv func(string) string, stderr io.Writer) (string, configSource, int) {
	rootDir, err := identity.ResolveRoot(firstNonEmpty(root, getenv(identity.RootEnv)))
	if err != nil {
		fmt.Fprintf(stderr, "med: %v\n", err)
		return "", configSource{}, 1
	}
	src, err := loadConfig(fs, configPath(rootDir))
	if err != nil {
		fmt.Fprintf(stderr, "med: %v\n", err)
		return "", configSource{}, 2
	}
	return rootDir, src, 0
}

// newLogger makes med's logger on stderr from --log-level and --log-format
// (src says whether they came from the configuration file).
func newLogger(stderr io.Writer, src configSource, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%s: %q: want debug, info, warn or error", src.name("log-level"), level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, fmt.Errorf("%s: %q: want text or json", src.name("log-format"), format)
}

// parseBootstrap parses the --bootstrap values; each may also be a
// comma-separated list, as some shells and scripts pass one.
func parseBootstrap(values []string) ([]identity.Addr, error) {
	var addrs []identity.Addr
	for _, b := range values {
		for _, s := range strings.Split(b, ",") {
			a, err := identity.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return nil, err
			}
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// sizeFlag is a byte count written with an optional unit: 1048576, 512KiB,
// 64MiB, 2GiB, 1TiB (K, M, G, T, and KB, MB, GB, TB mean the same powers of
// 1024). 0 means the default.
type sizeFlag int64

func (s *sizeFlag) String() string {
	if *s == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*s), 10)
}

func (s *sizeFlag) Type() string { return "size" }

func (s *sizeFlag) Set(v string) error {
	num := strings.TrimRight(v, "KMGTiB")
	shift := map[string]uint{"": 0, "B": 0, "K": 10, "KB": 10, "KiB": 10, "M": 20, "MB": 20, "MiB": 20,
		"G": 30, "GB": 30, "GiB": 30, "T": 40, "TB": 40, "TiB": 40}
	sh, ok := shift[v[len(num):]]
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if !ok || err != nil || n < 0 || n > math.MaxInt64>>sh {
		return fmt.Errorf("%q is not a size like 512MiB or 2GiB", v)
	}
	*s = sizeFlag(n << sh)
	return nil
}

// checkChoices validates the flags that take one of a set of values.
func checkChoices(src configSource, replicate, network string) error {
	if replicate != daemon.ReplicateAll && replicate != daemon.ReplicateNone {
		return fmt.Errorf("%s: %q: want all or none", src.name("replicate"), replicate)
	}
	if err := handshake.CheckNetwork(network); err != nil {
		return fmt.Errorf("%s: %v", src.name("network"), err)
	}
	return nil
}
