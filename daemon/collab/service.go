// Package collab stores, loads and folds collaborative objects (DESIGN D7,
// spec/collab.md §6): each change is a git commit in its author's namespace
// of the repository's replica, under refs/cobs/<type>/<object-id>. The
// service writes this node's changes, has the replica re-sign and announce
// its namespace, loads every change of an object from every namespace
// through one git cat-file process per load, checks that each commit
// repeats its change's parents, and folds the set with protocol/collab.
// Folded states are cached by the set of heads; parsed changes by commit id.
//
// It knows the replica only through the small Replica interface and
// returns domain errors (ErrNotFound, ErrInvalid, ErrPermission); the
// daemon maps them to RPC codes.
package collab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Domain errors; test with errors.Is.
var (
	// ErrNotFound: no such repository replica, object or comment.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the change would break a rule of the change format (a
	// limit, an empty title) or names no object unambiguously.
	ErrInvalid = errors.New("invalid")
	// ErrPermission: the fold would skip the action (spec/collab.md §5.2),
	// so it is not written.
	ErrPermission = errors.New("not allowed")
)

func errorf(kind error, format string, a ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, a...))
}

// Replica is what the service needs of replication.
type Replica interface {
	// Doc returns the repository's verified identity document.
	Doc(repo identity.RepoID) (*wire.RepoDoc, error)
	// Dir is the repository's bare replica.
	Dir(repo identity.RepoID) string
	// PublishOwn signs and announces this node's namespace as it is now.
	PublishOwn(ctx context.Context, repo identity.RepoID) error
}

// Config configures a Service.
type Config struct {
	Key     *identity.Key
	Git     *gitstore.Runner
	Replica Replica
	Log     *slog.Logger // default: discard
	// Announce publishes an ActivityAnnouncement (gossip); default none.
	Announce func(a *wire.ActivityAnnouncement) error
	// OnChanged, if set, is told of an object whose state changed: a
	// change written here, or new heads that a fetch brought.
	OnChanged func(repo identity.RepoID, typ cob.ObjectType, object cob.ObjectID)
	// Now is the clock of new changes; default time.Now.
	Now func() time.Time
}

// Cache bounds: past them a cache starts over (entries are cheap to
// recompute; parsed changes never go stale, being content-addressed).
const (
	maxCachedCommits = 1 << 17
	maxCachedFolds   = 1 << 12
)

// Service stores and folds collaborative objects. Safe for concurrent use.
type Service struct {
	cfg  Config
	log  *slog.Logger
	self string // this node's namespace

	write sync.Mutex // serialises this node's changes

	mu      sync.Mutex
	commits map[string]*commitInfo // commit id → what it holds
	folds   map[string]*folded     // repo, object and sorted tips → fold
	tips    map[identity.RepoID]map[cob.ObjectID]string
}

// commitInfo is one commit read back: its parents and the change its blob
// holds, or why it holds none.
type commitInfo struct {
	parents []string
	change  *cob.Change
	err     error
}

// folded is an object's fold and what it was made of.
type folded struct {
	issue   *cob.Issue // or
	patch   *cob.Patch
	report  cob.Report
	changes []*cob.Change           // the valid changes loaded
	commits map[cob.ChangeID]string // change id → its commit
	left    []error                 // commits left out by the loader
}

// New makes the service.
func New(cfg Config) (*Service, error) {
	if cfg.Key == nil || cfg.Git == nil || cfg.Replica == nil {
		return nil, errors.New("collab: Key, Git and Replica are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Announce == nil {
		cfg.Announce = func(*wire.ActivityAnnouncement) error { return nil }
	}
	if cfg.OnChanged == nil {
		cfg.OnChanged = func(identity.RepoID, cob.ObjectType, cob.ObjectID) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		cfg: cfg, log: cfg.Log, self: namespace(cfg.Key.ID()),
		commits: map[string]*commitInfo{},
		folds:   map[string]*folded{},
		tips:    map[identity.RepoID]map[cob.ObjectID]string{},
	}, nil
}

// namespace is a node's namespace in a replica (replica.Namespace).
func namespace(id identity.NodeID) string { return strings.TrimPrefix(id.String(), "did:key:") }

// open returns repo's replica and document.
func (s *Service) open(repo identity.RepoID) (*gitstore.Bare, *wire.RepoDoc, error) {
	doc, err := s.cfg.Replica.Doc(repo)
	if err != nil {
		return nil, nil, errorf(ErrNotFound, "this node holds no replica of %s: %v", repo, err)
	}
	bare, err := s.cfg.Git.OpenBare(s.cfg.Replica.Dir(repo))
	if err != nil {
		return nil, nil, errorf(ErrNotFound, "this node holds no replica of %s: %v", repo, err)
	}
	return bare, doc, nil
}
