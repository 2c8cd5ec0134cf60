package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// repoCommands are the repo … commands, one per repo.* method of the
// daemon but the remote helper's.
var repoCommands = []*command{
	{
		path:   "repo add",
		args:   "[PATH]",
		nargs:  anyArgs,
		method: rpc.MethodRepoAdd,
		long: `Share the git repository at PATH (or --path; default: the current directory)
under a new did:repo id, printed on success. The daemon publishes its branches
and tags and keeps watching it: later commits are announced without another
command.`,
		flags: func(fs *pflag.FlagSet) {
			fs.String("path", "", "the working repository (default: the current directory)")
			fs.String("name", "", "the name to announce (default: the directory's name)")
			fs.String("description", "", "a description to announce")
		},
		run: runRepoAdd,
	},
	{
		path:   "repo list",
		method: rpc.MethodRepoList,
		long: `List every repository the node knows of — added here, replicated, or only
announced by others — with the state of its replica and working copies.
HOLDERS counts the holders in sync with the creator's newest refs, of all
holders. STATUS is the replica's: "up to date", "HAS UPDATES" (newer refs
were announced: the daemon fetches them, or run 'mecli repo sync ID'),
"syncing", "not replicated", "unreachable" (no node that announced it was
ever reachable), "CANNOT PUBLISH" (the working repository shared from here
cannot be read; the line under it says why), with ", unseeded" when the
node does not keep its replica up to date. Under each row come the working
repository shared from here and each working copy with its state: up to
date, behind, ahead, DIVERGED, MISSING, or ERROR with the reason. Sorted by
name; lines fit the terminal ($COLUMNS, else its width, else 80 columns;
ids shortened, creators by alias, descriptions cut or left out) unless
--wide.`,
		flags: func(fs *pflag.FlagSet) {
			fs.Bool("wide", false, "full ids, names, descriptions and creator ids; lines as long as they need")
		},
		run: runRepoList,
	},
	{
		path:   "repo show",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoShow,
		long:   "Show one repository and the signed refs of every namespace its replica holds.",
		run:    runRepoShow,
	},
	{
		path:   "repo sync",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoSync,
		long: `Fetch the repository's newest signed refs and objects from the network now,
rather than waiting for the daemon to do it.`,
		run: runRepoSync,
	},
	{
		path:   "repo clone",
		args:   "REPO_ID [DIR]",
		nargs:  anyArgs,
		method: rpc.MethodRepoClone,
		long: `Make a working copy of a repository in DIR (or --output; default: the
repository's name, in the current directory), from the node's replica,
replicating it first if needed. Its remote origin is mega://REPO_ID: 'git
pull' and 'mecli repo pull' bring it up to date. REPO_ID may be a mega:// URL;
mega://REPO_ID/NODE clones NODE's namespace, as --namespace NODE does.`,
		flags: func(fs *pflag.FlagSet) {
			fs.String("repo-id", "", "the repository (instead of the REPO_ID argument)")
			fs.StringP("output", "o", "", "the directory to create (instead of the DIR argument)")
			fs.String("namespace", "", "clone this node's refs (a did:key) instead of the canonical ones")
		},
		run: runRepoClone,
	},
	{
		path:   "repo pull",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoPull,
		long: `Fast-forward a working copy made by 'mecli repo clone' to the branch of the
node's replica. The working copy is --path, else the one
containing the current directory, else the repository's only working copy;
without REPO_ID, the repository is the working copy's.`,
		flags: func(fs *pflag.FlagSet) {
			fs.String("repo-id", "", "the repository (instead of the REPO_ID argument)")
			fs.String("path", "", "the working copy (default: found from the current directory)")
		},
		run: runRepoPull,
	},
	{
		path:   "repo seed",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoSeed,
		long:   "Make the node replicate a repository and keep it up to date.",
		run:    runRepoSeed(true),
	},
	{
		path:   "repo unseed",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoUnseed,
		long:   "Make the node stop replicating a repository; its replica stays on disk.",
		run:    runRepoSeed(false),
	},
	{
		path:   "repo seed-request",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoSeedRequest,
		long: `Ask the peers connected now, relays first, to seed a repository this node
holds, until --replicas holders other than this node are in sync; then wait up
to --wait for them to be. A relay accepts; another node only if it runs with
--accept-seed-requests, and within its budgets. Each answer is listed with its
reason. Asking again is harmless. The exit status is 1 when fewer holders than
--replicas are in sync at the end.`,
		flags: func(fs *pflag.FlagSet) {
			fs.Int("replicas", 1, fmt.Sprintf("holders other than this node that should be in sync (1-%d)", rpc.MaxSeedReplicas))
			fs.Duration("wait", rpc.DefaultSeedWait*time.Second, "how long to wait for them to be in sync (0: do not wait)")
		},
		run: runRepoSeedRequest,
	},
	{
		path:   "repo remove",
		args:   "REPO_ID",
		nargs:  1,
		method: rpc.MethodRepoRemove,
		long: `Stop sharing (or seeding) a repository and let go of it: the node stops
watching its working repository, tells the network it no longer holds it, forgets
what it recorded of it, and deletes its replica (unless --keep-replica). Working
repositories and clones are left as they are.`,
		flags: func(fs *pflag.FlagSet) {
			fs.Bool("keep-replica", false, "keep the replica on disk (unseeded)")
		},
		run: runRepoRemove,
	},
}

