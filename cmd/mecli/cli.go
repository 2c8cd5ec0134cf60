package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// env is what a command may touch besides its arguments; tests supply their own.
type env struct {
	stdin          io.Reader // read by mecli mcp only; nil means os.Stdin
	stdout, stderr io.Writer
	getenv         func(string) string
	// getwd returns the directory relative paths are resolved against;
	// nil means os.Getwd.
	getwd func() (string, error)

	// Global flags, set before a command runs.
	root     string // resolved root directory
	jsonMode bool
}

// command is one leaf of the command tree, such as "auth init".
type command struct {
	path string // "auth init"
	// method is the daemon's RPC method the command calls, if it is one.
	// Its line in the listings is then the method's summary from rpc's
	// method table, and its help says whether the method changes the node.
	method string
	args   string // usage of positional arguments, e.g. "ADDR"
	nargs  int    // exact number of positional arguments; anyArgs for any
	short  string // one line for listings, for a command that is no RPC method
	long   string // paragraph for --help
	flags  func(fs *pflag.FlagSet)
	run    func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error
}

// summary is the command's line in the listings.
func (c *command) summary() string {
	if m, ok := rpc.LookupMethod(c.method); ok {
		return m.Summary
	}
	return c.short
}

// usageError is an error in how the command was called; the command's usage
// is printed after it.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// anyArgs as command.nargs lets a command check its own arguments.
const anyArgs = -1

var commands []*command

// register adds commands. One that names an RPC method must name one of
// the table; every other one needs its own summary.
func register(cs ...*command) {
	for _, c := range cs {
		if _, ok := rpc.LookupMethod(c.method); c.method != "" && !ok {
			panic("mecli: command " + c.path + " calls " + c.method + ", which is not in rpc's method table")
		}
		if c.method == "" && c.short == "" {
			panic("mecli: command " + c.path + " has no summary")
		}
		commands = append(commands, c)
	}
}

// notCommands are the methods of rpc's table that have no mecli command,
// and why; every other method has one (a test checks it).
var notCommands = map[string]string{
	rpc.MethodRepoLocate:  "git-remote-mega's: where to run git upload-pack or receive-pack",
	rpc.MethodRepoPublish: "git-remote-mega's: announcing what a git push wrote",
}

const toolHelp = `mecli controls a MegaEngine node.

Usage:
  mecli [--root DIR] [--json] COMMAND [ARGS]

Most commands ask the running daemon (med), over the unix socket
$ROOT/med.sock: each calls one method of its RPC API (spec/rpc.md). A
repository is named by its id (did:repo:z…, or z… alone) or its mega:// URL.

Global flags:
  --root DIR   node root directory (default $MEGAENGINE_ROOT, else ~/.megaengine)
  --json       print machine-readable JSON instead of text
  --version    print mecli's version and exit
  -h, --help   help for mecli or for a command
`

func run(ctx context.Context, e *env, args []string) int {
	global := pflag.NewFlagSet("mecli", pflag.ContinueOnError)
	global.SetInterspersed(false)
	global.SetOutput(io.Discard)
	rootFlag := global.String("root", "", "")
	jsonFlag := global.Bool("json", false, "")
	help := global.BoolP("help", "h", false, "")
	version := global.Bool("version", false, "")
	if err := global.Parse(args); err != nil {
		fmt.Fprintf(e.stderr, "mecli: %v\nRun 'mecli --help' for usage.\n", err)
		return 2
	}
	if *version {
		fmt.Fprintln(e.stdout, "mecli", rpc.Version)
		return 0
	}
	rest := global.Args()
	if *help || len(rest) == 0 || rest[0] == "help" {
		if len(rest) > 1 && rest[0] == "help" {
			return run(ctx, e, append(rest[1:], "--help"))
		}
		printToolHelp(e.stdout, "")
		if len(rest) == 0 && !*help {
			return 2
		}
		return 0
	}
	cmd, cmdArgs := findCommand(rest)
	if cmd == nil {
		return noCommand(e, rest)
	}
	fs := pflag.NewFlagSet("mecli "+cmd.path, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(jsonFlag, "json", *jsonFlag, "print JSON")
	fs.StringVar(rootFlag, "root", *rootFlag, "node root directory")
	cmdHelp := fs.BoolP("help", "h", false, "help for this command")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	if err := fs.Parse(cmdArgs); err != nil {
		fmt.Fprintf(e.stderr, "mecli %s: %v\n\n", cmd.path, err)
		printCommandHelp(e.stderr, cmd, fs)
		return 2
	}
	if *cmdHelp {
		printCommandHelp(e.stdout, cmd, fs)
		return 0
	}
	root, err := identity.ResolveRoot(firstNonEmpty(*rootFlag, e.getenv(identity.RootEnv)))
	if err != nil {
		fmt.Fprintf(e.stderr, "mecli: %v\n", err)
		return 1
	}
	e.root, e.jsonMode = root, *jsonFlag
	err = checkArgs(cmd, fs.Args())
	if err == nil {
		err = cmd.run(ctx, e, fs, fs.Args())
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(e.stderr, "mecli %s: %v\n\n", cmd.path, err)
			printCommandHelp(e.stderr, cmd, fs)
			return 2
		}
		fmt.Fprintf(e.stderr, "mecli %s: %v\n", cmd.path, err)
		return 1
	}
	return 0
}

