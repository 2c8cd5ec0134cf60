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
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// errUsage is the one line printed when git-remote-mega is run by hand.
var errUsage = errors.New("usage: git-remote-mega <remote> [<url>]; git runs it for mega://<repo-id>[/<node-did>] URLs (git clone mega://…)")

// maxLine bounds one command line from git.
const maxLine = 4096

// publishTimeout bounds repo.publish after a push: reading the namespace's
// refs, signing and announcing them take milliseconds.
const publishTimeout = time.Minute

// Exit statuses: git only checks for non-zero, and prints nothing of its
// own when a helper fails before the connection is set up, so the helper's
// one line on stderr is what the user reads.
const (
	exitOK    = 0
	exitFatal = 128 // git's own status for fatal errors
	exitUsage = 2
)

// helper is one run of git-remote-mega: the commands git sends on in, the
// answers on out, messages for the user on errOut.
type helper struct {
	in     io.Reader
	out    io.Writer
	errOut io.Writer
	env    []string // the environment, as os.Environ

	// git is the git executable; default "git" from PATH.
	git string
	// dial connects to the daemon; default rpc.Dial on the root the
	// environment names.
	dial func(ctx context.Context) (*rpc.Client, error)

	// Set by git's "option" commands.
	verbosity    int  // 0 quiet, 1 normal, 2+ verbose
	progress     bool // progress meters (git says true when stderr is a terminal)
	checkConnect bool // git may be told the objects are complete ("connectivity-ok")

	// handoff, once set, is the replica handed to a clone by hard links
	// (see handOff): git then lists and fetches through the helper's
	// "list" and "fetch" commands instead of upload-pack.
	handoff *rpc.LocateResult
	// extraEnv is added to the service's environment (the push hook's).
	extraEnv []string
	// pushProxy relays receive-pack's stream through the rewriting of
	// patches.go instead of handing it the helper's stdin and stdout.
	pushProxy bool
}

func newHelper(in io.Reader, out, errOut io.Writer, env []string) *helper {
	h := &helper{in: in, out: out, errOut: errOut, env: env, git: "git", verbosity: 1}
	h.dial = func(ctx context.Context) (*rpc.Client, error) {
		root, err := identity.ResolveRoot(h.getenv(identity.RootEnv))
		if err != nil {
			return nil, err
		}
		return rpc.Dial(ctx, root)
	}
	return h
}

func (h *helper) getenv(key string) string {
	for i := len(h.env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(h.env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// workTree is the working copy git runs the helper for ("" for a bare
// repository): git sets GIT_DIR, and a working copy's is <work tree>/.git.
// The daemon records it as a clone, as mecli repo clone does.
func (h *helper) workTree() string {
	gitDir := h.getenv("GIT_DIR")
	if gitDir == "" {
		return ""
	}
	abs, err := filepath.Abs(gitDir)
	if err != nil || filepath.Base(abs) != ".git" {
		return ""
	}
	return filepath.Dir(abs)
}

// run serves git's commands; args are the helper's arguments, "<remote>
// [<url>]". It returns the exit status.
func (h *helper) run(ctx context.Context, args []string) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-h" || args[0] == "--help") {
		// Run by hand: git never names a remote like a flag.
		if args[0] == "--version" {
			fmt.Fprintln(h.out, "git-remote-mega", rpc.Version)
		} else {
			fmt.Fprintln(h.out, errUsage)
		}
		return exitOK
	}
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintf(h.errOut, "mega: %v\n", errUsage)
		return exitUsage
	}
	// git passes the URL as the second argument whenever it runs a
	// helper for a mega:// or mega::<address> URL; alone, the first one
	// can only be the URL too.
	u, urlErr := identity.ParseMegaURL(args[len(args)-1])
	for {
		line, err := readLine(h.in)
		if errors.Is(err, io.EOF) && line == "" {
			return exitOK // git hung up: nothing more to do
		}
		if err != nil {
			return h.fatal(fmt.Errorf("reading git's command: %w", err))
		}
		if urlErr != nil {
			// Reported once git talked, so it reads our line, not a
			// broken pipe.
			return h.fatal(urlErr)
		}
		cmd, arg, _ := strings.Cut(line, " ")
		switch cmd {
		case "capabilities":
			h.reply("option", "connect", "fetch", "check-connectivity", "") // a blank line ends the list
		case "option":
			h.reply(h.option(arg))
		case "connect":
			if code, fellBack := h.connect(ctx, u, arg); !fellBack {
				return code
			}
		case "list":
			if err := h.list(); err != nil {
				return h.fatal(err)
			}
		case "fetch":
			if err := h.fetchHandedOff(line); err != nil {
				return h.fatal(err)
			}
		case "":
			return exitOK // the end of the command stream
		default:
			return h.fatal(fmt.Errorf("git sent the unknown command %q", line))
		}
	}
}