func runRepoRemove(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	keep, _ := fs.GetBool("keep-replica")
	c, id, err := dialRepo(ctx, e, args)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.RepoRemove(ctx, rpc.RepoRemoveParams{RepoID: id, KeepReplica: keep})
	if err != nil {
		return interrupted(ctx, err)
	}
	return e.output(res, func(w io.Writer) {
		if res.KeptReplica {
			fmt.Fprintf(w, "Removed %s; its replica stays on disk, unseeded\n", res.RepoID)
		} else {
			fmt.Fprintf(w, "Removed %s and deleted its replica\n", res.RepoID)
		}
	})
}

func init() { register(repoCommands...) }

// dial connects to the daemon. Commands check their arguments first, so a
// usage error never waits for a daemon.
func dial(ctx context.Context, e *env) (*rpc.Client, error) {
	return rpc.Dial(ctx, e.root)
}

// interrupted turns the error of a call cut short by Ctrl-C into one word.
func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return errors.New("interrupted")
	}
	return err
}

// wd returns the directory relative paths are resolved against.
func (e *env) wd() (string, error) {
	getwd := e.getwd
	if getwd == nil {
		getwd = os.Getwd
	}
	wd, err := getwd()
	if err != nil {
		return "", fmt.Errorf("finding the current directory: %w", err)
	}
	return wd, nil
}

// absPath makes p absolute and clean: the daemon does not share our
// working directory.
func (e *env) absPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	wd, err := e.wd()
	if err != nil {
		return "", err
	}
	return filepath.Join(wd, p), nil
}

// repoArg picks the repository from the REPO_ID argument or --repo-id flag
// (the seed's form) and parses it (parseRepoArg). required says whether one
// must be given; if none is, the result is the zero MegaURL.
func repoArg(fs *pflag.FlagSet, args []string, required bool) (identity.MegaURL, error) {
	flag := ""
	if fs != nil {
		flag, _ = fs.GetString("repo-id")
	}
	var arg string
	if len(args) > 0 {
		arg = args[0]
	}
	s := firstNonEmpty(flag, arg)
	if flag != "" && arg != "" && flag != arg {
		return identity.MegaURL{}, usagef("the repository is given twice: --repo-id %s and %s", flag, arg)
	}
	if s == "" {
		if required {
			return identity.MegaURL{}, usagef("missing REPO_ID (did:repo:z… or mega://…)")
		}
		return identity.MegaURL{}, nil
	}
	return parseRepoArg(s)
}

// parseRepoArg parses a repository as the user names it: by its id
// ("did:repo:z…" or "z…") or by a mega:// URL, as git takes it, which may
// also name a node's namespace (mega://<repo-id>/<node-did>).
func parseRepoArg(s string) (identity.MegaURL, error) {
	if strings.HasPrefix(s, identity.MegaScheme) {
		return identity.ParseMegaURL(s)
	}
	id, err := identity.ParseRepoID(s)
	if err != nil {
		return identity.MegaURL{}, fmt.Errorf("invalid repository id: %w", err)
	}
	return identity.MegaURL{Repo: id}, nil
}

// parseRepoID parses a repository argument of a command that takes no
// namespace, and returns its id in canonical form.
func parseRepoID(s string) (string, error) {
	u, err := parseRepoArg(s)
	if err != nil {
		return "", err
	}
	return repoIDOnly(u)
}

