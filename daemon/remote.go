package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// The remote helper's side of the daemon (spec/remote-helper.md):
// git-remote-mega asks where the replica is (repo.locate), runs git
// upload-pack or receive-pack on it itself with GIT_NAMESPACE set, and after
// a push asks the daemon to sign and announce what it wrote (repo.publish).

// heldDoc returns repo's identity document, or CodeNotFound if the node
// holds no replica of it.
func (n *Node) heldDoc(repo identity.RepoID) (*wire.RepoDoc, error) {
	doc, err := n.doc(repo)
	if errors.Is(err, errNoRepo) {
		return nil, rpc.Errorf(rpc.CodeNotFound, "this node holds no replica of %s", repo)
	}
	return doc, err
}

// watchedConflict is the error for a push into the namespace of a
// repository the node publishes from a watched working repository: the
// watcher would overwrite what the push wrote.
func watchedConflict(repo identity.RepoID, path string) error {
	return rpc.Errorf(rpc.CodeConflict,
		"%s is shared from the working repository %s on this node, which publishes its commits by itself: commit there instead of pushing",
		repo, path)
}

// RepoLocate implements rpc.RemoteService.
func (n *Node) RepoLocate(ctx context.Context, p rpc.RepoLocateParams) (rpc.LocateResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.LocateResult{}, err
	}
	doc, err := n.heldDoc(repo)
	if err != nil {
		return rpc.LocateResult{}, err
	}
	owner := canonicalNS(doc)
	if p.Namespace != "" {
		if owner, err = identity.ParseNodeID(p.Namespace); err != nil {
			return rpc.LocateResult{}, rpc.Errorf(rpc.CodeInvalidParams, "namespace: %v", err)
		}
	}
	var bare *gitstore.Bare
	if p.Own {
		if p.Namespace != "" && owner != n.ID() {
			return rpc.LocateResult{}, rpc.Errorf(rpc.CodePermission, "you can only push to your own namespace (%s)", n.ID())
		}
		owner = n.ID()
		if st := n.state(repo); st.Path != "" {
			return rpc.LocateResult{}, watchedConflict(repo, st.Path)
		}
		// InitBare also (re)applies the replica's configuration, which the
		// push relies on (receive.fsckObjects).
		bare, err = n.git.InitBare(ctx, n.repoDir(repo))
	} else {
		// Serving a namespace nobody signed refs of would look like an
		// empty repository; say what is missing instead.
		if _, _, ok, err := n.store.SignedRefs(repo, owner); err != nil {
			return rpc.LocateResult{}, err
		} else if !ok {
			return rpc.LocateResult{}, rpc.Errorf(rpc.CodeNotFound, "no refs of %s in %s have reached this node", owner, repo)
		}
		bare, err = n.git.OpenBare(n.repoDir(repo))
	}
	if err != nil {
		return rpc.LocateResult{}, err
	}
	ns := namespaceOf(owner)
	if refs, err := bare.Refs(ctx, ns); err == nil {
		n.setHEAD(ctx, bare, ns, doc.DefaultBranch(), refs)
	}
	return rpc.LocateResult{
		RepoID: repo.String(), GitDir: bare.Dir, Namespace: ns, Node: owner.String(),
		DefaultBranch: doc.DefaultBranch(), Self: n.ID().String(),
	}, nil
}

// RepoPublish implements rpc.RemoteService.
func (n *Node) RepoPublish(ctx context.Context, p rpc.RepoIDParams) (rpc.PublishResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.PublishResult{}, err
	}
	doc, err := n.heldDoc(repo)
	if err != nil {
		return rpc.PublishResult{}, err
	}
	if st := n.state(repo); st.Path != "" {
		return rpc.PublishResult{}, watchedConflict(repo, st.Path)
	}
	n.repos.publish.Lock()
	defer n.repos.publish.Unlock()
	bare, err := n.git.OpenBare(n.repoDir(repo))
	if err != nil {
		return rpc.PublishResult{}, err
	}
	ns := namespaceOf(n.ID())
	all, err := bare.Refs(ctx, ns)
	if err != nil {
		return rpc.PublishResult{}, err
	}
	// Signed refs carry branches and tags only (git-remote-mega's
	// receive-pack hides and refuses the rest).
	refs := []gitstore.Ref{}
	for _, r := range all {
		if !strings.HasPrefix(r.Name, "refs/heads/") && !strings.HasPrefix(r.Name, "refs/tags/") {
			continue
		}
		if err := wire.CheckRefName(r.Name); err != nil {
			return rpc.PublishResult{}, rpc.Errorf(rpc.CodeInvalidArgument,
				"cannot publish %q: %v; delete it (git push origin :%s) and push again", r.Name, err, r.Name)
		}
		refs = append(refs, r)
	}
	res := rpc.PublishResult{RepoID: repo.String(), Refs: refInfos(refs)}
	if _, err := n.seedChosen(repo); err != nil {
		return res, err
	}
	if raw, seq, ok, err := n.store.SignedRefs(repo, n.ID()); err != nil {
		return res, err
	} else if ok {
		if sr, err := wire.UnmarshalSignedRefs(raw); err == nil && slices.Equal(fromWireRefs(sr.Refs()), refs) {
			res.Seq = seq
			return res, nil // already signed: nothing new to announce
		}
	} else if len(refs) == 0 {
		return res, nil // nothing pushed, nothing signed before
	}
	if err := n.publishRefs(repo, refs); err != nil {
		if errors.Is(err, wire.ErrInvalid) || errors.Is(err, wire.ErrTooLarge) {
			return res, rpc.Errorf(rpc.CodeInvalidArgument, "cannot publish the refs of %s: %v", repo, err)
		}
		return res, err
	}
	n.repos.mu.Lock()
	res.Seq = n.repos.lastSeq[repo]
	n.repos.mu.Unlock()
	res.Updated = true
	n.setHEAD(ctx, bare, ns, doc.DefaultBranch(), refs)
	n.log.Info("published pushed refs", "repo", repo.String(), "refs", len(refs), "seq", res.Seq)
	return res, nil
}

// seedChosen marks repo as seeded (a node that pushes into a repository
// keeps replicating it); it reports whether it changed anything.
func (n *Node) seedChosen(repo identity.RepoID) (bool, error) {
	if n.state(repo).Seed == seedYes {
		return false, nil
	}
	return true, n.updateState(repo, func(st *repoState) { st.Seed = seedYes })
}

// setHEAD makes namespace ns's HEAD a symbolic ref to its branch
// refs/heads/<branch>, when refs (the namespace's refs) have that branch,
// so git upload-pack advertises it and git clone checks it out. Failures
// are only logged: HEAD is a convenience, the refs are what counts.
func (n *Node) setHEAD(ctx context.Context, bare *gitstore.Bare, ns, branch string, refs []gitstore.Ref) {
	if !slices.ContainsFunc(refs, func(r gitstore.Ref) bool { return r.Name == "refs/heads/"+branch }) {
		return
	}
	if cur, err := bare.HEAD(ctx, ns); err == nil && cur == branch {
		return
	}
	if err := bare.SetHEAD(ctx, ns, branch); err != nil {
		n.log.Debug("setting a namespace's HEAD", "namespace", ns, "branch", branch, "err", err)
	}
}

func refInfos(refs []gitstore.Ref) []rpc.RefInfo {
	out := make([]rpc.RefInfo, len(refs))
	for i, r := range refs {
		out[i] = rpc.RefInfo{Name: r.Name, OID: r.OID}
	}
	return out
}