// option applies "option <name> <value>" and returns the answer line.
func (h *helper) option(arg string) string {
	name, value, _ := strings.Cut(arg, " ")
	switch name {
	case "verbosity":
		n, err := strconv.Atoi(value)
		if err != nil {
			return "error invalid verbosity " + strconv.Quote(value)
		}
		h.verbosity = n
		return "ok"
	case "check-connectivity":
		h.checkConnect = value == "true"
		return "ok"
	case "cloning":
		return "ok"
	case "progress":
		switch value {
		case "true":
			h.progress = true
		case "false":
			h.progress = false
		default:
			return "error invalid progress " + strconv.Quote(value)
		}
		return "ok"
	}
	return "unsupported"
}

// connect serves "connect <service>": the stream becomes the service's,
// unless the helper fell back (fellBack) to its own list and fetch
// commands, for a clone that takes the replica's objects by hard links.
func (h *helper) connect(ctx context.Context, u identity.MegaURL, service string) (code int, fellBack bool) {
	switch service {
	case "git-upload-pack":
		if h.handoff != nil { // git connects again to fetch: same answer
			return exitOK, h.reply("fallback") == nil
		}
		return h.fetch(ctx, u)
	case "git-receive-pack":
		return h.push(ctx, u), false
	case "git-upload-archive":
		return h.fatal(errors.New("git archive --remote is not supported for mega:// URLs; clone the repository instead")), false
	}
	return h.fatal(fmt.Errorf("git asked for the unknown service %q", service)), false
}

// fetch syncs the repository, then hands the replica's objects to a new
// clone (fellBack: git goes on with list and fetch), or serves git
// upload-pack from the chosen namespace of the replica.
func (h *helper) fetch(ctx context.Context, u identity.MegaURL) (code int, fellBack bool) {
	git, err := h.gitPath()
	if err != nil {
		return h.fatal(err), false
	}
	c, err := h.dial(ctx)
	if err != nil {
		return h.fatal(err), false
	}
	defer c.Close()
	repo := u.Repo.String()

	st := h.newStatus("syncing " + repo + " with the network")
	res, syncErr := c.RepoSync(ctx, repo, st.update)
	st.done(syncErr == nil)
	if ctx.Err() != nil {
		return h.fatal(errors.New("interrupted")), false
	}
	// A new clone takes the replica's objects by hard links; anything else
	// is served by upload-pack, with the replica held meanwhile: no repack
	// removes a pack it reads.
	p := rpc.RepoLocateParams{RepoID: repo, WorkTree: h.workTree(), ObjectsDir: h.newClone()}
	p.Hold = p.ObjectsDir == ""
	if u.HasNode() {
		p.Namespace = u.Node.String()
	}
	loc, err := c.RepoLocate(ctx, p)
	if err != nil && p.ObjectsDir != "" && !rpc.IsCode(err, rpc.CodeNotFound) {
		// Linking failed (another file system): upload-pack sends a pack.
		h.emptyObjects(p.ObjectsDir)
		p.ObjectsDir, p.Hold = "", true
		loc, err = c.RepoLocate(ctx, p)
	}
	if err != nil {
		if syncErr != nil && rpc.IsCode(err, rpc.CodeNotFound) {
			return h.fatal(syncErr), false // why the node has no replica
		}
		return h.fatal(err), false
	}
	switch {
	case syncErr != nil:
		h.warn("could not sync %s from the network (%s); fetching from this node's replica, which may be behind", repo, oneLine(syncErr.Error()))
	case res.Updated && h.verbosity > 0:
		fmt.Fprintf(h.errOut, "mega: received %s of %s from %s\n", plural(res.Namespaces, "namespace"), repo, res.From)
	}
	if p.ObjectsDir != "" {
		h.handoff = &loc
		return exitOK, h.reply("fallback") == nil
	}
	return h.serve(git, loc, "upload-pack", "--strict"), false
}