// repoIDOnly returns u's repository id, refusing a URL that names a node's
// namespace, which only repo clone takes.
func repoIDOnly(u identity.MegaURL) (string, error) {
	if u.HasNode() {
		return "", usagef("%s names the namespace of %s; only 'mecli repo clone' takes one", u, u.Node)
	}
	return u.Repo.String(), nil
}

// megaURL is the mega:// URL of the repository the daemon names by id, for
// git clone ("" if the id does not parse).
func megaURL(id string) string {
	repo, err := identity.ParseRepoID(id)
	if err != nil {
		return ""
	}
	return identity.MegaURL{Repo: repo}.String()
}

func runRepoAdd(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) > 1 {
		return usagef("unexpected argument %q", args[1])
	}
	flagPath, _ := fs.GetString("path")
	p := flagPath
	if len(args) == 1 {
		if flagPath != "" && flagPath != args[0] {
			return usagef("the path is given twice: --path %s and %s", flagPath, args[0])
		}
		p = args[0]
	}
	if p == "" {
		p = "."
	}
	abs, err := e.absPath(p)
	if err != nil {
		return err
	}
	name, _ := fs.GetString("name")
	desc, _ := fs.GetString("description")
	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.RepoAdd(ctx, rpc.RepoAddParams{Path: abs, Name: name, Description: desc})
	if err != nil {
		return interrupted(ctx, err)
	}
	return e.output(info, func(w io.Writer) {
		verb := "Added"
		if info.Updated {
			verb = fmt.Sprintf("Updated (identity version %d)", info.DocVersion)
		}
		fmt.Fprintf(w, "%s repository %s\n", verb, printable(info.Name))
		fmt.Fprintf(w, "  id: %s\n", info.RepoID)
		fmt.Fprintf(w, "  path: %s\n", firstNonEmpty(info.Path, abs))
		if info.LastError != "" {
			fmt.Fprintf(w, "  warning: %s\n", printable(info.LastError))
		}
		if url := megaURL(info.RepoID); url != "" {
			fmt.Fprintf(w, "  clone with: git clone %s\n", url)
		}
	})
}

func runRepoList(ctx context.Context, e *env, fs *pflag.FlagSet, _ []string) error {
	wide, _ := fs.GetBool("wide")
	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	repos, err := c.RepoList(ctx)
	if err != nil {
		return interrupted(ctx, err)
	}
	aliases := nodeAliases(ctx, c)
	return e.output(repos, func(w io.Writer) {
		if len(repos) == 0 {
			fmt.Fprintln(w, "no repositories (share one with 'mecli repo add --path DIR')")
			return
		}
		sorted := slices.Clone(repos)
		slices.SortStableFunc(sorted, func(a, b rpc.RepoInfo) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.RepoID, b.RepoID))
		})
		writeRepoList(w, sorted, aliases, listStyle{wide: wide, home: e.getenv("HOME"), width: listWidthFor(w, e.getenv("COLUMNS"))})
	})
}

// listWidth is the width repo list keeps to without --wide when it does
// not know the terminal's: every line fits an 80-column terminal. On a
// terminal it takes the terminal's width (or $COLUMNS), at least
// minListWidth.
const (
	listWidth    = 80
	minListWidth = 40
)

// listStyle is how repo list writes: its width, and the home directory
// that paths are shown relative to ("~/…").
type listStyle struct {
	wide  bool
	home  string
	width int // 0: listWidth
}

// listWidthFor is the width repo list keeps to on w: $COLUMNS if set, else
// the terminal's, else listWidth.
func listWidthFor(w io.Writer, columns string) int {
	n, err := strconv.Atoi(columns)
	if err != nil || n <= 0 {
		n = terminalColumns(w)
	}
	if n <= 0 {
		return listWidth
	}
	return max(n, minListWidth)
}

func (st listStyle) cols() int { return cmp.Or(st.width, listWidth) }

// Caps of repo list's columns without --wide (runes): NAME, ID, CREATOR,
// HOLDERS; STATUS is never cut, and DESCRIPTION gets what is left of the
// line, if at least minDescription.
var listCaps = []int{18, 13, 12, 7}

const minDescription = 8

