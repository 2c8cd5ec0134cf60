package rpc

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// ProgressInterval is the shortest time between two progress notifications
// of one call: updates that come sooner are coalesced, the newest kept, so
// a caller sees at most about ten a second however often the daemon
// reports. The last update is always delivered before the answer.
const ProgressInterval = 100 * time.Millisecond

// The repo.* handlers check every param before the Service sees it: ids are
// parsed and passed on in canonical form ("did:repo:z…", the W3C did:key),
// paths are absolute and clean, names and descriptions fit the limits of the
// repository identity document (protocol/wire). A Service may rely on it.

func handleRepoAdd(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoAddParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	if err := checkPath(c, "path", p.Path); err != nil {
		return nil, err
	}
	if p.Name != "" && !validText(p.Name, wire.MaxRepoNameLen, false) {
		return nil, Errorf(CodeInvalidParams, "%s: invalid name: want at most %d bytes of printable UTF-8", c.Method, wire.MaxRepoNameLen)
	}
	if !validText(p.Description, wire.MaxDescriptionLen, true) {
		return nil, Errorf(CodeInvalidParams, "%s: invalid description: want at most %d bytes of UTF-8 without control characters other than newline and tab",
			c.Method, wire.MaxDescriptionLen)
	}
	info, err := svc.RepoAdd(ctx, p)
	if err != nil {
		return nil, err
	}
	return repoInfoOut(info), nil
}

func handleRepoList(ctx context.Context, svc Service, c *call) (any, error) {
	if err := noParams(c); err != nil {
		return nil, err
	}
	repos, err := svc.RepoList(ctx)
	if err != nil {
		return nil, err
	}
	repos = nonNil(repos)
	for i := range repos {
		repos[i] = repoInfoOut(repos[i])
	}
	return repos, nil
}

func handleRepoShow(ctx context.Context, svc Service, c *call) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	d, err := svc.RepoShow(ctx, p)
	if err != nil {
		return nil, err
	}
	d.RepoInfo = repoInfoOut(d.RepoInfo)
	d.Namespaces = nonNil(d.Namespaces)
	for i := range d.Namespaces {
		d.Namespaces[i].Refs = nonNil(d.Namespaces[i].Refs)
	}
	return d, nil
}

func handleRepoSync(ctx context.Context, svc Service, c *call) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	pr := newProgressReporter(c)
	defer pr.finish()
	res, err := svc.RepoSync(ctx, p, pr.report)
	pr.finish() // the last update goes out before the answer
	return res, err
}

func handleRepoClone(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoCloneParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, true); err != nil {
		return nil, err
	}
	if err := checkPath(c, "path", p.Path); err != nil {
		return nil, err
	}
	if p.Namespace != "" {
		id, err := identity.ParseNodeID(p.Namespace)
		if err != nil {
			return nil, Errorf(CodeInvalidParams, "%s: invalid namespace: %w", c.Method, err)
		}
		p.Namespace = id.String()
	}
	pr := newProgressReporter(c)
	defer pr.finish()
	res, err := svc.RepoClone(ctx, p, pr.report)
	pr.finish()
	return res, err
}

func handleRepoPull(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoPullParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, false); err != nil {
		return nil, err
	}
	if err := checkPath(c, "path", p.Path); err != nil {
		return nil, err
	}
	pr := newProgressReporter(c)
	defer pr.finish()
	res, err := svc.RepoPull(ctx, p, pr.report)
	pr.finish()
	return res, err
}

func handleRepoSeed(ctx context.Context, svc Service, c *call) (any, error) {
	return repoSeed(ctx, svc, c, true)
}

func handleRepoUnseed(ctx context.Context, svc Service, c *call) (any, error) {
	return repoSeed(ctx, svc, c, false)
}

func repoSeed(ctx context.Context, svc Service, c *call, seed bool) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	info, err := svc.RepoSeed(ctx, p, seed)
	if err != nil {
		return nil, err
	}
	return repoInfoOut(info), nil
}

