package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// ReplicaState is how the local replica compares with what was announced.
type ReplicaState int

// Replica states.
const (
	ReplicaMissing   ReplicaState = iota // known from gossip only
	ReplicaSyncing                       // a fetch is running
	ReplicaBehind                        // newer refs were announced
	ReplicaUpToDate                      // the replica holds the newest signed refs heard of
	ReplicaHeardOf                       // announced, but no holder was ever reachable: maybe not real
	ReplicaWorkError                     // the working repository shared from here cannot be read (LastError says why)
)

// CloneState is how a working copy compares with the replica.
type CloneState int

// Clone states.
const (
	CloneMissing  CloneState = iota // the directory is gone or not that repository
	CloneUpToDate                   // its branch equals the replica's
	CloneBehind                     // the replica has commits it lacks
	CloneAhead                      // it has local commits the replica lacks
	CloneDiverged                   // both
	CloneError                      // it cannot be read; Reason says why
)

// Info describes a repository as this node sees it.
type Info struct {
	Repo      identity.RepoID
	Doc       *wire.RepoDoc // nil when the node holds no replica
	Replica   ReplicaState
	Holders   []identity.NodeID // sorted
	Path      string            // the working repository shared from here, if any
	Seeded    bool
	Requester string // with Seeded: the node whose seed request made this node seed it, if any
	LastSync  time.Time
	LastError string
	Head      string // the canonical default branch's commit in the replica
	Clones    []CloneStatus
	// NameHint and DescriptionHint are what announcements say of a
	// repository whose document the node does not hold (Doc nil).
	NameHint, DescriptionHint string
}

// CloneStatus is one working copy made from the replica.
type CloneStatus struct {
	Path   string
	Branch string
	State  CloneState
	Reason string // for CloneError
}

// Info describes repo.
func (s *Service) Info(ctx context.Context, repo identity.RepoID) (Info, error) {
	st := s.state(repo)
	info := Info{
		Repo: repo, Path: st.Path, Seeded: s.Seeded(repo),
		LastSync: st.LastSync, LastError: st.LastError,
		Holders: s.Holders(repo),
	}
	if st.Seed == seedRequested && st.Path == "" {
		info.Requester = st.Requester
	}
	slices.SortFunc(info.Holders, func(a, b identity.NodeID) int { return strings.Compare(a.String(), b.String()) })
	doc, err := s.Doc(repo)
	switch {
	case errors.Is(err, ErrNotFound):
		info.NameHint, info.DescriptionHint = s.store.RepoNameHint(repo)
		switch {
		case s.Syncing(repo):
			info.Replica = ReplicaSyncing
		case !s.anyReachable(info.Holders):
			info.Replica = ReplicaHeardOf
		default:
			info.Replica = ReplicaMissing
		}
		return info, nil
	case err != nil:
		return info, err
	}
	info.Doc = doc
	switch {
	case st.Path != "" && st.WorkError:
		info.Replica = ReplicaWorkError
	case s.Syncing(repo):
		info.Replica = ReplicaSyncing
	case s.Behind(repo):
		info.Replica = ReplicaBehind
	default:
		info.Replica = ReplicaUpToDate
	}
	bare, err := s.openBare(repo)
	if err != nil {
		return info, nil
	}
	canon := Namespace(s.canonical(ctx, bare, doc))
	info.Head = branchTip(ctx, bare, canon, doc.DefaultBranch())
	for _, c := range st.Clones {
		info.Clones = append(info.Clones, s.cloneStatus(ctx, bare, c, canon))
	}
	return info, nil
}

// branchTip is the commit of refs/heads/branch in namespace ns ("" if none).
func branchTip(ctx context.Context, bare *gitstore.Bare, ns, branch string) string {
	refs, err := bare.Refs(ctx, ns)
	if err != nil {
		return ""
	}
	for _, r := range refs {
		if r.Name == "refs/heads/"+branch {
			return r.OID
		}
	}
	return ""
}

// unreadable says why the working repository or copy at path cannot be
// read, without naming the path, which listings and logs show beside it:
// "does not exist", "is not a git repository any more" (git's bare "not a
// git repository: PATH", a damaged .git or HEAD), or git's error.
func unreadable(path string, err error) string {
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
		return "does not exist"
	}
	if errors.Is(err, gitstore.ErrNotRepo) && err.Error() == gitstore.ErrNotRepo.Error()+": "+path {
		return "is not a git repository any more"
	}
	return "cannot be read: " + err.Error()
}

// canon is the canonical namespace, which a clone of mega://<repo> follows.
func (s *Service) cloneStatus(ctx context.Context, bare *gitstore.Bare, c cloneInfo, canon string) CloneStatus {
	out := CloneStatus{Path: c.Path, Branch: c.Branch, State: CloneMissing}
	if _, err := os.Stat(c.Path); errors.Is(err, os.ErrNotExist) {
		return out
	}
	branch, head, err := s.git.WorkHead(ctx, c.Path)
	if err != nil {
		out.State, out.Reason = CloneError, "it "+unreadable(c.Path, err)
		return out
	}
	out.Branch = branch
	tip := branchTip(ctx, bare, cmp.Or(c.Namespace, canon), branch)
	switch {
	case tip == "":
		out.State = CloneAhead // a branch the replica does not have
	case tip == head:
		out.State = CloneUpToDate
	default:
		out.State = s.compare(ctx, bare, c.Path, head, tip)
	}
	return out
}