// writeRepoList writes one row per repository — name, short id, creator
// (by alias), holders in sync of all holders, the replica's state and the
// description — and under it a line for the working repository shared from
// here and one for each working copy, with its state. With wide, nothing
// is shortened.
func writeRepoList(w io.Writer, repos []rpc.RepoInfo, aliases map[string]string, st listStyle) {
	rows := [][]string{{"NAME", "ID", "CREATOR", "HOLDERS", "STATUS", "DESCRIPTION"}}
	for _, r := range repos {
		rows = append(rows, repoCells(r, aliases, st.wide))
	}
	widths := make([]int, len(rows[0])-1) // the last column is not padded
	used := 0
	for i := range widths {
		for _, row := range rows {
			widths[i] = max(widths[i], utf8.RuneCountInString(row[i]))
		}
		if !st.wide && i < len(listCaps) {
			widths[i] = min(widths[i], listCaps[i])
		}
		used += widths[i] + 2
	}
	for i, row := range rows {
		if !st.wide && st.cols()-used < minDescription {
			row = row[:len(row)-1]
		}
		fmt.Fprintln(w, st.fit(padCells(row, widths)))
		if i == 0 {
			continue
		}
		for _, l := range workLines(repos[i-1], st) {
			fmt.Fprintln(w, l)
		}
	}
}

// repoCells are a repository's cells in repo list.
func repoCells(r rpc.RepoInfo, aliases map[string]string, wide bool) []string {
	name, id, creator := dash(oneLine(r.Name, 18)), shortRepoID(r.RepoID), shortDID(r.Creator)
	if a := aliases[r.Creator]; a != "" {
		creator = oneLine(a, 12)
	}
	if wide {
		name, id, creator = dash(oneLine(r.Name, 1<<10)), r.RepoID, dash(r.Creator)
		if a := aliases[r.Creator]; a != "" {
			creator += " (" + oneLine(a, 64) + ")"
		}
	}
	holders := fmt.Sprintf("%d/%d", r.HoldersInSync, len(r.Holders))
	return []string{name, id, creator, holders, replicaStatus(r), oneLine(r.Description, 1<<10)}
}

