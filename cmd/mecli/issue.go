package main

import (
	"bytes"
	"context"

	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// issueCommands are the issue … commands, one per issue.* method, in the
// manner of rad issue. Each takes --repo, or finds the repository from the
// current directory: a working copy the daemon knows, else one whose
// origin is a mega:// URL. Issue and comment ids may be abbreviated to a
// unique prefix of at least 4 hex digits.
var issueCommands = []*command{
	{path: "issue open", method: rpc.MethodIssueOpen, flags: issueFlags(openFlags), run: runIssueOpen,
		long: `Open an issue. The body comes from --body, --body-file (- for standard input), or
else an editor ($VISUAL, $EDITOR) when one is set and the terminal is
interactive. Labels apply only if this node is a delegate of the repository.`},
	{path: "issue list", method: rpc.MethodIssueList, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("state", rpc.IssueOpen, "open, closed or all")
	}), run: runIssueList},
	{path: "issue show", args: "ID", nargs: 1, method: rpc.MethodIssueShow, flags: issueFlags(nil), run: runIssueShow},
	{path: "issue comment", args: "ID", nargs: 1, method: rpc.MethodIssueComment, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("body", "", "the comment")
		fs.String("reply-to", "", "the comment to reply to (an id or prefix)")
	}), run: runIssueComment},
	{path: "issue edit", args: "ID", nargs: 1, method: rpc.MethodIssueEdit, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("title", "", "the new title")
		fs.String("body", "", "the new body")
	}), run: runIssueEdit},
	{path: "issue label", args: "ID", nargs: 1, method: rpc.MethodIssueLabel, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.StringArray("add", nil, "a label to add (repeatable)")
		fs.StringArray("remove", nil, "a label to remove (repeatable)")
	}), run: runIssueLabel},
	{path: "issue assign", args: "ID", nargs: 1, method: rpc.MethodIssueAssign, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.StringArray("add", nil, "a node (did:key) to assign (repeatable)")
		fs.StringArray("remove", nil, "a node (did:key) to unassign (repeatable)")
	}), run: runIssueAssign},
	{path: "issue close", args: "ID", nargs: 1, method: rpc.MethodIssueClose, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("reason", "solved", "solved or other")
	}), run: runIssueClose},
	{path: "issue reopen", args: "ID", nargs: 1, method: rpc.MethodIssueReopen, flags: issueFlags(nil), run: runIssueReopen},
	{path: "issue react", args: "ID EMOJI", nargs: 2, method: rpc.MethodIssueReact, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("comment", "", "react to this comment (an id or prefix) instead of the issue")
		fs.Bool("remove", false, "withdraw the reaction")
	}), run: runIssueReact},
}

func init() { register(issueCommands...) }

func openFlags(fs *pflag.FlagSet) {
	fs.String("title", "", "the title (required)")
	fs.String("body", "", "the body")
	fs.String("body-file", "", "read the body from this file (- for standard input)")
	fs.StringArray("label", nil, "a label (repeatable; delegates only)")
}

// issueFlags adds --repo to a command's own flags.
func issueFlags(more func(fs *pflag.FlagSet)) func(fs *pflag.FlagSet) {
	return func(fs *pflag.FlagSet) {
		fs.String("repo", "", "the repository (did:repo:… or mega:// URL; default: from the current directory)")
		if more != nil {
			more(fs)
		}
	}
}

// issueRepo is the repository a command works on: --repo, else the
// working copy the current directory is in.
func issueRepo(ctx context.Context, e *env, c *rpc.Client, fs *pflag.FlagSet) (string, error) {
	s, _ := fs.GetString("repo")
	return repoOrHere(ctx, e, c, s)
}

// repoOrHere is the repository arg names, else the one whose shared or
// cloned working copy the current directory is in, else the one its git
// origin's mega:// URL names.
func repoOrHere(ctx context.Context, e *env, c *rpc.Client, arg string) (string, error) {
	if arg != "" {
		return parseRepoID(arg)
	}
	wd, err := e.wd()
	if err != nil {
		return "", err
	}
	repos, err := c.RepoList(ctx)
	if err != nil {
		return "", err
	}
	best, id := "", ""
	for _, r := range repos {
		paths := []string{r.Path}
		for _, cl := range r.Clones {
			paths = append(paths, cl.Path)
		}
		for _, p := range paths {
			if p != "" && within(wd, p) && len(p) > len(best) {
				best, id = p, r.RepoID
			}
		}
	}
	if id != "" {
		return id, nil
	}
	if u, err := originURL(ctx, wd); err == nil {
		return u.Repo.String(), nil
	}
	return "", usagef("%s is not in a working copy of a MegaEngine repository: name the repository (did:repo:… or mega://…)", wd)
}

// originURL reads the mega:// URL of the origin remote of the git
// repository at dir.
func originURL(ctx context.Context, dir string) (identity.MegaURL, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "config", "--get", "remote.origin.url").Output()
	if err != nil {
		return identity.MegaURL{}, err
	}
	return identity.ParseMegaURL(strings.TrimSpace(string(out)))
}