// compare places a working copy's head against the replica's tip, asking
// whichever repository holds both commits.
func (s *Service) compare(ctx context.Context, bare *gitstore.Bare, work, head, tip string) CloneState {
	if has, err := bare.HasObjects(ctx, []string{head}); err == nil && has[head] {
		switch {
		case isAncestor(bare.IsAncestor(ctx, head, tip)):
			return CloneBehind
		case isAncestor(bare.IsAncestor(ctx, tip, head)):
			return CloneAhead
		}
		return CloneDiverged
	}
	// Local commits the replica lacks; ahead only if the clone holds the
	// replica's tip below them, else the replica moved on too.
	if is, known, err := s.git.WorkIsAncestor(ctx, work, tip, head); err == nil && known && is {
		return CloneAhead
	}
	return CloneDiverged
}

func isAncestor(is bool, err error) bool { return err == nil && is }

// NamespaceRefs is one node's signed refs of a repository.
type NamespaceRefs struct {
	Node     identity.NodeID
	Delegate bool
	Seq      uint64
	Refs     []gitstore.Ref
}

// Namespaces lists the signed refs of every namespace the node holds of repo.
func (s *Service) Namespaces(repo identity.RepoID) ([]NamespaceRefs, error) {
	doc, _ := s.Doc(repo)
	var out []NamespaceRefs
	err := s.store.EachSignedRefs(repo, func(node identity.NodeID, seq uint64, raw []byte) error {
		sr, err := wire.UnmarshalSignedRefs(raw)
		if err != nil {
			return nil
		}
		out = append(out, NamespaceRefs{Node: node, Seq: seq, Refs: fromWireRefs(sr.Refs()), Delegate: doc != nil && doc.IsDelegate(node)})
		return nil
	})
	return out, err
}

// Ensure makes sure the node holds repo, fetching it if needed, and tries
// to bring it up to date (best effort when a replica exists already: a
// clone or pull works offline from what the node holds).
func (s *Service) Ensure(ctx context.Context, repo identity.RepoID, progress ProgressFunc) (*wire.RepoDoc, *gitstore.Bare, error) {
	_, err := s.Sync(ctx, repo, identity.NodeID{}, progress)
	doc, derr := s.Doc(repo)
	if derr != nil {
		if err == nil {
			err = errorf(ErrNotFound, "unknown repository %s", repo)
		}
		return nil, nil, err
	}
	if err != nil {
		s.log.Info("syncing from the network failed; working from the local replica", "repo", repo, "err", err)
	}
	bare, err := s.openBare(repo)
	if err != nil {
		return nil, nil, err
	}
	return doc, bare, nil
}

// Target names what a working copy follows: the repository, and the node
// whose namespace it follows (zero: the canonical one).
type Target struct {
	Repo identity.RepoID
	Node identity.NodeID
}

// namespace resolves t's node: zero is the canonical namespace.
func (s *Service) namespace(ctx context.Context, bare *gitstore.Bare, t Target, doc *wire.RepoDoc) identity.NodeID {
	if t.Node.IsZero() {
		return s.canonical(ctx, bare, doc)
	}
	return t.Node
}

// Clone makes a working copy of t at dest from the replica (syncing it
// first), records it, and keeps the repository seeded. The copy's remote
// origin gets the URL origin makes of t (Node zero when t follows the
// canonical namespace); it checks out the default branch, tracking origin.
func (s *Service) Clone(ctx context.Context, t Target, dest string, origin func(Target) string, progress ProgressFunc) (CloneStatus, string, error) {
	dest = filepath.Clean(dest)
	if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
		return CloneStatus{}, "", errorf(ErrInvalid, "destination %s exists and is not empty", dest)
	}
	if err := s.seedChosen(t.Repo); err != nil {
		return CloneStatus{}, "", err
	}
	doc, bare, err := s.Ensure(ctx, t.Repo, progress)
	if err != nil {
		return CloneStatus{}, "", err
	}
	node := s.namespace(ctx, bare, t, doc)
	if err := s.ensureSigned(ctx, bare, t.Repo, node); err != nil {
		return CloneStatus{}, "", err
	}
	ns := Namespace(node)
	branch := doc.DefaultBranch()
	if progress != nil {
		progress(0, 0, "checking out "+branch)
	}
	// The packs being linked stay in place; the checkout reads the links.
	hold := func() func() { return s.readLock(t.Repo) }
	if err := bare.CloneTo(ctx, ns, dest, origin(t), branch, hold); err != nil {
		return CloneStatus{}, "", errorf(ErrInvalid, "cloning into %s: %w", dest, err)
	}
	gotBranch, head, err := s.git.WorkHead(ctx, dest)
	if err != nil {
		return CloneStatus{}, "", err
	}
	if err := s.TrackClone(t, dest); err != nil {
		return CloneStatus{}, "", err
	}
	return CloneStatus{Path: dest, Branch: gotBranch, State: CloneUpToDate}, head, nil
}