// padCells joins cells, each padded or cut to its width, two spaces apart.
func padCells(cells []string, widths []int) string {
	var b strings.Builder
	for i, c := range cells {
		if i == len(cells)-1 {
			b.WriteString(c)
			break
		}
		c = truncate(c, widths[i])
		b.WriteString(c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
	}
	return strings.TrimRight(b.String(), " ")
}

// fit cuts a line to the list's width (not with --wide).
func (st listStyle) fit(line string) string {
	if st.wide {
		return line
	}
	return truncate(line, st.cols())
}

// workLines are the lines under a repository's row: the working repository
// shared from here (and why it cannot be read), then each working copy,
// with its state.
func workLines(r rpc.RepoInfo, st listStyle) []string {
	var out []string
	if r.Local {
		out = append(out, st.pathLine("shared from", r.Path, ""))
		if r.Replica == rpc.ReplicaWorkError {
			out = append(out, st.fit("    ERROR: "+oneLine(r.LastError, 1<<10)))
		}
	}
	for _, cl := range r.Clones {
		out = append(out, st.pathLine("clone", cl.Path, cloneText(cl)))
	}
	return out
}

// pathLine is "  label PATH: state" ("  label PATH" without a state), cut
// to the list's width: the path keeps at least its last 24 runes, then the
// state is cut, then the path loses its start.
func (st listStyle) pathLine(label, path, state string) string {
	path = printable(path)
	if st.home != "" && st.home != "/" {
		if rest, ok := strings.CutPrefix(path, strings.TrimSuffix(st.home, "/")+"/"); ok {
			path = "~/" + rest
		}
	}
	head := "  " + label + " "
	if state != "" {
		state = ": " + state
	}
	if !st.wide {
		room := st.cols() - utf8.RuneCountInString(head)
		state = truncate(state, room-min(utf8.RuneCountInString(path), 24))
		if n := room - utf8.RuneCountInString(state); utf8.RuneCountInString(path) > n {
			r := []rune(path)
			path = "…" + string(r[len(r)-(n-1):])
		}
	}
	return head + path + state
}

// holderLines are repo show's holders, each with how current its copy of
// the creator's refs is.
func holderLines(d rpc.RepoDetail, aliases map[string]string) []string {
	state := map[string]rpc.HolderStatus{}
	for _, h := range d.HolderStates {
		state[h.Node] = h
	}
	out := make([]string, 0, len(d.Holders))
	for _, h := range d.Holders {
		st, ok := state[h]
		name := withAlias(h, aliases)
		switch {
		case !ok || !st.Known:
			out = append(out, name)
		case st.InSync:
			out = append(out, name+"  in sync")
		default:
			lag := time.Duration(st.LagSeconds * float64(time.Second)).Round(time.Second)
			out = append(out, fmt.Sprintf("%s  %s behind", name, lag))
		}
	}
	return out
}

// shortRepoID is a repository id as repo list shows it: enough of it to
// tell repositories apart (--wide and --json show it whole).
func shortRepoID(id string) string {
	s := strings.TrimPrefix(id, "did:repo:")
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// replicaStatus is the STATUS column of repo list: the replica's state,
// and whether the node keeps it up to date (seeded).
func replicaStatus(r rpc.RepoInfo) string {
	var st string
	switch r.Replica {
	case rpc.ReplicaUpToDate:
		st = "up to date"
	case rpc.ReplicaBehind:
		st = "HAS UPDATES"
	case rpc.ReplicaSyncing:
		st = "syncing"
	case rpc.ReplicaMissing:
		return "not replicated"
	case rpc.ReplicaHeardOf:
		return "unreachable"
	case rpc.ReplicaWorkError:
		return "CANNOT PUBLISH"
	default:
		return printable(r.Replica) // a state newer than this mecli
	}
	if !r.Seeded && !r.Local {
		st += ", unseeded"
	}
	return st
}

// replicaText describes a replica state for repo show.
func replicaText(r rpc.RepoInfo) string {
	switch r.Replica {
	case rpc.ReplicaUpToDate:
		return "up to date"
	case rpc.ReplicaBehind:
		return "HAS UPDATES (newer refs were announced; 'mecli repo sync' fetches them now)"
	case rpc.ReplicaSyncing:
		return "syncing"
	case rpc.ReplicaMissing:
		return "not replicated ('mecli repo seed' replicates it)"
	case rpc.ReplicaHeardOf:
		return "heard of: announced, but no node that holds it was ever reachable (it may not exist)"
	case rpc.ReplicaWorkError:
		return "WORKING REPOSITORY UNREADABLE (new commits are not published; see the last error)"
	}
	return printable(r.Replica)
}

// cloneText is a working copy's state, for repo list and repo show.
func cloneText(cl rpc.CloneStatus) string {
	switch cl.Status {
	case rpc.CloneUpToDate:
		return "up to date"
	case rpc.CloneBehind:
		return "behind: mecli repo pull updates it"
	case rpc.CloneAhead:
		return "ahead: it has local commits"
	case rpc.CloneDiverged:
		return "DIVERGED: local and upstream commits"
	case rpc.CloneMissing:
		return "MISSING: deleted or moved"
	case rpc.CloneError:
		return "ERROR: " + dash(oneLine(cl.Reason, 1<<10))
	}
	return printable(cl.Status)
}

func runRepoShow(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	c, id, err := dialRepo(ctx, e, args)
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := c.RepoShow(ctx, id)
	if err != nil {
		return interrupted(ctx, err)
	}
	return e.output(d, func(w io.Writer) { printRepoDetail(w, d, nodeAliases(ctx, c)) })
}

// nodeAliases maps the DIDs of the routing table to their aliases (empty
// if the daemon does not say).
func nodeAliases(ctx context.Context, c *rpc.Client) map[string]string {
	aliases := map[string]string{}
	if nodes, err := c.NodeList(ctx); err == nil {
		for _, n := range nodes {
			aliases[n.DID] = n.Alias
		}
	}
	return aliases
}

// withAlias is "DID (alias)" when the node's alias is known, else the DID.
func withAlias(did string, aliases map[string]string) string {
	if a := aliases[did]; a != "" {
		return did + " (" + printable(a) + ")"
	}
	return did
}

func printRepoDetail(w io.Writer, d rpc.RepoDetail, aliases map[string]string) {
	fmt.Fprintln(w, printable(d.Name))
	if d.Description != "" {
		for line := range strings.SplitSeq(printable(d.Description), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	list := func(k string, vs []string) {
		if len(vs) == 0 {
			row(k, "-")
		}
		for i, v := range vs {
			if i > 0 {
				k = ""
			}
			row(k, v)
		}
	}
	row("id:", d.RepoID)
	row("url:", dash(megaURL(d.RepoID)))
	row("creator:", withAlias(d.Creator, aliases))
	row("default branch:", dash(printable(d.DefaultBranch)))
	delegates := make([]string, len(d.Delegates))
	for i, del := range d.Delegates {
		delegates[i] = withAlias(del, aliases)
	}
	list("delegates:", delegates)
	if d.DocVersion > 0 {
		row("identity:", fmt.Sprintf("version %d, threshold %d of %d", d.DocVersion, d.Threshold, len(d.Delegates)))
	}
	if p := d.Proposal; p != nil {
		row("proposed:", fmt.Sprintf("version %d (name %s, %d delegates, threshold %d), signed by %d, needs %d more",
			p.Version, printable(p.Name), len(p.Delegates), p.Threshold, len(p.Signers), p.Missing))
	}
	list("holders:", holderLines(d, aliases))
	if d.Local {
		row("shared from:", d.Path)
	}
	row("seeded:", seededText(d.RepoInfo))
	row("replica:", replicaText(d.RepoInfo))
	row("head:", dash(shortOID(d.Head)))
	if d.LastSync != nil {
		row("last sync:", d.LastSync.Local().Format(time.DateTime)+" ("+since(*d.LastSync)+" ago)")
	}
	if d.LastError != "" {
		row("last error:", oneLine(d.LastError, 200))
	}
	clones := make([]string, len(d.Clones))
	for i, cl := range d.Clones {
		clones[i] = fmt.Sprintf("%s (%s, %s)", printable(cl.Path), printable(cl.Branch), cloneText(cl))
	}
	list("working copies:", clones)
	tw.Flush()

	for _, ns := range d.Namespaces {
		mark := ""
		if ns.Canonical {
			mark = " (canonical)"
		}
		fmt.Fprintf(w, "\n%s%s\n", withAlias(ns.Node, aliases), mark)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range ns.Refs {
			fmt.Fprintf(tw, "  %s\t%s\n", printable(r.Name), shortOID(r.OID))
		}
		if len(ns.Refs) == 0 {
			fmt.Fprintln(tw, "  (no refs)")
		}
		tw.Flush()
	}
}

func runRepoSync(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	c, id, err := dialRepo(ctx, e, args)
	if err != nil {
		return err
	}
	defer c.Close()
	pl := newProgress(e)
	res, err := c.RepoSync(ctx, id, pl.update)
	pl.clear()
	if err != nil {
		return interrupted(ctx, err)
	}
	return e.output(res, func(w io.Writer) {
		if !res.Updated {
			fmt.Fprintln(w, "Already up to date")
			return
		}
		from := ""
		if res.From != "" {
			from = " from " + res.From
		}
		fmt.Fprintf(w, "Synced: %d %s updated%s (%s)\n", res.Namespaces, plural(res.Namespaces, "namespace", "namespaces"),
			from, humanBytes(res.Bytes))
	})
}

func runRepoClone(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) > 2 {
		return usagef("unexpected argument %q", args[2])
	}
	flagID, _ := fs.GetString("repo-id")
	output, _ := fs.GetString("output")
	// With --repo-id, a single argument is the directory: the seed's form
	// "repo clone --repo-id ID --output DIR" and "repo clone --repo-id ID DIR".
	if flagID != "" && len(args) == 1 && !looksLikeRepoID(args[0]) {
		args = []string{"", args[0]}
	}
	u, err := repoArg(fs, args, true)
	if err != nil {
		return err
	}
	id := u.Repo.String()
	dir := output
	if len(args) == 2 {
		if output != "" && output != args[1] {
			return usagef("the directory is given twice: --output %s and %s", output, args[1])
		}
		dir = args[1]
	}
	namespace, err := cloneNamespace(fs, u)
	if err != nil {
		return err
	}

	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	// The repository's name names the directory by default, and the result.
	name := ""
	info, err := c.RepoShow(ctx, id)
	switch {
	case err == nil:
		name = info.Name
	case rpc.IsCode(err, rpc.CodeNotFound) && dir != "":
		// Not known yet: the daemon may still find it on the network.
	default:
		return interrupted(ctx, err)
	}
	if dir == "" {
		if !safeDirName(name) {
			return fmt.Errorf("the repository's name %q cannot name a directory; give one: mecli repo clone %s DIR", name, id)
		}
		dir = name
	}
	abs, err := e.absPath(dir)
	if err != nil {
		return err
	}
	pl := newProgress(e)
	res, err := c.RepoClone(ctx, rpc.RepoCloneParams{RepoID: id, Path: abs, Namespace: namespace}, pl.update)
	pl.clear()
	if err != nil {
		return interrupted(ctx, err)
	}
	return e.output(res, func(w io.Writer) {
		fmt.Fprintf(w, "Cloned %s into %s (branch %s at %s)\n", printable(firstNonEmpty(name, filepath.Base(res.Path))),
			res.Path, printable(res.Branch), shortOID(res.Head))
	})
}

// cloneNamespace is the namespace repo clone asks for: --namespace, or the
// node the mega:// URL names ("" for the canonical one).
func cloneNamespace(fs *pflag.FlagSet, u identity.MegaURL) (string, error) {
	flag, _ := fs.GetString("namespace")
	if flag == "" {
		if u.HasNode() {
			return u.Node.String(), nil
		}
		return "", nil
	}
	ns, err := identity.ParseNodeID(flag)
	if err != nil {
		return "", fmt.Errorf("invalid --namespace: %w", err)
	}
	if u.HasNode() && ns != u.Node {
		return "", usagef("the namespace is given twice: --namespace %s and the URL's %s", ns, u.Node)
	}
	return ns.String(), nil
}

// looksLikeRepoID tells a repository (id or mega:// URL) from a directory
// name.
func looksLikeRepoID(s string) bool {
	_, err := parseRepoArg(s)
	return err == nil
}

// safeDirName reports whether a repository's name, which comes from the
// network, can be used as a directory name in the current directory: one
// path element, not "." or "..", not hidden.
func safeDirName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) &&
		!strings.HasPrefix(name, ".") && printable(name) == name && !strings.ContainsAny(name, "\n\t")
}

func runRepoPull(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) > 1 {
		return usagef("unexpected argument %q", args[1])
	}
	u, err := repoArg(fs, args, false)
	if err != nil {
		return err
	}
	id := ""
	if !u.Repo.IsZero() {
		if id, err = repoIDOnly(u); err != nil {
			return err
		}
	}
	path, _ := fs.GetString("path")
	if path != "" {
		if path, err = e.absPath(path); err != nil {
			return err
		}
	}
	var wd string
	if path == "" {
		if wd, err = e.wd(); err != nil {
			return err
		}
	}
	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	if path == "" {
		if path, err = findWorkingCopy(ctx, c, id, wd); err != nil {
			return interrupted(ctx, err)
		}
	}
	pl := newProgress(e)
	res, err := c.RepoPull(ctx, rpc.RepoPullParams{RepoID: id, Path: path}, pl.update)
	pl.clear()
	if err != nil {
		return interrupted(ctx, err)
	}
	return e.output(res, func(w io.Writer) {
		if !res.Updated {
			fmt.Fprintln(w, "Already up to date")
			return
		}
		fmt.Fprintf(w, "Updated %s: %s..%s\n", printable(res.Branch), shortOID(res.Old), shortOID(res.Head))
	})
}

