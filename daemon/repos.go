package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// Replication policies (--replicate).
const (
	ReplicateAll  = "all"  // replicate every repository announced (the seed's behaviour)
	ReplicateNone = "none" // replicate only repositories chosen with repo seed
)

// Per-repository seeding choice, overriding the node's policy.
const (
	seedDefault = ""
	seedYes     = "seed"
	seedNo      = "unseed"
)

// repoState is what the node remembers of one repository besides gossip:
// persisted as JSON in the store.
type repoState struct {
	Path      string      `json:"path,omitempty"` // working repository added here, watched
	Seed      string      `json:"seed,omitempty"` // seedDefault, seedYes or seedNo
	Clones    []cloneInfo `json:"clones,omitempty"`
	LastSync  time.Time   `json:"last_sync,omitzero"`
	LastError string      `json:"last_error,omitempty"`
}

type cloneInfo struct {
	Path      string `json:"path"`
	Branch    string `json:"branch"`
	Namespace string `json:"namespace"` // node whose refs the clone follows
}

// repos is the repository part of the node.
type repos struct {
	publish sync.Mutex // serialises publishing: git takes locks on the replica

	mu       sync.Mutex
	states   map[identity.RepoID]*repoState
	syncing  map[identity.RepoID]*syncCall
	workRefs map[identity.RepoID][]gitstore.Ref // last refs seen in each watched working repository
	failed   map[identity.NodeID]time.Time      // holders that failed a fetch: skipped until then unless connected
	lastSeq  map[identity.RepoID]uint64         // our newest signed refs seq per repository
}

type syncCall struct {
	done  chan struct{}
	again bool // another sync was asked for while this one ran: run once more
	res   rpc.SyncResult
	err   error
}

// namespaceOf is the namespace a node's refs live under in a bare replica:
// its did:key without the "did:key:" prefix (base58btc, safe as a path part).
func namespaceOf(id identity.NodeID) string { return strings.TrimPrefix(id.String(), "did:key:") }

// repoDir is the bare replica of repo; the name comes from the parsed id.
func (n *Node) repoDir(repo identity.RepoID) string {
	return filepath.Join(n.cfg.Root, "repos", strings.TrimPrefix(repo.String(), "did:repo:")+".git")
}

func (n *Node) loadRepos() error {
	n.repos.states = map[identity.RepoID]*repoState{}
	n.repos.syncing = map[identity.RepoID]*syncCall{}
	n.repos.workRefs = map[identity.RepoID][]gitstore.Ref{}
	n.repos.failed = map[identity.NodeID]time.Time{}
	n.repos.lastSeq = map[identity.RepoID]uint64{}
	return n.store.EachRepoState(func(repo identity.RepoID, raw []byte) error {
		var st repoState
		if err := json.Unmarshal(raw, &st); err != nil {
			n.log.Warn("ignoring unreadable repository state", "repo", repo.String(), "err", err)
			return nil
		}
		n.repos.states[repo] = &st
		return nil
	})
}

// state returns a copy of repo's state (zero if none).
func (n *Node) state(repo identity.RepoID) repoState {
	n.repos.mu.Lock()
	defer n.repos.mu.Unlock()
	if st := n.repos.states[repo]; st != nil {
		c := *st
		c.Clones = slices.Clone(st.Clones)
		return c
	}
	return repoState{}
}

// updateState changes repo's state and persists it.
func (n *Node) updateState(repo identity.RepoID, fn func(st *repoState)) error {
	n.repos.mu.Lock()
	st := n.repos.states[repo]
	if st == nil {
		st = &repoState{}
		n.repos.states[repo] = st
	}
	fn(st)
	raw, err := json.Marshal(st)
	n.repos.mu.Unlock()
	if err != nil {
		return err
	}
	return n.store.PutRepoState(repo, raw)
}

// seeded reports whether the node replicates repo.
func (n *Node) seeded(repo identity.RepoID) bool {
	st := n.state(repo)
	switch {
	case st.Path != "":
		return true
	case st.Seed == seedYes:
		return true
	case st.Seed == seedNo:
		return false
	}
	return n.cfg.Replicate != ReplicateNone
}

// doc returns repo's verified identity document, if the node holds it.
func (n *Node) doc(repo identity.RepoID) (*wire.RepoDoc, error) {
	raw, ok, err := n.store.RepoDoc(repo)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoRepo
	}
	return wire.OpenRepoDoc(raw)
}

var errNoRepo = errors.New("repository not held by this node")