// TrackClone records dest as a working copy following t and keeps the
// repository seeded: mecli repo clone and git clone mega:// both end here,
// so the node knows the same of a clone whichever made it.
func (s *Service) TrackClone(t Target, dest string) error {
	doc, err := s.Doc(t.Repo)
	if err != nil {
		return err
	}
	if err := s.seedChosen(t.Repo); err != nil {
		return err
	}
	c := cloneInfo{Path: filepath.Clean(dest), Branch: doc.DefaultBranch()} // follows the canonical namespace
	if !t.Node.IsZero() {
		c.Namespace = Namespace(t.Node)
	}
	return s.updateState(t.Repo, func(st *repoState) {
		st.Clones = slices.DeleteFunc(st.Clones, func(o cloneInfo) bool { return o.Path == c.Path })
		st.Clones = append(st.Clones, c)
	})
}

// PullResult is what Pull did.
type PullResult struct {
	Branch    string
	Updated   bool
	Old, Head string
}

// Pull brings the working copy at path up to date from the replica of t
// (syncing it first): the namespace the clone was made from, else t's.
func (s *Service) Pull(ctx context.Context, t Target, path string, progress ProgressFunc) (PullResult, error) {
	path = filepath.Clean(path)
	doc, bare, err := s.Ensure(ctx, t.Repo, progress)
	if err != nil {
		return PullResult{}, err
	}
	ns := Namespace(s.namespace(ctx, bare, t, doc))
	for _, c := range s.state(t.Repo).Clones {
		if c.Path == path {
			ns = cmp.Or(c.Namespace, ns)
		}
	}
	if node, err := identity.ParseNodeID("did:key:" + ns); err == nil {
		if err := s.ensureSigned(ctx, bare, t.Repo, node); err != nil {
			return PullResult{}, err
		}
	}
	branch, old, err := s.git.WorkHead(ctx, path)
	if err != nil {
		return PullResult{}, errorf(ErrInvalid, "%s: %w", path, err)
	}
	release := s.readLock(t.Repo) // git fetch reads the replica's packs
	updated, err := bare.PullInto(ctx, ns, path)
	release()
	if err != nil {
		if errors.Is(err, gitstore.ErrDiverged) || errors.Is(err, gitstore.ErrLocalChanges) {
			return PullResult{}, errorf(ErrConflict, "%w", err)
		}
		return PullResult{}, fmt.Errorf("pulling into %s: %w", path, err)
	}
	_, head, _ := s.git.WorkHead(ctx, path)
	return PullResult{Branch: branch, Updated: updated, Old: old, Head: head}, nil
}

// Location is where git-remote-mega finds a namespace of a replica.
type Location struct {
	GitDir        string
	Namespace     string
	Node          identity.NodeID
	DefaultBranch string
}

// Locate returns the replica and namespace of t for git upload-pack. It
// writes nothing.
func (s *Service) Locate(ctx context.Context, t Target) (Location, error) {
	doc, err := s.Doc(t.Repo)
	if err != nil {
		return Location{}, err
	}
	bare, err := s.openBare(t.Repo)
	if err != nil {
		return Location{}, err
	}
	owner := s.namespace(ctx, bare, t, doc)
	// Serving a namespace nobody signed refs of would look like an empty
	// repository; say what is missing instead.
	if _, _, ok, err := s.store.SignedRefs(t.Repo, owner); err != nil {
		return Location{}, err
	} else if !ok {
		return Location{}, errorf(ErrNotFound, "no refs of %s in %s have reached this node", owner, t.Repo)
	}
	if err := s.ensureSigned(ctx, bare, t.Repo, owner); err != nil {
		return Location{}, err
	}
	return Location{GitDir: bare.Dir, Namespace: Namespace(owner), Node: owner, DefaultBranch: doc.DefaultBranch()}, nil
}

// LocateOwn prepares this node's namespace of repo for a git push and
// returns where it is. A repository shared from a working repository here
// refuses pushes (its watcher publishes), and so does another's namespace.
func (s *Service) LocateOwn(ctx context.Context, t Target) (Location, error) {
	doc, err := s.Doc(t.Repo)
	if err != nil {
		return Location{}, err
	}
	if !t.Node.IsZero() && t.Node != s.id {
		return Location{}, errorf(ErrPermission, "you can only push to your own namespace (%s)", s.id)
	}
	if st := s.state(t.Repo); st.Path != "" {
		return Location{}, watchedConflict(t.Repo, st.Path)
	}
	// InitBare also (re)applies the replica's configuration, which the
	// push relies on (receive.fsckObjects).
	bare, err := s.initBare(ctx, t.Repo)
	if err != nil {
		return Location{}, err
	}
	return Location{GitDir: bare.Dir, Namespace: Namespace(s.id), Node: s.id, DefaultBranch: doc.DefaultBranch()}, nil
}
