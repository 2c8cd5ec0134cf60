package main

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/megaengine/megaengine/rpc"
)

// mecli --help lists a command for every method of rpc's table (but those
// that are git-remote-mega's), in the table's order, each with the table's
// summary; then the commands that need no daemon.
func TestHelpListsTheMethodTable(t *testing.T) {
	code, out, _ := runCLI(t, nil, "--help")
	if code != 0 {
		t.Fatalf("mecli --help: exit %d", code)
	}
	daemonAt := strings.Index(out, "Commands that call the daemon:\n")
	localAt := strings.Index(out, "Commands that need no running daemon:\n")
	if daemonAt < 0 || localAt < daemonAt {
		t.Fatalf("mecli --help lacks its two lists of commands:\n%s", out)
	}
	last := daemonAt
	for _, m := range rpc.Methods() {
		var cmds []*command
		for _, c := range commands {
			if c.method == m.Name {
				cmds = append(cmds, c)
			}
		}
		if why, ok := notCommands[m.Name]; ok {
			if len(cmds) != 0 || why == "" {
				t.Errorf("%s is listed as no command (%q) but has %d", m.Name, why, len(cmds))
			}
			continue
		}
		if len(cmds) == 0 {
			t.Errorf("rpc method %s has no mecli command (add one, or say why in notCommands)", m.Name)
		}
		for _, c := range cmds {
			line := fmt.Sprintf("\n  %-14s %s\n", c.path, m.Summary)
			at := strings.Index(out, line)
			if at < 0 || at > localAt {
				t.Errorf("mecli --help lacks the line %q among the daemon's commands", strings.TrimSpace(line))
				continue
			}
			if at < last {
				t.Errorf("%s is listed out of the method table's order", c.path)
			}
			last = at
		}
	}
	for name := range notCommands {
		if _, ok := rpc.LookupMethod(name); !ok {
			t.Errorf("notCommands names %s, which is not in rpc's method table", name)
		}
	}
	for _, c := range commands {
		if c.method == "" && !strings.Contains(out[localAt:], fmt.Sprintf("\n  %-14s %s\n", c.path, c.short)) {
			t.Errorf("%s is not among the commands that need no daemon", c.path)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("a line of %d columns: %q", n, line)
		}
	}
}

// A command's help says which method it calls and whether that changes the
// node; a group's help lists the group.
func TestCommandHelpNamesItsMethod(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"repo", "add", "--help"}, "RPC method: repo.add (changes the node)"},
		{[]string{"repo", "list", "--help"}, "RPC method: repo.list (reads the node's state)"},
		{[]string{"node", "status", "--help"}, "RPC method: node.info (reads the node's state)"},
		{[]string{"events", "--help"}, "RPC method: events.subscribe"},
	} {
		code, out, _ := runCLI(t, nil, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || !strings.Contains(out, "Usage:\n  mecli "+tc.args[0]) {
			t.Errorf("mecli %s: exit %d, output lacks %q:\n%s", strings.Join(tc.args, " "), code, tc.want, out)
		}
	}
	if _, out, _ := runCLI(t, nil, "auth", "init", "--help"); strings.Contains(out, "RPC method") {
		t.Errorf("auth init names an RPC method:\n%s", out)
	}
	for _, args := range [][]string{{"repo", "--help"}, {"help", "repo"}} {
		code, out, _ := runCLI(t, nil, args...)
		if code != 0 || !strings.Contains(out, "repo unseed") || strings.Contains(out, "node status") {
			t.Errorf("mecli %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
}

// mecli --version prints rpc.Version (which the Makefile sets) on stdout.
func TestVersion(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "--version")
	if want := "mecli " + rpc.Version + "\n"; code != 0 || out != want {
		t.Fatalf("mecli --version: exit %d, printed %q (stderr %q), want %q", code, out, errOut, want)
	}
}

// A group's --help (mecli node --help) is the group's listing on stdout,
// with exit status 0; the group alone is a usage error on stderr.
func TestGroupHelp(t *testing.T) {
	for group, member := range map[string]string{"node": "node status", "repo": "repo clone", "auth": "auth init"} {
		for _, args := range [][]string{{group, "--help"}, {group, "-h"}, {"help", group}} {
			code, out, errOut := runCLI(t, nil, args...)
			if code != 0 || !strings.Contains(out, "Usage:\n  mecli "+group) || !strings.Contains(out, member) || errOut != "" {
				t.Errorf("mecli %s: exit %d, stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
			}
		}
		if code, out, errOut := runCLI(t, nil, group); code != 2 || out != "" || !strings.Contains(errOut, member) {
			t.Errorf("mecli %s: exit %d, stdout %q, stderr:\n%s", group, code, out, errOut)
		}
	}
}
