package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/rpc"
)

// patchCommands are the patch … commands, one per patch.* method, in the
// manner of rad patch. Patches are opened with git (git push origin
// HEAD:refs/patches); these commands list, show, review and check them
// out. The repository is found as for the issue commands.
var patchCommands = []*command{
	{path: "patch open", method: rpc.MethodPatchOpen, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("title", "", "the title (required)")
		fs.String("description", "", "the description")
		fs.String("base", "", "the base commit (required; the node's replica must hold it)")
		fs.String("head", "", "the head commit (required; the node's replica must hold it)")
		fs.Bool("draft", false, "open as a draft")
	}), run: runPatchOpen, long: `Open a patch on commits the node's replica already holds. Usually a patch is
opened by pushing instead: git push origin HEAD:refs/patches.`},
	{path: "patch revise", args: "ID", nargs: 1, method: rpc.MethodPatchRevise, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("base", "", "the new base commit (required)")
		fs.String("head", "", "the new head commit (required)")
		fs.String("description", "", "what changed in this revision")
	}), run: runPatchRevise},
	{path: "patch list", method: rpc.MethodPatchList, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("state", rpc.PatchOpen, "open, draft, closed, merged or all")
	}), run: runPatchList},
	{path: "patch show", args: "ID", nargs: 1, method: rpc.MethodPatchShow, flags: issueFlags(nil), run: runPatchShow},
	{path: "patch review", args: "ID", nargs: 1, method: rpc.MethodPatchReview, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.Bool("accept", false, "accept the revision")
		fs.Bool("reject", false, "reject the revision")
		fs.String("summary", "", "the review's summary")
		fs.String("revision", "", "the revision to review (an id or prefix; default the latest)")
		fs.StringArray("comment", nil, "an inline comment PATH:LINE:TEXT or PATH:START-END:TEXT (repeatable)")
	}), run: runPatchReview},
	{path: "patch comment", args: "ID", nargs: 1, method: rpc.MethodPatchComment, flags: issueFlags(func(fs *pflag.FlagSet) {
		fs.String("body", "", "the comment")
		fs.String("reply-to", "", "the comment to reply to (an id or prefix)")
		fs.String("revision", "", "comment on this revision (an id or prefix)")
	}), run: runPatchComment},
	{path: "patch checkout", args: "ID", nargs: 1, method: rpc.MethodPatchCheckout, flags: issueFlags(nil), run: runPatchCheckout,
		long: `Create or move the branch patch/<short-id> of the working copy in the current
directory to the patch's latest revision, fetching its commits from the node.`},
	{path: "patch close", args: "ID", nargs: 1, method: rpc.MethodPatchClose, flags: issueFlags(nil), run: patchState("Closed", (*rpc.Client).PatchClose)},
	{path: "patch reopen", args: "ID", nargs: 1, method: rpc.MethodPatchReopen, flags: issueFlags(nil), run: patchState("Reopened", (*rpc.Client).PatchReopen)},
	{path: "patch ready", args: "ID", nargs: 1, method: rpc.MethodPatchReady, flags: issueFlags(nil), run: patchState("Ready:", (*rpc.Client).PatchReady)},
}

func init() { register(patchCommands...) }

func runPatchList(ctx context.Context, e *env, fs *pflag.FlagSet, _ []string) error {
	state, _ := fs.GetString("state")
	switch state {
	case rpc.PatchOpen, rpc.PatchDraft, rpc.PatchClosed, rpc.PatchMerged, rpc.PatchAll:
	default:
		return usagef("--state %q: want open, draft, closed, merged or all", state)
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		list, err := c.PatchList(ctx, rpc.PatchListParams{RepoID: repo, State: state})
		if err != nil {
			return err
		}
		if list == nil {
			list = []rpc.PatchSummary{}
		}
		return e.output(list, func(w io.Writer) { printPatchList(w, list, state) })
	})
}

func printPatchList(w io.Writer, list []rpc.PatchSummary, state string) {
	if len(list) == 0 {
		if state == rpc.PatchAll {
			state = ""
		}
		fmt.Fprintf(w, "No %s patches.\n", state)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tID\tTITLE\tAUTHOR\tHEAD\tREVISIONS")
	for _, p := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", p.State, shortChange(p.ID), oneLine(p.Title, 60),
			who(p.Author, p.AuthorAlias), shortChange(p.Head)[:min(len(p.Head), 8)], p.RevisionCount)
	}
	tw.Flush()
}

func runPatchShow(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		d, err := c.PatchShow(ctx, rpc.PatchIDParams{RepoID: repo, ID: args[0]})
		if err != nil {
			return err
		}
		return e.output(d, func(w io.Writer) { printPatch(w, d) })
	})
}

func printPatch(w io.Writer, d rpc.PatchDetail) {
	fmt.Fprintf(w, "%s\n%s · %s · opened by %s %s\n", printable(d.Title), shortChange(d.ID), d.State, who(d.Author, d.AuthorAlias), when(d.CreatedMS))
	if m := d.Merge; m != nil {
		fmt.Fprintf(w, "merged: revision %s as %s by %s\n", shortChange(m.Revision), m.Commit, shortDID(m.Author))
	}
	if d.Description != "" {
		fmt.Fprintf(w, "\n%s\n", indent(d.Description))
	}
	fmt.Fprintln(w, "\nrevisions:")
	for i, r := range d.Revisions {
		fmt.Fprintf(w, "  %d %s %s..%s %s\n", i+1, shortChange(r.ID), r.Base[:min(len(r.Base), 8)], r.Head[:min(len(r.Head), 8)], when(r.CreatedMS))
		for _, rv := range d.Reviews {
			if rv.Revision != r.ID {
				continue
			}
			fmt.Fprintf(w, "    %s by %s %s\n", rv.Verdict, who(rv.Author, rv.AuthorAlias), printable(oneLine(rv.Summary, 80)))
			for _, c := range rv.Comments {
				fmt.Fprintf(w, "      %s:%s %s\n", printable(c.Path), lines(c.Start, c.End), printable(oneLine(c.Body, 80)))
			}
		}
	}
	for _, c := range d.Comments {
		head := fmt.Sprintf("%s %s %s", shortChange(c.ID), who(c.Author, c.AuthorAlias), when(c.CreatedMS))
		if c.Revision != "" {
			head += " on " + shortChange(c.Revision)
		}
		fmt.Fprintf(w, "\n── %s\n%s\n", head, indent(c.Body))
	}
}

