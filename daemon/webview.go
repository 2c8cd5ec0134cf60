package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/web"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// webBackend answers the web view from the node's RPC methods, so the
// view shows what mecli shows; rpc's "not found" becomes web.ErrNotFound.
// The view checks issue ids (hex) itself: rpc's server, which checks the
// params of calls over the socket, is not in this path.
type webBackend struct{ n *Node }

var _ web.Backend = webBackend{}

func (b webBackend) NodeInfo(ctx context.Context) (web.NodeInfo, error) {
	i, err := b.n.NodeInfo(ctx)
	return web.NodeInfo{DID: i.DID, Alias: i.Alias, Kind: i.Kind, Version: i.Version, ProtocolVersion: i.ProtocolVersion,
		Addresses: i.Addresses, StartedAt: i.StartedAt}, err
}

func (b webBackend) NodePeers(ctx context.Context) ([]web.Peer, error) {
	peers, err := b.n.NodePeers(ctx)
	out := make([]web.Peer, len(peers))
	for i, p := range peers {
		out[i] = web.Peer{DID: p.DID, Alias: p.Alias, RemoteAddr: p.RemoteAddr, Direction: p.Direction, Kind: p.Kind, ConnectedAt: p.ConnectedAt}
	}
	return out, err
}

func (b webBackend) NodeList(ctx context.Context) ([]web.KnownNode, error) {
	nodes, err := b.n.NodeList(ctx)
	out := make([]web.KnownNode, len(nodes))
	for i, e := range nodes {
		out[i] = web.KnownNode{DID: e.DID, Alias: e.Alias, Kind: e.Kind, Version: e.Version, LastSeen: e.LastSeen, Connected: e.Connected, Self: e.Self}
	}
	return out, err
}

func (b webBackend) Repos(ctx context.Context) ([]web.Repo, error) {
	list, err := b.n.RepoList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.Repo, 0, len(list))
	for _, info := range list {
		id, err := identity.ParseRepoID(info.RepoID)
		if err != nil {
			return nil, err
		}
		r, err := b.Repo(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (b webBackend) Repo(ctx context.Context, id identity.RepoID) (web.Repo, error) {
	d, err := b.n.RepoShow(ctx, rpc.RepoIDParams{RepoID: id.String()})
	if err != nil {
		return web.Repo{}, webError(err)
	}
	r := web.Repo{
		RepoID: d.RepoID, Name: d.Name, Description: d.Description, DefaultBranch: d.DefaultBranch,
		Creator: d.Creator, Holders: d.Holders, Replica: d.Replica,
	}
	if d.LastSync != nil {
		r.LastSync = *d.LastSync
	}
	for _, ns := range d.Namespaces {
		if ns.Node != d.Creator {
			continue
		}
		r.Updated = time.UnixMilli(int64(ns.Seq)) // a signed-refs sequence is its signing time in ms
		r.Refs = make([]gitstore.Ref, len(ns.Refs))
		for i, ref := range ns.Refs {
			r.Refs[i] = gitstore.Ref{Name: ref.Name, OID: ref.OID}
		}
	}
	return r, nil
}

func (b webBackend) Issues(ctx context.Context, repo identity.RepoID) ([]web.Issue, error) {
	list, err := b.n.IssueList(ctx, rpc.IssueListParams{RepoID: repo.String(), State: rpc.IssueAll})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]web.Issue, len(list))
	for i, is := range list {
		out[i] = webIssue(is)
	}
	return out, nil
}

func (b webBackend) Issue(ctx context.Context, repo identity.RepoID, id string) (web.IssueThread, error) {
	d, err := b.n.IssueShow(ctx, rpc.IssueIDParams{RepoID: repo.String(), ID: id})
	if err != nil {
		return web.IssueThread{}, webError(err)
	}
	th := web.IssueThread{Issue: webIssue(d.IssueSummary), Body: d.Body}
	for _, c := range d.Comments {
		th.Thread = append(th.Thread, web.Comment{ID: c.ID, Author: c.Author, AuthorAlias: c.AuthorAlias, Body: c.Body,
			ReplyTo: c.ReplyTo, Created: time.UnixMilli(int64(c.CreatedMS)), Edited: c.Edited, Redacted: c.Redacted})
	}
	return th, nil
}

func webIssue(is rpc.IssueSummary) web.Issue {
	return web.Issue{ID: is.ID, Title: is.Title, State: is.State, Reason: is.Reason, Author: is.Author, AuthorAlias: is.AuthorAlias,
		Labels: is.Labels, Assignees: is.Assignees, Comments: is.CommentCount,
		Created: time.UnixMilli(int64(is.CreatedMS)), Updated: time.UnixMilli(int64(is.UpdatedMS))}
}

// webError turns rpc's "not found" into web.ErrNotFound.
func webError(err error) error {
	if re, ok := errors.AsType[*rpc.Error](err); ok && re.Code == rpc.CodeNotFound {
		return fmt.Errorf("%w: %s", web.ErrNotFound, re.Message)
	}
	return err
}

func (b webBackend) Patches(ctx context.Context, repo identity.RepoID) ([]web.Patch, error) {
	list, err := b.n.PatchList(ctx, rpc.PatchListParams{RepoID: repo.String(), State: rpc.PatchAll})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]web.Patch, len(list))
	for i, p := range list {
		out[i] = webPatch(p)
	}
	return out, nil
}

func (b webBackend) Patch(ctx context.Context, repo identity.RepoID, id string) (web.PatchThread, error) {
	d, err := b.n.PatchShow(ctx, rpc.PatchIDParams{RepoID: repo.String(), ID: id})
	if err != nil {
		return web.PatchThread{}, webError(err)
	}
	th := web.PatchThread{Patch: webPatch(d.PatchSummary), Description: d.Description}
	if m := d.Merge; m != nil {
		th.MergedRevision, th.MergedAs = m.Revision, m.Commit
	}
	for _, r := range d.Revisions {
		th.RevisionList = append(th.RevisionList, web.Revision{ID: r.ID, Author: r.Author, Description: r.Description,
			Base: r.Base, Head: r.Head, Created: time.UnixMilli(int64(r.CreatedMS))})
	}
	for _, r := range d.Reviews {
		rv := web.Review{Author: r.Author, AuthorAlias: r.AuthorAlias, Revision: r.Revision, Verdict: r.Verdict,
			Summary: r.Summary, Created: time.UnixMilli(int64(r.CreatedMS))}
		for _, c := range r.Comments {
			rv.Inline = append(rv.Inline, web.InlineComment{Commit: c.Commit, Path: c.Path, Body: c.Body, Start: c.Start, End: c.End})
		}
		th.Reviews = append(th.Reviews, rv)
	}
	for _, c := range d.Comments {
		th.Thread = append(th.Thread, web.Comment{ID: c.ID, Author: c.Author, AuthorAlias: c.AuthorAlias, Body: c.Body,
			ReplyTo: c.ReplyTo, Created: time.UnixMilli(int64(c.CreatedMS)), Edited: c.Edited, Redacted: c.Redacted})
	}
	return th, nil
}

func webPatch(p rpc.PatchSummary) web.Patch {
	return web.Patch{ID: p.ID, Title: p.Title, State: p.State, Author: p.Author, AuthorAlias: p.AuthorAlias,
		Labels: p.Labels, Base: p.Base, Head: p.Head, Revisions: p.RevisionCount,
		Created: time.UnixMilli(int64(p.CreatedMS)), Updated: time.UnixMilli(int64(p.UpdatedMS))}
}