// findWorkingCopy picks the working copy repo pull updates when no --path
// is given: the one that contains wd (the innermost), else — with a
// repository id, as in the seed's "repo pull --repo-id ID" — that
// repository's only working copy, else wd itself (the daemon then says
// whether it is a working copy).
func findWorkingCopy(ctx context.Context, c *rpc.Client, id, wd string) (string, error) {
	var repos []rpc.RepoInfo
	if id != "" {
		d, err := c.RepoShow(ctx, id)
		if err != nil {
			return "", err
		}
		repos = []rpc.RepoInfo{d.RepoInfo}
	} else {
		var err error
		if repos, err = c.RepoList(ctx); err != nil {
			return "", err
		}
	}
	best := ""
	for _, r := range repos {
		for _, cl := range r.Clones {
			if within(wd, cl.Path) && len(cl.Path) > len(best) {
				best = cl.Path
			}
		}
	}
	if best != "" {
		return best, nil
	}
	if id != "" {
		switch clones := repos[0].Clones; len(clones) {
		case 0:
		case 1:
			return clones[0].Path, nil
		default:
			paths := make([]string, len(clones))
			for i, cl := range clones {
				paths[i] = cl.Path
			}
			return "", fmt.Errorf("%s has %d working copies (%s); run this in one, or choose with --path",
				id, len(clones), strings.Join(paths, ", "))
		}
	}
	return wd, nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsAbs(dir) && rel != ".." && !strings.HasPrefix(rel, "../")
}