// repoIDParams decodes and checks the params of a method that takes
// RepoIDParams.
func repoIDParams(c *call) (RepoIDParams, error) {
	var p RepoIDParams
	if err := decodeParams(c, &p); err != nil {
		return p, err
	}
	var err error
	p.RepoID, err = checkRepoID(c, p.RepoID, true)
	return p, err
}

// checkRepoID parses a repo_id param and returns it in canonical form;
// an empty one is an error only if required.
func checkRepoID(c *call, s string, required bool) (string, error) {
	if s == "" {
		if required {
			return "", Errorf(CodeInvalidParams, "%s: repo_id is required (did:repo:z…)", c.Method)
		}
		return "", nil
	}
	id, err := identity.ParseRepoID(s)
	if err != nil {
		return "", Errorf(CodeInvalidParams, "%s: invalid repo_id: %w", c.Method, err)
	}
	return id.String(), nil
}

// checkPath accepts only absolute, clean paths: the daemon's working
// directory is not the caller's, and a path is taken as the caller wrote it
// (cleaning "a/link/.." would change its meaning), so the caller resolves.
func checkPath(c *call, name, p string) error {
	switch {
	case p == "":
		return Errorf(CodeInvalidParams, "%s: %s is required: path must be absolute", c.Method, name)
	case strings.IndexByte(p, 0) >= 0 || !utf8.ValidString(p):
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: a NUL byte or invalid UTF-8", c.Method, name, p)
	case !filepath.IsAbs(p):
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: path must be absolute", c.Method, name, p)
	case filepath.Clean(p) != p:
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: path must be absolute and clean (%q)", c.Method, name, p, filepath.Clean(p))
	}
	return nil
}

// validText reports whether s is at most max bytes of UTF-8 without control
// characters (newline and tab allowed if multiline): the rule of
// protocol/wire's repository identity document.
func validText(s string, max int, multiline bool) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return false
		}
	}
	return true
}

// repoInfoOut makes a RepoInfo's lists encode as [] rather than null.
func repoInfoOut(info RepoInfo) RepoInfo {
	info.Delegates = nonNil(info.Delegates)
	info.Holders = nonNil(info.Holders)
	info.Clones = nonNil(info.Clones)
	return info
}

// progressReporter is the ProgressFunc a long call hands to the Service. It
// sends "progress" notifications for the call, at most one per interval:
// an update that comes sooner waits (the newest replacing older ones) and
// is sent when the interval is over, or by finish. After finish it sends
// nothing, so nothing follows the answer, even from a Service that keeps
// the func. It may be called from any goroutine; a call may block while
// the notification is written to a slow client (WriteTimeout bounds it).
type progressReporter struct {
	c        *call
	interval time.Duration

	mu      sync.Mutex
	last    time.Time // when the last notification was sent
	pending *Progress // the newest update not sent yet
	timer   *time.Timer
	done    bool
}

func newProgressReporter(c *call) *progressReporter {
	interval := c.progressInterval
	if interval == 0 {
		interval = ProgressInterval
	}
	return &progressReporter{c: c, interval: interval}
}

func (r *progressReporter) report(done, total int64, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.c.ID == nil {
		return
	}
	p := Progress{Done: done, Total: total, Message: message}
	wait := r.interval - time.Since(r.last)
	if r.pending == nil && wait <= 0 {
		r.sendLocked(p)
		return
	}
	r.pending = &p
	if r.timer == nil {
		r.timer = time.AfterFunc(max(wait, 0), r.flush)
	}
}

// flush sends the pending update once the interval is over.
func (r *progressReporter) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.done || r.pending == nil {
		return
	}
	r.sendLocked(*r.pending)
	r.pending = nil
}

// finish sends the pending update, if any, and stops the reporter. It is
// idempotent.
func (r *progressReporter) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if r.timer != nil {
		r.timer.Stop() // a flush already running finds done set
		r.timer = nil
	}
	if r.pending != nil {
		r.sendLocked(*r.pending)
		r.pending = nil
	}
}

// sendLocked sends one notification; the lock keeps them in order.
func (r *progressReporter) sendLocked(p Progress) {
	r.last = time.Now()
	_ = r.c.Progress(p.Done, p.Total, p.Message) // a failed write ends the connection anyway
}