// RepoAdd implements rpc.RepoService: share a working repository.
func (n *Node) RepoAdd(ctx context.Context, p rpc.RepoAddParams) (rpc.RepoInfo, error) {
	path := filepath.Clean(p.Path)
	if _, _, err := n.git.IsRepo(ctx, path); err != nil {
		return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s is not a git repository: %v", path, err)
	}
	branch, err := n.git.DefaultBranch(ctx, path)
	if err != nil {
		return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidArgument, "finding the default branch of %s: %v", path, err)
	}
	refs, err := n.git.WorkRefs(ctx, path)
	if err != nil {
		return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidArgument, "reading refs of %s: %v", path, err)
	}
	tip := ""
	for _, r := range refs {
		if r.Name == "refs/heads/"+branch {
			tip = r.OID
		}
	}
	if tip == "" {
		return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s has no commits on its default branch %q", path, branch)
	}
	root, err := n.git.RootCommit(ctx, path, tip)
	if err != nil {
		return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidArgument, "finding the root commit of %s: %v", path, err)
	}
	rootBin, err := hex.DecodeString(root)
	if err != nil {
		return rpc.RepoInfo{}, err
	}
	name := p.Name
	if name == "" {
		name = filepath.Base(path)
	}
	repo, err := identity.NewRepoID(rootBin, n.ID())
	if err != nil {
		return rpc.RepoInfo{}, err
	}
	// Adding the same history again keeps the first document (the id and the
	// signed name stay stable) and only moves the watched path.
	doc, err := n.doc(repo)
	if errors.Is(err, errNoRepo) {
		doc, err = wire.SignRepoDoc(n.key, wire.RepoDocFields{
			Root: rootBin, Name: name, Description: p.Description, DefaultBranch: branch,
			Created: uint64(time.Now().UnixMilli()),
		})
		if err != nil {
			return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidArgument, "%v", err)
		}
		raw, err := doc.Marshal()
		if err != nil {
			return rpc.RepoInfo{}, err
		}
		if err := n.store.PutRepoDoc(repo, raw); err != nil {
			return rpc.RepoInfo{}, err
		}
	} else if err != nil {
		return rpc.RepoInfo{}, err
	}
	// Publish first, then record the path: the watcher only looks at the
	// path once the refs it would compare with are there.
	if err := n.publishWork(ctx, repo, path); err != nil {
		return rpc.RepoInfo{}, err
	}
	if err := n.updateState(repo, func(st *repoState) { st.Path = path; st.Seed = seedYes }); err != nil {
		return rpc.RepoInfo{}, err
	}
	n.log.Info("repository added", "repo", repo.String(), "name", doc.Name(), "path", path)
	return n.repoInfo(ctx, repo)
}

// publishWork copies the working repository's refs into our namespace of
// the replica, signs them and announces them.
func (n *Node) publishWork(ctx context.Context, repo identity.RepoID, path string) error {
	n.repos.publish.Lock()
	defer n.repos.publish.Unlock()
	bare, err := n.git.InitBare(ctx, n.repoDir(repo))
	if err != nil {
		return err
	}
	work, err := n.git.WorkRefs(ctx, path)
	if err != nil {
		return err
	}
	refs, err := bare.Import(ctx, path, namespaceOf(n.ID()))
	if err != nil {
		return err
	}
	if doc, err := n.doc(repo); err == nil {
		n.setHEAD(ctx, bare, namespaceOf(n.ID()), doc.DefaultBranch(), refs)
	}
	n.repos.mu.Lock()
	n.repos.workRefs[repo] = work
	n.repos.mu.Unlock()
	return n.publishRefs(repo, refs)
}

// publishRefs signs refs as this node's refs of repo, stores and announces them.
func (n *Node) publishRefs(repo identity.RepoID, refs []gitstore.Ref) error {
	wrefs, err := toWireRefs(refs)
	if err != nil {
		return err
	}
	n.repos.mu.Lock()
	last := n.repos.lastSeq[repo]
	n.repos.mu.Unlock()
	if last == 0 {
		if _, seq, ok, err := n.store.SignedRefs(repo, n.ID()); err == nil && ok {
			last = seq
		}
	}
	seq := max(uint64(time.Now().UnixMilli()), last+1)
	sr, err := wire.SignRefs(n.key, repo, seq, wrefs)
	if err != nil {
		return err
	}
	raw, err := sr.Marshal()
	if err != nil {
		return err
	}
	if _, err := n.store.PutSignedRefs(repo, n.ID(), seq, raw); err != nil {
		return err
	}
	n.repos.mu.Lock()
	n.repos.lastSeq[repo] = seq
	n.repos.mu.Unlock()
	return n.announceRepo(repo)
}