// runRepoSeed runs repo seed (seed true) or repo unseed.
func runRepoSeed(seed bool) func(context.Context, *env, *pflag.FlagSet, []string) error {
	return func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
		return repoSeed(ctx, e, args, seed)
	}
}

func runRepoSeedRequest(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	replicas, _ := fs.GetInt("replicas")
	wait, _ := fs.GetDuration("wait")
	if replicas < 1 || replicas > rpc.MaxSeedReplicas {
		return usagef("--replicas %d: want 1-%d", replicas, rpc.MaxSeedReplicas)
	}
	if wait < 0 || wait > rpc.MaxSeedWaitSeconds*time.Second {
		return usagef("--wait %v: want 0-%v", wait, rpc.MaxSeedWaitSeconds*time.Second)
	}
	c, id, err := dialRepo(ctx, e, args)
	if err != nil {
		return err
	}
	defer c.Close()
	secs := wait.Seconds()
	res, err := c.RepoSeedRequest(ctx, rpc.SeedRequestParams{RepoID: id, Replicas: replicas, WaitSeconds: &secs})
	if err != nil {
		return interrupted(ctx, err)
	}
	if err := e.output(res, func(w io.Writer) { printSeedRequest(w, res) }); err != nil {
		return err
	}
	if res.InSync < res.Replicas {
		return fmt.Errorf("%d of %d replicas in sync", res.InSync, res.Replicas)
	}
	return nil
}