// push runs git receive-pack into this node's own namespace, then has the
// daemon sign and announce it.
func (h *helper) push(ctx context.Context, u identity.MegaURL) int {
	git, err := h.gitPath()
	if err != nil {
		return h.fatal(err)
	}
	c, err := h.dial(ctx)
	if err != nil {
		return h.fatal(err)
	}
	repo := u.Repo.String()
	p := rpc.RepoLocateParams{RepoID: repo, Own: true}
	if u.HasNode() {
		p.Namespace = u.Node.String()
	}
	loc, err := c.RepoLocate(ctx, p)
	c.Close()
	if err != nil {
		return h.fatal(err)
	}
	// Forced updates and deletions are the pusher's business in its own
	// namespace (git's client already refuses a non-fast-forward without
	// --force); only branches and tags can be signed, so other refs are
	// hidden, which makes receive-pack refuse pushes to them.
	// Pushes to refs/patches open patches (patches.go).
	hookDir, hookArgs, hookEnv, cleanup, err := pushHooks()
	if err != nil {
		return h.fatal(err)
	}
	defer cleanup()
	args := append([]string{
		"-c", "receive.denyNonFastForwards=false", "-c", "receive.denyDeletes=false",
		"-c", "transfer.hideRefs=refs/", "-c", "transfer.hideRefs=!refs/heads/", "-c", "transfer.hideRefs=!refs/tags/",
	}, hookArgs...)
	h.extraEnv, h.pushProxy = hookEnv, true
	code := h.serve(git, loc, append(args, "receive-pack")...)
	if code != exitOK {
		return code
	}
	// Publish even if git was interrupted meanwhile: the refs are written.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	c, err = h.dial(pctx)
	if err != nil {
		return h.fatal(fmt.Errorf("the push is in this node's replica but not published (%w); push again to publish it", err))
	}
	defer c.Close()
	if err := h.patchPush(pctx, c, repo, loc, hookDir); err != nil {
		h.warn("%v", err)
	}
	pub, err := c.RepoPublish(pctx, repo)
	if err != nil {
		return h.fatal(fmt.Errorf("the push is in this node's replica but not published (%w); push again to publish it", err))
	}
	if pub.Updated && h.verbosity > 0 {
		fmt.Fprintf(h.errOut, "mega: published %s of %s (seq %d)\n", plural(len(pub.Refs), "ref"), pub.RepoID, pub.Seq)
	}
	return exitOK
}

// serve tells git the connection is up and runs "git <args…> <git_dir>"
// on the helper's stdin and stdout with GIT_NAMESPACE set, until it exits.
func (h *helper) serve(git string, loc rpc.LocateResult, args ...string) int {
	if !filepath.IsAbs(loc.GitDir) {
		return h.fatal(fmt.Errorf("the daemon gave the replica's path as %q, not an absolute path", loc.GitDir))
	}
	if !validNamespace(loc.Namespace) {
		return h.fatal(fmt.Errorf("the daemon gave the namespace as %q, not a node id", loc.Namespace))
	}
	if err := h.reply(""); err != nil { // a blank line: the connection is up
		return exitFatal
	}
	cmd := exec.Command(git, append(args, loc.GitDir)...) // absolute: never taken for an option
	cmd.Dir = loc.GitDir
	cmd.Env = append(serviceEnv(h.env, loc.Namespace), h.extraEnv...)
	cmd.Stderr = h.errOut
	start := h.startDirect
	if h.pushProxy {
		start = h.startProxied // patches.go
	}
	wait, err := start(cmd)
	if err != nil {
		return h.fatal(fmt.Errorf("running git: %w", err))
	}
	err = wait()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if code := ee.ExitCode(); code > 0 {
			return code
		}
		return exitFatal // killed by a signal
	}
	if err != nil {
		return h.fatal(fmt.Errorf("running git: %w", err))
	}
	return exitOK
}

// startDirect starts the service on the helper's own stdin and stdout.
func (h *helper) startDirect(cmd *exec.Cmd) (wait func() error, err error) {
	cmd.Stdin, cmd.Stdout = h.in, h.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The service has its own copies of our stdin and stdout: drop ours,
	// so that git sees the connection end exactly when the service ends.
	for _, f := range []any{h.in, h.out} {
		if f, ok := f.(*os.File); ok {
			f.Close()
		}
	}
	return cmd.Wait, nil
}