// issueCall dials, finds the repository and calls fn.
func issueCall(ctx context.Context, e *env, fs *pflag.FlagSet, fn func(c *rpc.Client, repo string) error) error {
	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	repo, err := issueRepo(ctx, e, c, fs)
	if err != nil {
		return err
	}
	return interrupted(ctx, fn(c, repo))
}

// changed prints the answer of a command that changed an issue.
func (e *env) changed(res rpc.IssueChangeResult, what string) error {
	return e.output(res, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s %s\n", what, shortChange(res.Issue.ID), printable(res.Issue.Title))
	})
}

func shortChange(id string) string { return id[:min(len(id), 12)] }

func runIssueOpen(ctx context.Context, e *env, fs *pflag.FlagSet, _ []string) error {
	title, _ := fs.GetString("title")
	if title == "" {
		return usagef("--title is required")
	}
	body, err := issueBody(e, fs)
	if err != nil {
		return err
	}
	labels, _ := fs.GetStringArray("label")
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.IssueOpen(ctx, rpc.IssueOpenParams{RepoID: repo, Title: title, Body: body, Labels: labels})
		if err != nil {
			return err
		}
		return e.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Opened issue %s %s\n", shortChange(res.Change), printable(title))
		})
	})
}

// issueBody reads the body of a new issue from --body, --body-file or an
// editor (only on a terminal, with $VISUAL or $EDITOR set).
func issueBody(e *env, fs *pflag.FlagSet) (string, error) {
	body, _ := fs.GetString("body")
	file, _ := fs.GetString("body-file")
	switch {
	case fs.Changed("body") && file != "":
		return "", usagef("give --body or --body-file, not both")
	case fs.Changed("body"):
		return body, nil
	case file == "-":
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		return string(b), err
	case file != "":
		b, err := os.ReadFile(file)
		return string(b), err
	}
	editor := firstNonEmpty(e.getenv("VISUAL"), e.getenv("EDITOR"))
	if editor == "" || e.jsonMode || !isTerminal(os.Stdin) {
		return "", nil
	}
	return editBody(editor)
}

// editBody lets the user write a body in editor, started as the shell
// would ($EDITOR may hold arguments), on a temporary file.
func editBody(editor string) (string, error) {
	f, err := os.CreateTemp("", "mecli-issue-*.md")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	f.Close()
	args := append(strings.Fields(editor), f.Name())
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("running the editor %q: %w", editor, err)
	}
	b, err := os.ReadFile(f.Name())
	return strings.TrimSpace(string(b)), err
}

func runIssueList(ctx context.Context, e *env, fs *pflag.FlagSet, _ []string) error {
	state, _ := fs.GetString("state")
	switch state {
	case rpc.IssueOpen, rpc.IssueClosed, rpc.IssueAll:
	default:
		return usagef("--state %q: want open, closed or all", state)
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		list, err := c.IssueList(ctx, rpc.IssueListParams{RepoID: repo, State: state})
		if err != nil {
			return err
		}
		if list == nil {
			list = []rpc.IssueSummary{}
		}
		return e.output(list, func(w io.Writer) { printIssueList(w, list, state) })
	})
}

func printIssueList(w io.Writer, list []rpc.IssueSummary, state string) {
	if len(list) == 0 {
		fmt.Fprintf(w, "No %s issues.\n", map[string]string{rpc.IssueAll: "", rpc.IssueOpen: "open", rpc.IssueClosed: "closed"}[state])
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tID\tTITLE\tAUTHOR\tLABELS\tCOMMENTS")
	for _, is := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", is.State, shortChange(is.ID), oneLine(is.Title, 60),
			who(is.Author, is.AuthorAlias), dash(oneLine(strings.Join(is.Labels, ", "), 40)), is.CommentCount)
	}
	tw.Flush()
}

// who names a node by its alias and short id.
func who(did, alias string) string {
	if alias == "" {
		return shortDID(did)
	}
	return oneLine(alias, 24) + " (" + shortDID(did) + ")"
}

func runIssueShow(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		d, err := c.IssueShow(ctx, rpc.IssueIDParams{RepoID: repo, ID: args[0]})
		if err != nil {
			return err
		}
		return e.output(d, func(w io.Writer) { printIssue(w, d) })
	})
}

