package daemon

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

var _ rpc.RepoService = (*Node)(nil)

// MegaURL is the remote URL of a working copy of repo.
func MegaURL(repo identity.RepoID) string {
	return "mega://" + strings.TrimPrefix(repo.String(), "did:repo:")
}

func parseRepo(s string) (identity.RepoID, error) {
	repo, err := identity.ParseRepoID(s)
	if err != nil {
		return repo, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
	}
	return repo, nil
}

// canonicalNS is the namespace clones follow by default: the creator's.
func canonicalNS(doc *wire.RepoDoc) identity.NodeID { return doc.Delegates()[0] }

// repoInfo describes repo as this node sees it.
func (n *Node) repoInfo(ctx context.Context, repo identity.RepoID) (rpc.RepoInfo, error) {
	st := n.state(repo)
	info := rpc.RepoInfo{
		RepoID: repo.String(), Delegates: []string{}, Holders: []string{}, Clones: []rpc.CloneStatus{},
		Local: st.Path != "", Path: st.Path, Seeded: n.seeded(repo), LastError: st.LastError,
	}
	if !st.LastSync.IsZero() {
		t := st.LastSync
		info.LastSync = &t
	}
	for _, h := range n.holders(repo) {
		info.Holders = append(info.Holders, h.String())
	}
	slices.Sort(info.Holders)
	doc, err := n.doc(repo)
	switch {
	case errors.Is(err, errNoRepo):
		info.Replica = rpc.ReplicaMissing
		if n.syncRunning(repo) {
			info.Replica = rpc.ReplicaSyncing
		}
		return info, nil
	case err != nil:
		return info, err
	}
	info.Name, info.Description, info.DefaultBranch = doc.Name(), doc.Description(), doc.DefaultBranch()
	info.Creator = doc.Creator().String()
	for _, d := range doc.Delegates() {
		info.Delegates = append(info.Delegates, d.String())
	}
	switch {
	case n.syncRunning(repo):
		info.Replica = rpc.ReplicaSyncing
	case n.behind(repo):
		info.Replica = rpc.ReplicaBehind
	default:
		info.Replica = rpc.ReplicaUpToDate
	}
	bare, err := n.git.OpenBare(n.repoDir(repo))
	if err != nil {
		return info, nil
	}
	info.Head = n.branchTip(ctx, bare, namespaceOf(canonicalNS(doc)), doc.DefaultBranch())
	for _, c := range st.Clones {
		info.Clones = append(info.Clones, n.cloneStatus(ctx, bare, c))
	}
	return info, nil
}

func (n *Node) syncRunning(repo identity.RepoID) bool {
	n.repos.mu.Lock()
	defer n.repos.mu.Unlock()
	return n.repos.syncing[repo] != nil
}