func lines(start, end uint64) string {
	if end <= start {
		return strconv.FormatUint(start, 10)
	}
	return fmt.Sprintf("%d-%d", start, end)
}

// parseInline reads PATH:LINE:TEXT or PATH:START-END:TEXT.
func parseInline(s string) (rpc.PatchInlineComment, error) {
	path, rest, ok1 := strings.Cut(s, ":")
	span, text, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || path == "" || text == "" {
		return rpc.PatchInlineComment{}, usagef("--comment %q: want PATH:LINE:TEXT", s)
	}
	a, b, isRange := strings.Cut(span, "-")
	start, err := strconv.ParseUint(a, 10, 32)
	end := start
	if err == nil && isRange {
		end, err = strconv.ParseUint(b, 10, 32)
	}
	if err != nil || start == 0 || end < start {
		return rpc.PatchInlineComment{}, usagef("--comment %q: the line must be N or N-M, counting from 1", s)
	}
	return rpc.PatchInlineComment{Path: path, Start: start, End: end, Body: text}, nil
}

func runPatchReview(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	accept, _ := fs.GetBool("accept")
	reject, _ := fs.GetBool("reject")
	if accept == reject {
		return usagef("give --accept or --reject")
	}
	p := rpc.PatchReviewParams{ID: args[0], Verdict: map[bool]string{true: rpc.VerdictAccept, false: rpc.VerdictReject}[accept]}
	p.Summary, _ = fs.GetString("summary")
	p.Revision, _ = fs.GetString("revision")
	comments, _ := fs.GetStringArray("comment")
	for _, s := range comments {
		c, err := parseInline(s)
		if err != nil {
			return err
		}
		p.Comments = append(p.Comments, c)
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		p.RepoID = repo
		res, err := c.PatchReview(ctx, p)
		if err != nil {
			return err
		}
		return e.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Reviewed patch %s: %s\n", shortChange(res.Patch.ID), p.Verdict)
		})
	})
}

func runPatchComment(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	p := rpc.PatchCommentParams{ID: args[0]}
	p.Body, _ = fs.GetString("body")
	p.ReplyTo, _ = fs.GetString("reply-to")
	p.Revision, _ = fs.GetString("revision")
	if p.Body == "" {
		return usagef("--body is required")
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		p.RepoID = repo
		res, err := c.PatchComment(ctx, p)
		if err != nil {
			return err
		}
		return e.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Commented %s on patch %s\n", shortChange(res.Change), shortChange(res.Patch.ID))
		})
	})
}

func runPatchCheckout(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	wd, err := e.wd()
	if err != nil {
		return err
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		res, err := c.PatchCheckout(ctx, rpc.PatchCheckoutParams{RepoID: repo, ID: args[0], Path: wd})
		if err != nil {
			return err
		}
		return e.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Branch %s is at %s (revision %s)\n", res.Branch, res.Head, shortChange(res.Revision))
		})
	})
}

// patchState is the run func of close, reopen and ready.
func patchState(verb string, call func(*rpc.Client, context.Context, rpc.PatchIDParams) (rpc.PatchChangeResult, error)) func(context.Context, *env, *pflag.FlagSet, []string) error {
	return func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
		return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
			res, err := call(c, ctx, rpc.PatchIDParams{RepoID: repo, ID: args[0]})
			if err != nil {
				return err
			}
			return e.output(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s patch %s %s\n", verb, shortChange(res.Patch.ID), printable(res.Patch.Title))
			})
		})
	}
}

func runPatchOpen(ctx context.Context, e *env, fs *pflag.FlagSet, _ []string) error {
	p := rpc.PatchOpenParams{}
	p.Title, _ = fs.GetString("title")
	p.Description, _ = fs.GetString("description")
	p.Base, _ = fs.GetString("base")
	p.Head, _ = fs.GetString("head")
	p.Draft, _ = fs.GetBool("draft")
	if p.Title == "" || p.Base == "" || p.Head == "" {
		return usagef("--title, --base and --head are required")
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		p.RepoID = repo
		res, err := c.PatchOpen(ctx, p)
		if err != nil {
			return err
		}
		return e.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Opened patch %s %s\n", shortChange(res.Change), printable(p.Title))
		})
	})
}

func runPatchRevise(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	p := rpc.PatchReviseParams{ID: args[0]}
	p.Base, _ = fs.GetString("base")
	p.Head, _ = fs.GetString("head")
	p.Description, _ = fs.GetString("description")
	if p.Base == "" || p.Head == "" {
		return usagef("--base and --head are required")
	}
	return issueCall(ctx, e, fs, func(c *rpc.Client, repo string) error {
		p.RepoID = repo
		res, err := c.PatchRevise(ctx, p)
		if err != nil {
			return err
		}
		return e.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Revised patch %s: revision %s\n", shortChange(res.Patch.ID), shortChange(res.Change))
		})
	})
}
