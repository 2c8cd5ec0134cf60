// Package web is the node's read-only web view (med --http): the node, the
// repositories it knows, and for each replica its README, branches and
// tags, file tree, files, history and commits with their diffs.
//
// Pages are rendered on the server with html/template, one stylesheet and
// no JavaScript. What the view shows comes from the same calls mecli makes
// (a Backend, which the daemon implements for rpc) and, for git objects,
// from the replica through gitstore: refs are the namespace owner's signed
// refs, never what the replica's ref files say, and a path from a URL is
// resolved by walking git trees one component at a time from a commit, so
// no URL ever names a file on disk. Only GET and HEAD are served.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Limits of what one page shows and of the server.
const (
	MaxBlobView   = 1 << 20   // bytes of a file shown on its page
	MaxBlobLines  = 20000     // lines of a file shown on its page
	MaxReadme     = 512 << 10 // bytes of a README rendered
	MaxDiff       = 2 << 20   // bytes of a commit's patch shown
	MaxPathDepth  = 64        // components of a path in a URL
	MaxURLPath    = 4096      // bytes of a request path
	LogPageSize   = 50        // commits per history page
	MaxLogPage    = 10000     // history pages
	MaxConcurrent = 16        // requests handled at once; others wait
	RequestTime   = 30 * time.Second
)

// ContentSecurityPolicy is sent with every answer: the page's own
// stylesheet and images, nothing else — no script, no frames, no forms.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Backend is what the view asks the node: the same facts node.info,
// node.peers, node.list, repo.list, repo.show, issue.list and issue.show
// give (the daemon's root answers from those methods).
type Backend interface {
	NodeInfo(ctx context.Context) (NodeInfo, error)
	NodePeers(ctx context.Context) ([]Peer, error)
	NodeList(ctx context.Context) ([]KnownNode, error)
	Repos(ctx context.Context) ([]Repo, error)
	// Repo returns an error wrapping ErrNotFound for a repository the node
	// does not know.
	Repo(ctx context.Context, id identity.RepoID) (Repo, error)
	// Issues lists a repository's issues, open and closed; Issue returns
	// one with its thread (an error wrapping ErrNotFound if there is none).
	// id is 4 to 64 lowercase hex digits (a prefix of the issue's id).
	Issues(ctx context.Context, repo identity.RepoID) ([]Issue, error)
	Issue(ctx context.Context, repo identity.RepoID, id string) (IssueThread, error)
	// Patches and Patch are the same for patches.
	Patches(ctx context.Context, repo identity.RepoID) ([]Patch, error)
	Patch(ctx context.Context, repo identity.RepoID, id string) (PatchThread, error)
}

// Patch is one patch as the node folds it; Base and Head are its latest
// revision's.
type Patch struct {
	ID, Title, State         string
	Author, AuthorAlias      string
	Labels                   []string
	Base, Head               string
	Revisions                int
	Created, Updated         time.Time
	MergedRevision, MergedAs string // set when merged
}

// PatchThread is a patch with its description, revisions, reviews and
// comments.
type PatchThread struct {
	Patch
	Description  string
	RevisionList []Revision
	Reviews      []Review
	Thread       []Comment
}

// Revision is one revision of a patch.
type Revision struct {
	ID, Author, Description, Base, Head string
	Created                             time.Time
}

// Review is a reviewer's verdict on a revision, with its inline remarks.
type Review struct {
	Author, AuthorAlias, Revision, Verdict, Summary string
	Inline                                          []InlineComment
	Created                                         time.Time
}

// InlineComment is a remark on lines of a file as of a commit.
type InlineComment struct {
	Commit, Path, Body string
	Start, End         uint64
}

// Issue is one issue as the node folds it.
type Issue struct {
	ID, Title, State, Reason string
	Author, AuthorAlias      string
	Labels, Assignees        []string
	Comments                 int
	Created, Updated         time.Time
}

// IssueThread is an issue with its body and comments.
type IssueThread struct {
	Issue
	Body   string
	Thread []Comment
}

// Comment is one comment of an issue.
type Comment struct {
	ID, Author, AuthorAlias, Body, ReplyTo string
	Created                                time.Time
	Edited, Redacted                       bool
}

// ErrNotFound is wrapped by a Backend's errors for what does not exist.
var ErrNotFound = errors.New("not found")

// NodeInfo describes this node.
type NodeInfo struct {
	DID, Alias, Kind, Version string
	ProtocolVersion           int
	Addresses                 []string // announced
	StartedAt                 time.Time
}

// Peer is a connected node.
type Peer struct {
	DID, Alias, RemoteAddr, Direction, Kind string
	ConnectedAt                             time.Time
}

// KnownNode is a node of the routing table.
type KnownNode struct {
	DID, Alias, Kind, Version string
	LastSeen                  time.Time
	Connected, Self           bool
}

// Repo is a repository as this node sees it.
type Repo struct {
	RepoID, Name, Description, DefaultBranch string
	Creator                                  string   // did:key
	Holders                                  []string // did:keys
	Replica                                  string   // the replica's state, as repo.list says it
	LastSync                                 time.Time
	// Refs are the creator's signed refs (nil if none reached this node):
	// the only refs the view shows. Updated is when they were signed.
	Refs    []gitstore.Ref
	Updated time.Time
}