func printSeedRequest(w io.Writer, res rpc.SeedRequestResult) {
	for _, a := range res.Answers {
		fmt.Fprintf(w, "%s  %s: %s\n", a.Node, a.Code, printable(a.Reason))
	}
	fmt.Fprintf(w, "%d accepted; %d of %d replicas in sync\n", res.Accepted, res.InSync, res.Replicas)
}

// seededText says whether the node seeds the repository, and for whom.
func seededText(r rpc.RepoInfo) string {
	switch {
	case !r.Seeded:
		return "no"
	case r.SeedRequester != "":
		return "yes, asked by " + r.SeedRequester
	}
	return "yes"
}

// dialRepo dials the daemon and picks the repository: the one argument, or
// the one the current directory is a working copy of.
func dialRepo(ctx context.Context, e *env, args []string) (*rpc.Client, string, error) {
	if len(args) > 1 {
		return nil, "", usagef("unexpected argument %q", args[1])
	}
	arg := ""
	if len(args) == 1 {
		if _, err := parseRepoID(args[0]); err != nil {
			return nil, "", err
		}
		arg = args[0]
	}
	c, err := dial(ctx, e)
	if err != nil {
		return nil, "", err
	}
	id, err := repoOrHere(ctx, e, c, arg)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	return c, id, nil
}

func repoSeed(ctx context.Context, e *env, args []string, seed bool) error {
	c, id, err := dialRepo(ctx, e, args)
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.RepoSeed(ctx, id, seed)
	if err != nil {
		return interrupted(ctx, err)
	}
	return e.output(info, func(w io.Writer) {
		if seed {
			fmt.Fprintf(w, "Seeding %s (%s): the node replicates it from now on\n", printable(info.Name), info.RepoID)
		} else {
			fmt.Fprintf(w, "Stopped seeding %s (%s); the replica is kept\n", printable(info.Name), info.RepoID)
		}
	})
}

// oneLine fits s on one table cell of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(printable(s)), " ")
	return truncate(s, n)
}

// shortDID abbreviates a did:key to its last 8 characters.
func shortDID(did string) string {
	if len(did) <= 8 {
		return dash(did)
	}
	return "…" + did[len(did)-8:]
}

// shortOID is the first 7 hex digits of an object id, as git shows it.
func shortOID(oid string) string {
	if len(oid) > 7 {
		return oid[:7]
	}
	return oid
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// humanBytes formats a size: "512 B", "12.3 KiB", "4.0 MiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB"} {
		v /= 1024
		if v < 1024 || unit == "GiB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	return "" // not reached
}