func toWireRefs(refs []gitstore.Ref) ([]wire.Ref, error) {
	out := make([]wire.Ref, 0, len(refs))
	for _, r := range refs {
		oid, err := hex.DecodeString(r.OID)
		if err != nil {
			return nil, fmt.Errorf("ref %s: bad object id %q", r.Name, r.OID)
		}
		out = append(out, wire.Ref{Name: r.Name, OID: oid})
	}
	return out, nil
}

func fromWireRefs(refs []wire.Ref) []gitstore.Ref {
	out := make([]gitstore.Ref, len(refs))
	for i, r := range refs {
		out[i] = gitstore.Ref{Name: r.Name, OID: hex.EncodeToString(r.OID)}
	}
	return out
}

// announceRepo publishes that this node holds repo, with its own signed refs
// head if it has one.
func (n *Node) announceRepo(repo identity.RepoID) error {
	doc, err := n.doc(repo)
	if err != nil {
		return err
	}
	ann := &wire.RepoAnnouncement{Repo: repo, Doc: doc.Digest()}
	if raw, seq, ok, err := n.store.SignedRefs(repo, n.ID()); err == nil && ok {
		ann.RefsSeq = seq
		if sr, err := wire.UnmarshalSignedRefs(raw); err == nil {
			ann.RefsDigest = sr.Digest()
		}
	}
	_, err = n.gossip.Publish(ann)
	return err
}

// announceHeld announces every repository the node holds (at start).
func (n *Node) announceHeld() {
	n.repos.mu.Lock()
	var held []identity.RepoID
	for repo := range n.repos.states {
		held = append(held, repo)
	}
	n.repos.mu.Unlock()
	for _, repo := range held {
		if _, err := n.doc(repo); err != nil {
			continue
		}
		if err := n.announceRepo(repo); err != nil {
			n.log.Warn("announcing repository", "repo", repo.String(), "err", err)
		}
	}
}

// watch publishes new commits, branches and tags of the working
// repositories added on this node, without a manual step.
func (n *Node) watch(ctx context.Context) {
	t := time.NewTicker(n.cfg.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.repos.mu.Lock()
		watched := map[identity.RepoID]string{}
		for repo, st := range n.repos.states {
			if st.Path != "" {
				watched[repo] = st.Path
			}
		}
		n.repos.mu.Unlock()
		for repo, path := range watched {
			work, err := n.git.WorkRefs(ctx, path)
			if err != nil {
				if ctx.Err() == nil {
					n.noteError(repo, fmt.Errorf("reading the working repository %s: %w", path, err))
				}
				continue
			}
			n.repos.mu.Lock()
			same := slices.Equal(work, n.repos.workRefs[repo])
			n.repos.mu.Unlock()
			if same {
				continue
			}
			if err := n.publishWork(ctx, repo, path); err != nil {
				n.noteError(repo, fmt.Errorf("publishing %s: %w", path, err))
				continue
			}
			n.log.Info("published new refs", "repo", repo.String(), "path", path)
			if n.state(repo).LastError != "" {
				_ = n.updateState(repo, func(st *repoState) { st.LastError = "" })
			}
		}
	}
}

// noteError records a repository's latest error; the same error again (a
// watched path that stays missing) is neither logged nor stored again.
func (n *Node) noteError(repo identity.RepoID, err error) {
	if n.state(repo).LastError == err.Error() {
		return
	}
	n.log.Warn("repository", "repo", repo.String(), "err", err)
	_ = n.updateState(repo, func(st *repoState) { st.LastError = err.Error() })
}

// RepoSeed implements rpc.RepoService.
func (n *Node) RepoSeed(ctx context.Context, p rpc.RepoIDParams, seed bool) (rpc.RepoInfo, error) {
	repo, err := identity.ParseRepoID(p.RepoID)
	if err != nil {
		return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
	}
	choice := seedNo
	if seed {
		choice = seedYes
	}
	if err := n.updateState(repo, func(st *repoState) { st.Seed = choice }); err != nil {
		return rpc.RepoInfo{}, err
	}
	if seed {
		n.scheduleSync(repo, identity.NodeID{})
	}
	return n.repoInfo(ctx, repo)
}