// noCommand answers a command line that names no command: a group's help
// (on stdout when asked for), or an unknown command.
func noCommand(e *env, rest []string) int {
	prefix := strings.Join(rest[:min(len(rest), 1)], " ")
	if hasGroup(prefix) && len(rest) == 2 && (rest[1] == "--help" || rest[1] == "-h") {
		printToolHelp(e.stdout, prefix)
		return 0
	}
	if hasGroup(prefix) {
		printToolHelp(e.stderr, prefix)
		if len(rest) > 1 && !strings.HasPrefix(rest[1], "-") {
			fmt.Fprintf(e.stderr, "\nmecli: unknown command %q\n", strings.Join(rest[:2], " "))
		}
		return 2
	}
	fmt.Fprintf(e.stderr, "mecli: unknown command %q\nRun 'mecli --help' for the list of commands.\n", rest[0])
	return 2
}

func checkArgs(c *command, args []string) error {
	switch {
	case c.nargs == anyArgs || len(args) == c.nargs:
		return nil
	case c.nargs == 0:
		return usagef("unexpected argument %q", args[0])
	case len(args) < c.nargs:
		return usagef("missing %s", c.args)
	default:
		return usagef("unexpected argument %q", args[c.nargs])
	}
}

// findCommand matches the longest command path that prefixes args.
func findCommand(args []string) (*command, []string) {
	var best *command
	bestLen := 0
	for _, c := range commands {
		words := strings.Fields(c.path)
		if len(words) <= len(args) && len(words) > bestLen && equalWords(words, args[:len(words)]) {
			best, bestLen = c, len(words)
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, args[bestLen:]
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasGroup(group string) bool {
	for _, c := range commands {
		if strings.HasPrefix(c.path, group+" ") {
			return true
		}
	}
	return false
}

// printToolHelp prints the help of mecli, or of a group of commands
// ("repo"). The commands that call the daemon are listed in the order of
// rpc's method table, each with its method's summary.
func printToolHelp(w io.Writer, group string) {
	if group == "" {
		fmt.Fprint(w, toolHelp)
	} else {
		fmt.Fprintf(w, "Usage:\n  mecli %s COMMAND [ARGS]\n", group)
	}
	daemon, local := listing(group)
	for _, sec := range []struct {
		title string
		cmds  []*command
	}{
		{"Commands that call the daemon:", daemon},
		{"Commands that need no running daemon:", local},
	} {
		if len(sec.cmds) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", sec.title)
		for _, c := range sec.cmds {
			fmt.Fprintf(w, "  %-14s %s\n", c.path, c.summary())
		}
	}
	fmt.Fprint(w, "\nRun 'mecli COMMAND --help' for a command's flags and details.\n")
}

// listing returns the commands of group ("": all of them): those that call
// an RPC method, in the order of rpc.Methods, and the others, by path.
func listing(group string) (daemon, local []*command) {
	in := func(c *command) bool { return group == "" || strings.HasPrefix(c.path, group+" ") }
	for _, m := range rpc.Methods() {
		for _, c := range commands {
			if c.method == m.Name && in(c) {
				daemon = append(daemon, c)
			}
		}
	}
	for _, c := range commands {
		if c.method == "" && in(c) {
			local = append(local, c)
		}
	}
	sort.SliceStable(local, func(i, j int) bool { return local[i].path < local[j].path })
	return daemon, local
}

func printCommandHelp(w io.Writer, c *command, fs *pflag.FlagSet) {
	usage := "mecli " + c.path + " [flags]"
	if c.args != "" {
		usage += " " + c.args
	}
	fmt.Fprintf(w, "%s\n", firstNonEmpty(c.long, c.summary()))
	if m, ok := rpc.LookupMethod(c.method); ok {
		effect := "reads the node's state"
		if m.Mutating {
			effect = "changes the node"
		}
		fmt.Fprintf(w, "\nRPC method: %s (%s)\n", m.Name, effect)
	}
	fmt.Fprintf(w, "\nUsage:\n  %s\n\nFlags:\n%s", usage, fs.FlagUsages())
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// output prints v as indented JSON in --json mode, else calls text.
func (e *env) output(v any, text func(w io.Writer)) error {
	if e.jsonMode {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(e.stdout)
	return nil
}
