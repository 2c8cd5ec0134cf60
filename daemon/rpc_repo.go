package daemon

import (
	"cmp"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/collab"
	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// The repo.* methods of rpc.Service: parse the params, call the replica
// service, turn its answers into rpc types and its domain errors into codes.

// rpcError maps a service's domain error to an RPC error with a stable code;
// other errors pass through (the server reports them as internal errors).
func rpcError(err error) error {
	codes := []struct {
		kind error
		code int64
	}{
		{replica.ErrNotFound, rpc.CodeNotFound},
		{replica.ErrInvalid, rpc.CodeInvalidArgument},
		{replica.ErrTooLarge, rpc.CodeInvalidArgument},
		{replica.ErrConflict, rpc.CodeConflict},
		{replica.ErrPermission, rpc.CodePermission},
		{replica.ErrUnavailable, rpc.CodeUnavailable},
		{replica.ErrTampered, rpc.CodeUnavailable},
	}
	if err == nil {
		return nil
	}
	for _, c := range codes {
		if errors.Is(err, c.kind) {
			return rpc.Errorf(c.code, "%v", err)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return rpc.Errorf(rpc.CodeTimeout, "%v", err)
	}
	return err
}

func parseRepo(s string) (identity.RepoID, error) {
	repo, err := identity.ParseRepoID(s)
	if err != nil {
		return repo, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
	}
	return repo, nil
}

// target parses a repository and an optional namespace owner.
func target(repoID, namespace string) (replica.Target, error) {
	repo, err := parseRepo(repoID)
	if err != nil {
		return replica.Target{}, err
	}
	t := replica.Target{Repo: repo}
	if namespace != "" {
		if t.Node, err = identity.ParseNodeID(namespace); err != nil {
			return t, rpc.Errorf(rpc.CodeInvalidParams, "namespace: %v", err)
		}
	}
	return t, nil
}

var replicaStates = map[replica.ReplicaState]string{
	replica.ReplicaMissing:   rpc.ReplicaMissing,
	replica.ReplicaSyncing:   rpc.ReplicaSyncing,
	replica.ReplicaBehind:    rpc.ReplicaBehind,
	replica.ReplicaUpToDate:  rpc.ReplicaUpToDate,
	replica.ReplicaHeardOf:   rpc.ReplicaHeardOf,
	replica.ReplicaWorkError: rpc.ReplicaWorkError,
}

var cloneStates = map[replica.CloneState]string{
	replica.CloneMissing:  rpc.CloneMissing,
	replica.CloneUpToDate: rpc.CloneUpToDate,
	replica.CloneBehind:   rpc.CloneBehind,
	replica.CloneAhead:    rpc.CloneAhead,
	replica.CloneDiverged: rpc.CloneDiverged,
	replica.CloneError:    rpc.CloneError,
}

func dids(ids []identity.NodeID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// repoInfo describes repo as this node sees it.
func (n *Node) repoInfo(ctx context.Context, repo identity.RepoID) (rpc.RepoInfo, error) {
	in, err := n.replica.Info(ctx, repo)
	if err != nil {
		return rpc.RepoInfo{}, rpcError(err)
	}
	out := rpc.RepoInfo{
		RepoID: repo.String(), Holders: dids(in.Holders), Local: in.Path != "", Path: in.Path,
		Seeded: in.Seeded, Replica: replicaStates[in.Replica], Head: in.Head, LastError: in.LastError,
		SeedRequester: in.Requester,
	}
	for _, h := range n.replica.HolderStates(repo) {
		if h.InSync {
			out.HoldersInSync++
		}
	}
	if !in.LastSync.IsZero() {
		out.LastSync = &in.LastSync
	}
	if d := in.Doc; d != nil {
		out.Name, out.Description, out.DefaultBranch = d.Name(), d.Description(), d.DefaultBranch()
		out.Creator, out.Delegates = d.Creator().String(), dids(d.Delegates())
		out.Threshold, out.DocVersion = d.Threshold(), d.Version()
	} else {
		out.Name, out.Description = in.NameHint, in.DescriptionHint // from announcements: unverified
	}
	for _, c := range in.Clones {
		out.Clones = append(out.Clones, rpc.CloneStatus{Path: c.Path, Branch: c.Branch, Status: cloneStates[c.State], Reason: c.Reason})
	}
	return out, nil
}

// RepoAdd implements rpc.RepoService: share a working repository.
func (n *Node) RepoAdd(ctx context.Context, p rpc.RepoAddParams) (rpc.RepoInfo, error) {
	repo, updated, err := n.replica.Share(ctx, p.Path, p.Name, p.Description)
	if err != nil {
		return rpc.RepoInfo{}, rpcError(err)
	}
	info, err := n.repoInfo(ctx, repo)
	info.Updated = updated
	return info, err
}

// RepoEdit implements rpc.RepoService: the next identity version.
func (n *Node) RepoEdit(ctx context.Context, p rpc.RepoEditParams) (rpc.EditResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.EditResult{}, err
	}
	change := func(c *wire.DocChange) error {
		if p.Name != nil {
			c.Name = *p.Name
		}
		if p.Description != nil {
			c.Description = *p.Description
		}
		if p.Threshold > 0 {
			c.Threshold = p.Threshold
		}
		return nil
	}
	var ratify []collab.Ratification
	if d := cmp.Or(p.AddDelegate, p.RemoveDelegate); d != "" {
		id, err := identity.ParseNodeID(d)
		if err != nil {
			return rpc.EditResult{}, rpc.Errorf(rpc.CodeInvalidParams, "invalid delegate: %v", err)
		}
		change = replica.EditDelegates(id, p.AddDelegate != "")
		if p.RemoveDelegate != "" {
			ratify, _ = n.collab.MergesBy(ctx, repo, id) // while its merges count
		}
	}
	res, err := n.replica.Edit(ctx, repo, change)
	if err != nil {
		return rpc.EditResult{}, rpcError(err)
	}
	if res.Applied && len(ratify) > 0 {
		if k := n.collab.Ratify(ctx, repo, ratify); k > 0 {
			n.log.Info("signed again the merges of a removed delegate", "repo", repo, "delegate", p.RemoveDelegate, "patches", k)
		}
	}
	return rpc.EditResult{RepoID: repo.String(), Applied: res.Applied, Missing: res.Missing, Identity: repoIdent(res.Doc)}, nil
}

func repoIdent(d *wire.RepoDoc) rpc.RepoIdent {
	return rpc.RepoIdent{Version: d.Version(), Name: d.Name(), Description: d.Description(),
		Delegates: dids(d.Delegates()), Threshold: d.Threshold(), Signers: dids(d.Signers())}
}

// RepoList implements rpc.RepoService.
func (n *Node) RepoList(ctx context.Context) ([]rpc.RepoInfo, error) {
	out := []rpc.RepoInfo{}
	for _, repo := range n.replica.Repos() {
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
	if !slices.Contains(n.replica.Repos(), repo) {
		return rpc.RepoDetail{}, rpc.Errorf(rpc.CodeNotFound, "unknown repository %s", repo)
	}
	info, err := n.repoInfo(ctx, repo)
	if err != nil {
		return rpc.RepoDetail{}, err
	}
	nss, err := n.replica.Namespaces(repo)
	if err != nil {
		return rpc.RepoDetail{}, err
	}
	d := rpc.RepoDetail{RepoInfo: info, HolderStates: n.holderStatuses(repo)}
	if p := n.replica.Proposal(repo); p != nil {
		if cur, err := n.replica.Doc(repo); err == nil {
			if missing, err := cur.CheckNext(p); err == nil {
				d.Proposal = &rpc.RepoProposal{RepoIdent: repoIdent(p), Missing: missing}
			}
		}
	}
	for _, ns := range nss {
		d.Namespaces = append(d.Namespaces, rpc.NamespaceRefs{Node: ns.Node.String(), Seq: ns.Seq, Refs: refInfos(ns.Refs), Canonical: ns.Delegate})
	}
	return d, nil
}

func refInfos(refs []gitstore.Ref) []rpc.RefInfo {
	out := make([]rpc.RefInfo, len(refs))
	for i, r := range refs {
		out[i] = rpc.RefInfo{Name: r.Name, OID: r.OID}
	}
	return out
}

func progressFunc(p rpc.ProgressFunc) replica.ProgressFunc {
	if p == nil {
		return nil
	}
	return replica.ProgressFunc(p)
}

// RepoSync implements rpc.RepoService.
func (n *Node) RepoSync(ctx context.Context, p rpc.RepoIDParams, progress rpc.ProgressFunc) (rpc.SyncResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.SyncResult{}, err
	}
	res, err := n.replica.Sync(ctx, repo, identity.NodeID{}, progressFunc(progress))
	out := rpc.SyncResult{RepoID: repo.String(), Updated: res.Updated, Namespaces: res.Namespaces, Bytes: res.Bytes}
	if !res.From.IsZero() {
		out.From = res.From.String()
	}
	return out, rpcError(err)
}

// RepoClone implements rpc.RepoService.
func (n *Node) RepoClone(ctx context.Context, p rpc.RepoCloneParams, progress rpc.ProgressFunc) (rpc.CloneResult, error) {
	t, err := target(p.RepoID, p.Namespace)
	if err != nil {
		return rpc.CloneResult{}, err
	}
	// A fork's working copy keeps following the fork: its origin names the
	// namespace, as `git clone mega://<repo>/<node>` would.
	origin := func(t replica.Target) string { return identity.MegaURL{Repo: t.Repo, Node: t.Node}.String() }
	c, head, err := n.replica.Clone(ctx, t, p.Path, origin, progressFunc(progress))
	if err != nil {
		return rpc.CloneResult{}, rpcError(err)
	}
	return rpc.CloneResult{RepoID: t.Repo.String(), Path: c.Path, Branch: c.Branch, Head: head}, nil
}

// RepoPull implements rpc.RepoService.
func (n *Node) RepoPull(ctx context.Context, p rpc.RepoPullParams, progress rpc.ProgressFunc) (rpc.PullResult, error) {
	path := filepath.Clean(p.Path)
	t, err := n.pullTarget(ctx, p.RepoID, path)
	if err != nil {
		return rpc.PullResult{}, err
	}
	res, err := n.replica.Pull(ctx, t, path, progressFunc(progress))
	if err != nil {
		return rpc.PullResult{}, rpcError(err)
	}
	return rpc.PullResult{RepoID: t.Repo.String(), Path: path, Branch: res.Branch, Updated: res.Updated, Old: res.Old, Head: res.Head}, nil
}

// pullTarget is the repository given, else the one the working copy's
// origin names.
func (n *Node) pullTarget(ctx context.Context, repoID, path string) (replica.Target, error) {
	if repoID != "" {
		return target(repoID, "")
	}
	url, err := n.git.RemoteURL(ctx, path, "origin")
	if err != nil {
		return replica.Target{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s: %v", path, err)
	}
	if !strings.HasPrefix(url, identity.MegaScheme) {
		return replica.Target{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s: origin is %q, not a mega:// URL; pass the repository id", path, url)
	}
	u, err := identity.ParseMegaURL(url)
	if err != nil {
		return replica.Target{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s: origin: %v", path, err)
	}
	return replica.Target{Repo: u.Repo, Node: u.Node}, nil
}

// RepoSeed implements rpc.RepoService.
func (n *Node) RepoSeed(ctx context.Context, p rpc.RepoIDParams, seed bool) (rpc.RepoInfo, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.RepoInfo{}, err
	}
	if err := n.replica.Seed(repo, seed); err != nil {
		return rpc.RepoInfo{}, rpcError(err)
	}
	return n.repoInfo(ctx, repo)
}

// RepoRemove implements rpc.RepoService.
func (n *Node) RepoRemove(ctx context.Context, p rpc.RepoRemoveParams) (rpc.RemoveResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.RemoveResult{}, err
	}
	if err := n.replica.Remove(ctx, repo, p.KeepReplica); err != nil {
		return rpc.RemoveResult{}, rpcError(err)
	}
	return rpc.RemoveResult{RepoID: repo.String(), KeptReplica: p.KeepReplica}, nil
}

// RepoLocate implements rpc.RepoService: where git-remote-mega finds the
// replica. Own prepares this node's namespace for a push; WorkTree records
// the working copy that fetches from it as a clone, as repo.clone does.
func (n *Node) RepoLocate(ctx context.Context, p rpc.RepoLocateParams) (rpc.LocateResult, error) {
	t, err := target(p.RepoID, p.Namespace)
	if err != nil {
		return rpc.LocateResult{}, err
	}
	var loc replica.Location
	var h replica.Handoff
	switch {
	case p.Own:
		loc, err = n.replica.LocateOwn(ctx, t)
	case p.ObjectsDir != "":
		h, err = n.replica.HandOff(ctx, t, p.ObjectsDir)
		loc = h.Location
	default:
		loc, err = n.replica.Locate(ctx, t)
	}
	if err == nil && p.WorkTree != "" {
		err = n.replica.TrackClone(t, p.WorkTree)
	}
	if err != nil {
		return rpc.LocateResult{}, rpcError(err)
	}
	res := rpc.LocateResult{
		RepoID: t.Repo.String(), GitDir: loc.GitDir, Namespace: loc.Namespace, Node: loc.Node.String(),
		DefaultBranch: loc.DefaultBranch, Self: n.ID().String(),
		Head: h.Head, Keep: h.Keep,
	}
	if p.ObjectsDir != "" {
		res.Refs = refInfos(h.Refs)
	}
	if p.Hold {
		res.Release = n.replica.Hold(t.Repo)
	}
	return res, nil
}

// RepoPublish implements rpc.RepoService.
func (n *Node) RepoPublish(ctx context.Context, p rpc.RepoIDParams) (rpc.PublishResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.PublishResult{}, err
	}
	res, err := n.replica.Publish(ctx, repo)
	return rpc.PublishResult{RepoID: repo.String(), Updated: res.Updated, Seq: res.Seq, Refs: refInfos(res.Refs)}, rpcError(err)
}