// branchTip is the commit of refs/heads/branch in namespace ns ("" if none).
func (n *Node) branchTip(ctx context.Context, bare *gitstore.Bare, ns, branch string) string {
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

func (n *Node) cloneStatus(ctx context.Context, bare *gitstore.Bare, c cloneInfo) rpc.CloneStatus {
	out := rpc.CloneStatus{Path: c.Path, Branch: c.Branch, Status: rpc.CloneMissing}
	branch, head, err := n.git.WorkHead(ctx, c.Path)
	if err != nil {
		return out
	}
	out.Branch = branch
	tip := n.branchTip(ctx, bare, c.Namespace, branch)
	switch {
	case tip == "":
		out.Status = rpc.CloneAhead
	case tip == head:
		out.Status = rpc.CloneUpToDate
	default:
		has, err := bare.HasObjects(ctx, []string{head})
		if err != nil || !has[head] {
			out.Status = rpc.CloneAhead // local commits the replica lacks
		} else if ok, _ := bare.IsAncestor(ctx, head, tip); ok {
			out.Status = rpc.CloneBehind
		} else {
			out.Status = rpc.CloneDiverged
		}
	}
	return out
}

// knownRepos lists every repository the node has state, a document or an
// announcement for.
func (n *Node) knownRepos() []identity.RepoID {
	set := map[identity.RepoID]bool{}
	n.repos.mu.Lock()
	for repo := range n.repos.states {
		set[repo] = true
	}
	n.repos.mu.Unlock()
	_ = n.store.Each(uint8(wire.TypeRepoAnnouncement), nil, func(a store.Announcement) error {
		if repo, err := identity.ParseRepoID(string(a.Subject)); err == nil {
			set[repo] = true
		}
		return nil
	})
	out := make([]identity.RepoID, 0, len(set))
	for repo := range set {
		out = append(out, repo)
	}
	slices.SortFunc(out, func(a, b identity.RepoID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// RepoList implements rpc.RepoService.
func (n *Node) RepoList(ctx context.Context) ([]rpc.RepoInfo, error) {
	out := []rpc.RepoInfo{}
	for _, repo := range n.knownRepos() {
		info, err := n.repoInfo(ctx, repo)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// RepoShow implements rpc.RepoService.
func (n *Node) RepoShow(ctx context.Context, p rpc.RepoIDParams) (rpc.RepoDetail, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.RepoDetail{}, err
	}
	if !slices.Contains(n.knownRepos(), repo) {
		return rpc.RepoDetail{}, rpc.Errorf(rpc.CodeNotFound, "unknown repository %s", repo)
	}
	info, err := n.repoInfo(ctx, repo)
	if err != nil {
		return rpc.RepoDetail{}, err
	}
	d := rpc.RepoDetail{RepoInfo: info, Namespaces: []rpc.NamespaceRefs{}}
	doc, _ := n.doc(repo)
	err = n.store.EachSignedRefs(repo, func(node identity.NodeID, seq uint64, raw []byte) error {
		sr, err := wire.UnmarshalSignedRefs(raw)
		if err != nil {
			return nil
		}
		ns := rpc.NamespaceRefs{Node: node.String(), Seq: seq, Refs: []rpc.RefInfo{}, Canonical: doc != nil && doc.IsDelegate(node)}
		for _, r := range sr.Refs() {
			ns.Refs = append(ns.Refs, rpc.RefInfo{Name: r.Name, OID: hex.EncodeToString(r.OID)})
		}
		d.Namespaces = append(d.Namespaces, ns)
		return nil
	})
	return d, err
}

// RepoSync implements rpc.RepoService.
func (n *Node) RepoSync(ctx context.Context, p rpc.RepoIDParams, progress rpc.ProgressFunc) (rpc.SyncResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.SyncResult{}, err
	}
	return n.sync(ctx, repo, identity.NodeID{}, progress)
}

// ensureReplica makes sure the node holds repo, fetching it if needed, and
// tries to bring it up to date (best effort when a replica exists already:
// a clone or pull works offline from what the node holds).
func (n *Node) ensureReplica(ctx context.Context, repo identity.RepoID, progress rpc.ProgressFunc) (*wire.RepoDoc, *gitstore.Bare, error) {
	_, err := n.sync(ctx, repo, identity.NodeID{}, progress)
	doc, derr := n.doc(repo)
	if derr != nil {
		if err == nil {
			err = rpc.Errorf(rpc.CodeNotFound, "unknown repository %s", repo)
		}
		return nil, nil, err
	}
	if err != nil {
		n.log.Info("working from the local replica; the network sync failed", "repo", repo.String(), "err", err)
	}
	bare, err := n.git.OpenBare(n.repoDir(repo))
	if err != nil {
		return nil, nil, err
	}
	return doc, bare, nil
}

// RepoClone implements rpc.RepoService.
func (n *Node) RepoClone(ctx context.Context, p rpc.RepoCloneParams, progress rpc.ProgressFunc) (rpc.CloneResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.CloneResult{}, err
	}
	dest := filepath.Clean(p.Path)
	if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
		return rpc.CloneResult{}, rpc.Errorf(rpc.CodeInvalidArgument, "destination %s exists and is not empty", dest)
	}
	// The clone follows the creator's namespace unless another is named.
	if !n.seeded(repo) {
		_ = n.updateState(repo, func(st *repoState) { st.Seed = seedYes })
	}
	doc, bare, err := n.ensureReplica(ctx, repo, progress)
	if err != nil {
		return rpc.CloneResult{}, err
	}
	nsNode := canonicalNS(doc)
	if p.Namespace != "" {
		if nsNode, err = identity.ParseNodeID(p.Namespace); err != nil {
			return rpc.CloneResult{}, rpc.Errorf(rpc.CodeInvalidParams, "namespace: %v", err)
		}
	}
	ns := namespaceOf(nsNode)
	// A fork's working copy keeps following the fork: its origin names
	// the namespace, as `git clone mega://<repo>/<node>` would.
	url := MegaURL(repo)
	if nsNode != canonicalNS(doc) {
		url += "/" + ns
	}
	branch := doc.DefaultBranch()
	if progress != nil {
		progress(0, 0, "checking out "+branch)
	}
	if err := bare.CloneTo(ctx, ns, dest, url, branch); err != nil {
		return rpc.CloneResult{}, rpc.Errorf(rpc.CodeInvalidArgument, "cloning into %s: %v", dest, err)
	}
	gotBranch, head, err := n.git.WorkHead(ctx, dest)
	if err != nil {
		return rpc.CloneResult{}, err
	}
	if err := n.updateState(repo, func(st *repoState) {
		st.Clones = slices.DeleteFunc(st.Clones, func(c cloneInfo) bool { return c.Path == dest })
		st.Clones = append(st.Clones, cloneInfo{Path: dest, Branch: gotBranch, Namespace: ns})
	}); err != nil {
		return rpc.CloneResult{}, err
	}
	return rpc.CloneResult{RepoID: repo.String(), Path: dest, Branch: gotBranch, Head: head}, nil
}

// RepoPull implements rpc.RepoService.
func (n *Node) RepoPull(ctx context.Context, p rpc.RepoPullParams, progress rpc.ProgressFunc) (rpc.PullResult, error) {
	path := filepath.Clean(p.Path)
	var repo identity.RepoID
	var urlNS string // the namespace origin's URL names, if any
	var err error
	if p.RepoID != "" {
		if repo, err = parseRepo(p.RepoID); err != nil {
			return rpc.PullResult{}, err
		}
	} else {
		url, err := n.git.RemoteURL(ctx, path, "origin")
		if err != nil {
			return rpc.PullResult{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s: %v", path, err)
		}
		rest, ok := strings.CutPrefix(url, "mega://")
		if !ok {
			return rpc.PullResult{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s: origin is %q, not a mega:// URL; pass the repository id", path, url)
		}
		rest, node, _ := strings.Cut(rest, "/")
		if repo, err = parseRepo(rest); err != nil {
			return rpc.PullResult{}, err
		}
		if node != "" {
			if !strings.HasPrefix(node, "did:key:") {
				node = "did:key:" + node
			}
			id, err := identity.ParseNodeID(node)
			if err != nil {
				return rpc.PullResult{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s: origin is %q: %v", path, url, err)
			}
			urlNS = namespaceOf(id)
		}
	}
	doc, bare, err := n.ensureReplica(ctx, repo, progress)
	if err != nil {
		return rpc.PullResult{}, err
	}
	ns := cmp.Or(urlNS, namespaceOf(canonicalNS(doc)))
	for _, c := range n.state(repo).Clones {
		if c.Path == path {
			ns = c.Namespace
		}
	}
	branch, old, err := n.git.WorkHead(ctx, path)
	if err != nil {
		return rpc.PullResult{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s: %v", path, err)
	}
	updated, err := bare.PullInto(ctx, ns, path)
	if err != nil {
		if errors.Is(err, gitstore.ErrDiverged) || errors.Is(err, gitstore.ErrLocalChanges) {
			return rpc.PullResult{}, rpc.Errorf(rpc.CodeConflict, "%v", err)
		}
		return rpc.PullResult{}, fmt.Errorf("pulling into %s: %w", path, err)
	}
	_, head, _ := n.git.WorkHead(ctx, path)
	return rpc.PullResult{RepoID: repo.String(), Path: path, Branch: branch, Updated: updated, Old: old, Head: head}, nil
}