// Config configures the view.
type Config struct {
	// Addr is host:port to listen on (TCP). An empty host means
	// 127.0.0.1; any host that is not a loopback address is allowed but
	// logged as a warning: the view has no access control.
	Addr       string
	Backend    Backend
	Git        *gitstore.Runner
	ReplicaDir func(identity.RepoID) string // the bare replica of a repository
	Log        *slog.Logger                 // default: discard
}

// Server is the web view: New binds it, Serve runs it.
type Server struct {
	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	loopback bool          // bound to a loopback address: Host headers are checked
	slots    chan struct{} // MaxConcurrent
	pages    *pages
}

// New checks cfg and binds the listener.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil || cfg.Git == nil || cfg.ReplicaDir == nil {
		return nil, errors.New("web: Backend, Git and ReplicaDir are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("web: address %q: %w", cfg.Addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	ip := ln.Addr().(*net.TCPAddr).IP
	s := &Server{cfg: cfg, log: cfg.Log, ln: ln, loopback: ip.IsLoopback(), slots: make(chan struct{}, MaxConcurrent)}
	if s.pages, err = newPages(); err != nil {
		ln.Close()
		return nil, err
	}
	if !s.loopback {
		s.log.Warn("the web view listens on a non-loopback address: anyone who can reach it can read every repository this node holds",
			"addr", ln.Addr().String())
	}
	return s, nil
}

// Addr is the bound address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close releases the listener of a Server that is not served.
func (s *Server) Close() error { return s.ln.Close() }

// Serve answers requests until ctx is done, then closes the listener and
// waits briefly for requests in flight.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * RequestTime,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	s.log.Info("web view running", "url", "http://"+s.Addr()+"/")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler is the view's HTTP handler: the guard in front of the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /style.css", s.style)
	mux.HandleFunc("GET /repos/{repo}", s.repo)
	mux.HandleFunc("GET /repos/{repo}/tree/{rest...}", s.tree)
	mux.HandleFunc("GET /repos/{repo}/blob/{rest...}", s.blob)
	mux.HandleFunc("GET /repos/{repo}/commits/{rest...}", s.history)
	mux.HandleFunc("GET /repos/{repo}/commit/{oid}", s.commit)
	mux.HandleFunc("GET /repos/{repo}/issues", s.issues)
	mux.HandleFunc("GET /repos/{repo}/issues/{id}", s.issue)
	mux.HandleFunc("GET /repos/{repo}/patches", s.patches)
	mux.HandleFunc("GET /repos/{repo}/patches/{id}", s.patch)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.fail(w, r, errNotFound("no such page")) })
	return s.guard(mux)
}

// guard answers what no page should see: methods other than GET and HEAD
// (405), foreign Host headers on a loopback listener (421, against DNS
// rebinding), and paths with empty, "." or ".." components, encoded
// slashes or NUL bytes (400). It sets the security headers of every
// answer and bounds the requests handled at once and their time.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			s.fail(w, r, &httpError{http.StatusMethodNotAllowed, "this view is read-only: only GET and HEAD are served"})
			return
		}
		if s.loopback && !loopbackHost(r.Host) {
			s.fail(w, r, &httpError{http.StatusMisdirectedRequest, "unexpected Host header"})
			return
		}
		if err := checkRequestPath(r.URL.EscapedPath()); err != nil {
			s.fail(w, r, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), RequestTime)
		defer cancel()
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-ctx.Done():
			s.fail(w, r, &httpError{http.StatusServiceUnavailable, "busy; try again"})
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// loopbackHost accepts the Host names a browser sends for a loopback
// address: localhost and loopback IPs, with any port.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRequestPath refuses a raw (still escaped) request path with a
// component that is empty (a "//" or an absolute path inside the path),
// "." or "..", in plain or percent-encoded form, or that holds an encoded
// slash, backslash or NUL. The mux would clean some of these into
// another page; the view refuses them instead.
func checkRequestPath(escaped string) error {
	if len(escaped) > MaxURLPath {
		return &httpError{http.StatusRequestURITooLong, "path too long"}
	}
	if escaped == "/" {
		return nil
	}
	segs := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // a trailing slash
	}
	for _, seg := range segs {
		lower := strings.ToLower(seg)
		switch {
		case seg == "", seg == ".", seg == "..":
			return errBadPath("empty, \".\" or \"..\" path component")
		case strings.Contains(lower, "%2f"), strings.Contains(lower, "%5c"), strings.Contains(lower, "%00"):
			return errBadPath("encoded slash, backslash or NUL in a path component")
		case strings.Contains(lower, "%2e"):
			// An encoded dot is only refused where it spells "." or "..".
			if d := strings.ReplaceAll(lower, "%2e", "."); d == "." || d == ".." {
				return errBadPath("encoded \".\" or \"..\" path component")
			}
		}
	}
	return nil
}

// httpError is an answer other than 200, with a message for the page.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errNotFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func errBadPath(msg string) error { return &httpError{http.StatusBadRequest, "bad path: " + msg} }

// statusOf maps an error to an HTTP status: httpError's own, 404 for
// ErrNotFound and missing git objects, 400 for arguments gitstore
// rejected, else 500.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, ErrNotFound), errors.Is(err, gitstore.ErrMissingObjects):
		return http.StatusNotFound
	case errors.Is(err, gitstore.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// fail answers with err's status and an error page. Internal errors are
// logged and shown without detail.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Warn("web view request failed", "path", r.URL.Path, "err", err)
		msg = "the node could not answer this request; its log says why"
	}
	s.render(w, r, status, "error", errorPage{Status: status, Text: http.StatusText(status), Message: msg})
}