// validNamespace accepts what GIT_NAMESPACE may be here: a did:key without
// its prefix, letters and digits only (a "/" would reach other refs).
func validNamespace(ns string) bool {
	if ns == "" || len(ns) > 128 {
		return false
	}
	for _, c := range ns {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// gitPath finds git before the connection is set up, so a missing git is
// one clear line rather than a hung-up connection.
func (h *helper) gitPath() (string, error) {
	p, err := exec.LookPath(h.git)
	if err != nil {
		return "", fmt.Errorf("cannot find git: %w", err)
	}
	return p, nil
}

// serviceEnv is the environment of upload-pack and receive-pack: the
// user's, minus what points git at the repository git runs the helper
// for (GIT_DIR and friends) or adds configuration (-c), with
// GIT_NAMESPACE set. No user or system configuration is read, as for the
// daemon's own git commands: the replica behaves the same for everybody.
// GIT_PROTOCOL stays, so protocol v2 works when git asks for it.
func serviceEnv(env []string, ns string) []string {
	drop := map[string]bool{
		"GIT_DIR": true, "GIT_WORK_TREE": true, "GIT_INDEX_FILE": true, "GIT_OBJECT_DIRECTORY": true,
		"GIT_ALTERNATE_OBJECT_DIRECTORIES": true, "GIT_COMMON_DIR": true, "GIT_IMPLICIT_WORK_TREE": true,
		"GIT_PREFIX": true, "GIT_NAMESPACE": true, "GIT_QUARANTINE_PATH": true, "GIT_SHALLOW_FILE": true,
		"GIT_GRAFT_FILE": true, "GIT_REPLACE_REF_BASE": true, "GIT_NO_REPLACE_OBJECTS": true,
		"GIT_CONFIG": true, "GIT_CONFIG_PARAMETERS": true, "GIT_CONFIG_COUNT": true,
		"GIT_CONFIG_GLOBAL": true, "GIT_CONFIG_SYSTEM": true, "GIT_CONFIG_NOSYSTEM": true,
		"GIT_CEILING_DIRECTORIES": true, "GIT_DISCOVERY_ACROSS_FILESYSTEM": true,
	}
	out := make([]string, 0, len(env)+4)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] || strings.HasPrefix(k, "GIT_CONFIG_KEY_") || strings.HasPrefix(k, "GIT_CONFIG_VALUE_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GIT_NAMESPACE="+ns, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
}

// reply writes lines to git, each ending in a newline.
func (h *helper) reply(lines ...string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	_, err := io.WriteString(h.out, b.String())
	return err
}

// fatal prints err as the one line git shows and returns the status to
// exit with.
func (h *helper) fatal(err error) int {
	fmt.Fprintf(h.errOut, "fatal: mega: %s\n", oneLine(err.Error()))
	return exitFatal
}

func (h *helper) warn(format string, a ...any) {
	fmt.Fprintf(h.errOut, "warning: mega: %s\n", oneLine(fmt.Sprintf(format, a...)))
}

// oneLine joins a multi-line message (errors.Join's) into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "; ")
}

// readLine reads one command line without reading past it: what follows a
// "connect" belongs to the service git talks to next.
func readLine(r io.Reader) (string, error) {
	var b []byte
	var c [1]byte
	for {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return string(b), nil
			}
			if len(b) >= maxLine {
				return "", fmt.Errorf("a command longer than %d bytes", maxLine)
			}
			b = append(b, c[0])
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				return string(b), io.ErrUnexpectedEOF
			}
			return string(b), err
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// statusDelay is how long a daemon call may take before the helper says
// what it is waiting for: a quick sync (the usual case: the replica is up
// to date) or a quick failure prints nothing but its result.
const statusDelay = 300 * time.Millisecond

// status shows what a long daemon call is doing, on stderr, once it takes
// longer than statusDelay or reports progress, on one line updated in
// place, when git asks for progress meters (stderr is a terminal); else
// nothing.
type status struct {
	h    *helper
	what string

	mu       sync.Mutex
	phase    string    // the message of the progress shown
	since    time.Time // when that phase began, for its rate
	timer    *time.Timer
	shown    bool // the status was printed
	open     bool // a progress line without its newline is on the terminal
	finished bool
}

func (h *helper) newStatus(what string) *status {
	s := &status{h: h, what: what}
	if h.verbosity > 0 {
		s.timer = time.AfterFunc(statusDelay, s.fire)
	}
	return s
}

// fire shows the status once the call is slow.
func (s *status) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.showLocked("")
}

func (s *status) showLocked(detail string) {
	if s.finished || s.h.verbosity <= 0 {
		return
	}
	switch {
	case s.h.progress:
		line := "mega: " + s.what
		if detail != "" {
			line += ": " + detail
		}
		fmt.Fprintf(s.h.errOut, "\r\x1b[K%s", line)
		s.open = true
	default:
		// Not a terminal (git said so): no progress, nor a line saying
		// what is awaited; what the call ends with is printed by itself.
	}
	s.shown = true
}

// update is the progress callback of the call.
func (s *status) update(p rpc.Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Message != s.phase || s.since.IsZero() {
		s.phase, s.since = p.Message, time.Now()
	}
	detail := p.Message
	if p.Done > 0 {
		detail += ", " + byteSize(p.Done)
		if d := time.Since(s.since); d >= 200*time.Millisecond {
			detail += ", " + byteSize(int64(float64(p.Done)/d.Seconds())) + "/s"
		}
	}
	s.showLocked(detail)
}

// done ends the status once the call returned.
func (s *status) done(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if !s.open {
		return
	}
	s.open = false
	if ok {
		fmt.Fprintf(s.h.errOut, "\r\x1b[Kmega: %s, done.\n", s.what)
	} else {
		fmt.Fprintln(s.h.errOut)
	}
}

func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