func printIssue(w io.Writer, d rpc.IssueDetail) {
	state := d.State
	if d.Reason != "" {
		state += " (" + d.Reason + ")"
	}
	fmt.Fprintf(w, "%s\n%s · %s · opened by %s %s\n", printable(d.Title), shortChange(d.ID), state, who(d.Author, d.AuthorAlias), when(d.CreatedMS))
	if len(d.Labels) > 0 {
		fmt.Fprintf(w, "labels: %s\n", printable(strings.Join(d.Labels, ", ")))
	}
	if len(d.Assignees) > 0 {
		fmt.Fprintf(w, "assignees: %s\n", strings.Join(d.Assignees, ", "))
	}
	if d.Body != "" {
		fmt.Fprintf(w, "\n%s\n", indent(d.Body))
	}
	printReactions(w, d.Reactions, "")
	for _, c := range d.Comments {
		head := fmt.Sprintf("%s %s %s", shortChange(c.ID), who(c.Author, c.AuthorAlias), when(c.CreatedMS))
		if c.ReplyTo != "" {
			head += " ↳ " + shortChange(c.ReplyTo)
		}
		body := c.Body
		if c.Redacted {
			body = "[redacted]"
		} else if c.Edited {
			head += " (edited)"
		}
		fmt.Fprintf(w, "\n── %s\n%s\n", head, indent(body))
		printReactions(w, c.Reactions, "  ")
	}
}

func printReactions(w io.Writer, r map[string][]string, pad string) {
	var parts []string
	for emoji, who := range r {
		parts = append(parts, fmt.Sprintf("%s %d", printable(emoji), len(who)))
	}
	if len(parts) > 0 {
		slices.Sort(parts)
		fmt.Fprintf(w, "%s%s\n", pad, strings.Join(parts, "  "))
	}
}

func indent(s string) string {
	var b bytes.Buffer
	for line := range strings.Lines(printableBlock(s)) {
		b.WriteString("  " + line)
	}
	return strings.TrimRight(b.String(), "\n")
}

// printableBlock keeps the line structure of s and makes each line
// printable.
func printableBlock(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(strings.ReplaceAll(l, "\t", "    "))
	}
	return strings.Join(lines, "\n")
}

func when(ms uint64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(int64(ms)).UTC().Format("2006-01-02 15:04")
}

func runIssueComment(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	body, _ := fs.GetString("body")
	reply, _ := fs.GetString("reply-to")
	if body == "" {
		return usagef("--body is required")
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.IssueComment(ctx, rpc.IssueCommentParams{RepoID: repo, ID: args[0], Body: body, ReplyTo: reply})
		if err != nil {
			return err
		}
		return e.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Commented %s on issue %s\n", shortChange(res.Change), shortChange(res.Issue.ID))
		})
	})
}

func runIssueEdit(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	p := rpc.IssueEditParams{ID: args[0]}
	if fs.Changed("title") {
		t, _ := fs.GetString("title")
		p.Title = &t
	}
	if fs.Changed("body") {
		b, _ := fs.GetString("body")
		p.Body = &b
	}
	if p.Title == nil && p.Body == nil {
		return usagef("give --title, --body or both")
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		p.RepoID = repo
		res, err := c.IssueEdit(ctx, p)
		if err != nil {
			return err
		}
		return e.changed(res, "Edited")
	})
}

func runIssueLabel(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	add, _ := fs.GetStringArray("add")
	remove, _ := fs.GetStringArray("remove")
	if len(add) == 0 && len(remove) == 0 {
		return usagef("give --add or --remove")
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.IssueLabel(ctx, rpc.IssueLabelParams{RepoID: repo, ID: args[0], Add: add, Remove: remove})
		if err != nil {
			return err
		}
		return e.changed(res, "Labelled")
	})
}

func runIssueAssign(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	add, _ := fs.GetStringArray("add")
	remove, _ := fs.GetStringArray("remove")
	if len(add) == 0 && len(remove) == 0 {
		return usagef("give --add or --remove")
	}
	for _, s := range append(slices.Clone(add), remove...) {
		if _, err := identity.ParseNodeID(s); err != nil {
			return usagef("invalid node id %q: %v", s, err)
		}
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.IssueAssign(ctx, rpc.IssueAssignParams{RepoID: repo, ID: args[0], Add: add, Remove: remove})
		if err != nil {
			return err
		}
		return e.changed(res, "Assigned")
	})
}

func runIssueClose(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	reason, _ := fs.GetString("reason")
	if reason != "solved" && reason != "other" {
		return usagef("--reason %q: want solved or other", reason)
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.IssueClose(ctx, rpc.IssueCloseParams{RepoID: repo, ID: args[0], Reason: reason})
		if err != nil {
			return err
		}
		return e.changed(res, "Closed")
	})
}

func runIssueReopen(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.IssueReopen(ctx, rpc.IssueIDParams{RepoID: repo, ID: args[0]})
		if err != nil {
			return err
		}
		return e.changed(res, "Reopened")
	})
}

func runIssueReact(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	comment, _ := fs.GetString("comment")
	remove, _ := fs.GetBool("remove")
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.IssueReact(ctx, rpc.IssueReactParams{RepoID: repo, ID: args[0], Comment: comment, Emoji: args[1], Remove: remove})
		if err != nil {
			return err
		}
		return e.changed(res, "Reacted to")
	})
}
