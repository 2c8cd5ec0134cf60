package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/rpc"
)

func init() {
	register(&command{
		path:   "node status",
		method: rpc.MethodNodeInfo,
		long:   "Show what the running daemon reports about itself: its did:key, alias, addresses, version, uptime and counters.",
		run:    withClient(runNodeStatus),
	})
	register(&command{
		path:   "node peers",
		method: rpc.MethodNodePeers,
		long:   "List the peers the daemon is connected to now.",
		run:    withClient(runNodePeers),
	})
	register(&command{
		path:   "node list",
		method: rpc.MethodNodeList,
		long:   "List the nodes this node knows of, itself included.",
		run:    withClient(runNodeList),
	})
	register(&command{
		path:   "node connect",
		args:   "ADDR|DID",
		nargs:  1,
		method: rpc.MethodNodeConnect,
		long: `Connect to a node and wait until the connection is authenticated. ADDR is
did:key:…@host:port; a did:key alone asks a connected relay to introduce the
two nodes (hole punching), falling back to a relayed connection.`,
		run: withClient(runNodeConnect),
	})
	register(&command{
		path:  "node start",
		nargs: anyArgs,
		short: "start the daemon (med), in the foreground or with --detach in the background",
		long: `Start the daemon in the foreground; it runs until interrupted. With --detach
it runs in the background instead (output appended to $ROOT/med.log) and
mecli returns once it answers; 'mecli node stop' stops it. This is the seed
implementation's command: --addr is med's --listen, --bootstrap-node is
med's --bootstrap. Any other med flag can follow after --. Flags not given
come from $ROOT/config.json, else med's defaults.`,
		flags: func(fs *pflag.FlagSet) {
			fs.String("alias", "", "human-readable name announced to other nodes")
			fs.String("addr", "", "UDP address to listen on (default: $ROOT/config.json's listen, else 0.0.0.0:9000)")
			fs.StringArray("bootstrap-node", nil, "node to connect to, did:key:…@host:port (repeatable)")
			fs.Bool("relay", false, "announce this node as a relay")
			fs.Bool("detach", false, "run in the background; print the did and pid once the daemon answers")
			fs.String("cert-path", "", "ignored: TLS certificates are ephemeral; identity comes from the Noise handshake")
		},
		run: runNodeStart,
	})
}

// runNodeStatus prints node.info.
func runNodeStatus(ctx context.Context, e *env, c *rpc.Client, _ []string) error {
	info, err := c.NodeInfo(ctx)
	if err != nil {
		return err
	}
	return e.output(info, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "did:\t%s\n", info.DID)
		fmt.Fprintf(tw, "alias:\t%s\n", dash(info.Alias))
		fmt.Fprintf(tw, "kind:\t%s\n", info.Kind)
		fmt.Fprintf(tw, "network:\t%s\n", dash(info.Network))
		fmt.Fprintf(tw, "reachability:\t%s\n", dash(info.Reachability))
		fmt.Fprintf(tw, "listening:\t%s\n", strings.Join(info.ListenAddresses, ", "))
		fmt.Fprintf(tw, "announced:\t%s\n", dash(strings.Join(info.Addresses, ", ")))
		fmt.Fprintf(tw, "version:\t%s (protocol %d)\n", info.Version, info.ProtocolVersion)
		fmt.Fprintf(tw, "uptime:\t%s\n", (time.Duration(info.UptimeSeconds) * time.Second).String())
		fmt.Fprintf(tw, "peers:\t%d\n", info.Peers)
		fmt.Fprintf(tw, "known nodes:\t%d\n", info.KnownNodes)
		fmt.Fprintf(tw, "root:\t%s\n", info.Root)
		disk := fmt.Sprintf("%s free of %s", humanBytes(int64(info.Disk.FreeBytes)), humanBytes(int64(info.Disk.TotalBytes)))
		if info.Disk.Low {
			disk += fmt.Sprintf(" — LOW: below the floor of %s, the node accepts no new objects or announcements", humanBytes(int64(info.Disk.FloorBytes)))
		}
		fmt.Fprintf(tw, "disk:\t%s\n", disk)
		tw.Flush()
	})
}

// runNodePeers prints node.peers.
func runNodePeers(ctx context.Context, e *env, c *rpc.Client, _ []string) error {
	peers, err := c.NodePeers(ctx)
	if err != nil {
		return err
	}
	return e.output(peers, func(w io.Writer) {
		if len(peers) == 0 {
			fmt.Fprintln(w, "no peers connected")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DID\tALIAS\tDIRECTION\tPATH\tREMOTE\tCONNECTED")
		for _, p := range peers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\n", p.DID, dash(p.Alias), p.Direction, dash(p.Path), p.RemoteAddr, since(p.ConnectedAt))
		}
		tw.Flush()
	})
}

// runNodeList prints node.list.
func runNodeList(ctx context.Context, e *env, c *rpc.Client, _ []string) error {
	nodes, err := c.NodeList(ctx)
	if err != nil {
		return err
	}
	return e.output(nodes, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DID\tALIAS\tKIND\tADDRESSES\tSTATE")
		for _, n := range nodes {
			state := "seen " + since(n.LastSeen) + " ago"
			switch {
			case n.Self:
				state = "this node"
			case n.Connected:
				state = "connected"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.DID, dash(n.Alias), n.Kind, dash(strings.Join(n.Addresses, ",")), state)
		}
		tw.Flush()
	})
}

// runNodeConnect connects with node.connect and prints the peer.
func runNodeConnect(ctx context.Context, e *env, c *rpc.Client, args []string) error {
	p, err := c.NodeConnect(ctx, args[0])
	if err != nil {
		return err
	}
	return e.output(p, func(w io.Writer) {
		fmt.Fprintf(w, "connected to %s (%s)\n", p.DID, p.RemoteAddr)
	})
}

// medArgs translates node start's flags into med's. Only the flags the user
// gave are passed: med's own defaults and $ROOT/config.json decide the rest
// (a flag passed here would win over the file).
func medArgs(root string, fs *pflag.FlagSet, extra []string) []string {
	args := []string{"--root", root}
	if fs.Changed("alias") {
		v, _ := fs.GetString("alias")
		args = append(args, "--alias", v)
	}
	if fs.Changed("addr") {
		v, _ := fs.GetString("addr")
		args = append(args, "--listen", v)
	}
	nodes, _ := fs.GetStringArray("bootstrap-node")
	for _, b := range nodes {
		args = append(args, "--bootstrap", b)
	}
	if fs.Changed("relay") {
		v, _ := fs.GetBool("relay")
		args = append(args, "--relay="+strconv.FormatBool(v))
	}
	return append(args, extra...)
}

// findMed looks for med beside this executable, then on PATH.
func findMed() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "med")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("med")
	if err != nil {
		return "", errors.New("cannot find the med binary beside mecli or on PATH (run 'make install')")
	}
	return p, nil
}

func runNodeStart(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	med, err := findMed()
	if err != nil {
		return err
	}
	argv := append([]string{med}, medArgs(e.root, fs, args)...)
	if detach, _ := fs.GetBool("detach"); detach {
		return startDetached(ctx, e, med, argv)
	}
	// Replace this process: signals, exit status and the terminal go to med.
	return syscall.Exec(med, argv, os.Environ())
}

// withClient connects to the daemon for a command that needs it.
func withClient(fn func(ctx context.Context, e *env, c *rpc.Client, args []string) error) func(context.Context, *env, *pflag.FlagSet, []string) error {
	return func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
		c, err := rpc.Dial(ctx, e.root)
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(ctx, e, c, args)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func since(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String()
}
