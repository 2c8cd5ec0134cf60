package daemon

import (
	"context"
	"path/filepath"
	"strings"

	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// The patch.* methods of rpc.Service, shaped as the issue.* ones
// (rpc_issue.go): resolve ids, call the collab service, convert.

func (n *Node) resolvePatch(ctx context.Context, repoID, id string) (identity.RepoID, cob.ObjectID, error) {
	repo, err := parseRepo(repoID)
	if err != nil {
		return repo, cob.ObjectID{}, err
	}
	obj, err := n.collab.ResolvePatch(ctx, repo, id)
	return repo, obj, issueError(err)
}

// resolveIn resolves an id prefix among ids (zero for an empty prefix).
func resolveIn(what, prefix string, ids []cob.ChangeID) (cob.ChangeID, error) {
	if prefix == "" {
		return cob.ChangeID{}, nil
	}
	id, err := cob.ResolveChangeID(prefix, ids)
	if err != nil {
		return id, rpc.Errorf(rpc.CodeNotFound, "%s %q: %v", what, prefix, err)
	}
	return id, nil
}

// patchAct resolves the patch and writes a change with the actions that
// mk builds from its current state.
func (n *Node) patchAct(ctx context.Context, repoID, id string, mk func(p *cob.Patch) ([]cob.Action, error)) (rpc.PatchChangeResult, error) {
	repo, obj, err := n.resolvePatch(ctx, repoID, id)
	if err != nil {
		return rpc.PatchChangeResult{}, err
	}
	p, err := n.collab.Patch(ctx, repo, obj)
	if err != nil {
		return rpc.PatchChangeResult{}, issueError(err)
	}
	actions, err := mk(p)
	if err != nil {
		return rpc.PatchChangeResult{}, err
	}
	p, change, err := n.collab.ActPatch(ctx, repo, obj, actions...)
	if err != nil {
		return rpc.PatchChangeResult{}, issueError(err)
	}
	return rpc.PatchChangeResult{Change: change.String(), Patch: n.patchDetail(p)}, nil
}

func justP(a ...cob.Action) func(*cob.Patch) ([]cob.Action, error) {
	return func(*cob.Patch) ([]cob.Action, error) { return a, nil }
}

// PatchOpen implements rpc.PatchService.
func (n *Node) PatchOpen(ctx context.Context, p rpc.PatchOpenParams) (rpc.PatchChangeResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.PatchChangeResult{}, err
	}
	open := &cob.OpenPatch{Title: p.Title, Description: strings.ReplaceAll(p.Description, "\r\n", "\n"), Base: p.Base, Head: p.Head, Draft: p.Draft}
	patch, err := n.collab.OpenPatch(ctx, repo, open)
	if err != nil {
		return rpc.PatchChangeResult{}, issueError(err)
	}
	return rpc.PatchChangeResult{Change: patch.ID.String(), Patch: n.patchDetail(patch)}, nil
}

// PatchList implements rpc.PatchService.
func (n *Node) PatchList(ctx context.Context, p rpc.PatchListParams) ([]rpc.PatchSummary, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return nil, err
	}
	patches, err := n.collab.Patches(ctx, repo)
	if err != nil {
		return nil, issueError(err)
	}
	out := []rpc.PatchSummary{}
	for _, pa := range patches {
		if p.State == rpc.PatchAll || string(pa.State) == p.State {
			out = append(out, n.patchSummary(pa))
		}
	}
	return out, nil
}

// PatchShow implements rpc.PatchService.
func (n *Node) PatchShow(ctx context.Context, p rpc.PatchIDParams) (rpc.PatchDetail, error) {
	repo, obj, err := n.resolvePatch(ctx, p.RepoID, p.ID)
	if err != nil {
		return rpc.PatchDetail{}, err
	}
	pa, err := n.collab.Patch(ctx, repo, obj)
	if err != nil {
		return rpc.PatchDetail{}, issueError(err)
	}
	return n.patchDetail(pa), nil
}

// revisionOf resolves a revision prefix (the latest for an empty one).
func revisionOf(pa *cob.Patch, prefix string) (cob.Revision, error) {
	if prefix == "" {
		return pa.Latest(), nil
	}
	ids := make([]cob.ChangeID, len(pa.Revisions))
	for i, r := range pa.Revisions {
		ids[i] = r.ID
	}
	id, err := resolveIn("revision", prefix, ids)
	for _, r := range pa.Revisions {
		if r.ID == id {
			return r, err
		}
	}
	return cob.Revision{}, err
}

// PatchReview implements rpc.PatchService.
func (n *Node) PatchReview(ctx context.Context, p rpc.PatchReviewParams) (rpc.PatchChangeResult, error) {
	return n.patchAct(ctx, p.RepoID, p.ID, func(pa *cob.Patch) ([]cob.Action, error) {
		rev, err := revisionOf(pa, p.Revision)
		if err != nil {
			return nil, err
		}
		r := &cob.Review{Revision: rev.ID, Verdict: cob.Verdict(p.Verdict), Summary: strings.ReplaceAll(p.Summary, "\r\n", "\n")}
		for _, c := range p.Comments {
			if c.Commit == "" {
				c.Commit = rev.Head
			}
			if c.End == 0 {
				c.End = c.Start
			}
			r.Comments = append(r.Comments, cob.InlineComment{Commit: c.Commit, Path: c.Path, Start: c.Start, End: c.End, Body: c.Body})
		}
		return []cob.Action{r}, nil
	})
}

// PatchComment implements rpc.PatchService.
func (n *Node) PatchComment(ctx context.Context, p rpc.PatchCommentParams) (rpc.PatchChangeResult, error) {
	return n.patchAct(ctx, p.RepoID, p.ID, func(pa *cob.Patch) ([]cob.Action, error) {
		ids := make([]cob.ChangeID, len(pa.Comments))
		for i, c := range pa.Comments {
			ids[i] = c.ID
		}
		reply, err := resolveIn("comment", p.ReplyTo, ids)
		if err != nil {
			return nil, err
		}
		body := strings.ReplaceAll(p.Body, "\r\n", "\n")
		if p.Revision == "" {
			return []cob.Action{&cob.Comment{Body: body, ReplyTo: reply}}, nil
		}
		rev, err := revisionOf(pa, p.Revision)
		return []cob.Action{&cob.CommentRevision{Revision: rev.ID, Body: body, ReplyTo: reply}}, err
	})
}

// PatchRevise implements rpc.PatchService.
func (n *Node) PatchRevise(ctx context.Context, p rpc.PatchReviseParams) (rpc.PatchChangeResult, error) {
	d := strings.ReplaceAll(p.Description, "\r\n", "\n")
	return n.patchAct(ctx, p.RepoID, p.ID, justP(&cob.Revise{Description: d, Base: p.Base, Head: p.Head}))
}

// PatchClose implements rpc.PatchService.
func (n *Node) PatchClose(ctx context.Context, p rpc.PatchIDParams) (rpc.PatchChangeResult, error) {
	return n.patchAct(ctx, p.RepoID, p.ID, justP(&cob.Close{Reason: cob.ReasonOther}))
}

// PatchReopen implements rpc.PatchService.
func (n *Node) PatchReopen(ctx context.Context, p rpc.PatchIDParams) (rpc.PatchChangeResult, error) {
	return n.patchAct(ctx, p.RepoID, p.ID, justP(&cob.Reopen{}))
}

// PatchReady implements rpc.PatchService.
func (n *Node) PatchReady(ctx context.Context, p rpc.PatchIDParams) (rpc.PatchChangeResult, error) {
	return n.patchAct(ctx, p.RepoID, p.ID, justP(&cob.Ready{}))
}

// PatchCheckout implements rpc.PatchService.
func (n *Node) PatchCheckout(ctx context.Context, p rpc.PatchCheckoutParams) (rpc.PatchCheckoutResult, error) {
	repo, obj, err := n.resolvePatch(ctx, p.RepoID, p.ID)
	if err != nil {
		return rpc.PatchCheckoutResult{}, err
	}
	branch := PatchBranchName(obj)
	rev, err := n.collab.Checkout(ctx, repo, obj, filepath.Clean(p.Path), branch)
	if err != nil {
		return rpc.PatchCheckoutResult{}, issueError(err)
	}
	return rpc.PatchCheckoutResult{Branch: branch, Revision: rev.ID.String(), Head: rev.Head}, nil
}

// PatchBranchName is the working-copy branch of patch.checkout:
// patch/<first 7 hex digits of the patch id>.
func PatchBranchName(id cob.ObjectID) string { return "patch/" + id.String()[:7] }

func (n *Node) patchSummary(p *cob.Patch) rpc.PatchSummary {
	latest := p.Latest()
	return rpc.PatchSummary{
		ID: p.ID.String(), Title: p.Title, State: string(p.State), Author: p.Author.String(), AuthorAlias: n.store.Alias(p.Author),
		Labels: append([]string{}, p.Labels...), Base: latest.Base, Head: latest.Head, RevisionCount: len(p.Revisions),
		CreatedMS: p.Created, UpdatedMS: p.Updated,
	}
}

func (n *Node) patchDetail(p *cob.Patch) rpc.PatchDetail {
	d := rpc.PatchDetail{PatchSummary: n.patchSummary(p), Description: p.Description,
		Revisions: []rpc.PatchRevision{}, Reviews: []rpc.PatchReview{}, Comments: []rpc.PatchComment{}, Heads: []string{}}
	if m := p.Merge; m != nil {
		d.Merge = &rpc.PatchMerge{Revision: m.Revision.String(), Commit: m.Commit, Author: m.Author.String()}
	}
	for _, r := range p.Revisions {
		d.Revisions = append(d.Revisions, rpc.PatchRevision{ID: r.ID.String(), Author: r.Author.String(),
			Description: r.Description, Base: r.Base, Head: r.Head, CreatedMS: r.Created})
	}
	for _, r := range p.Reviews {
		rr := rpc.PatchReview{Author: r.Author.String(), AuthorAlias: n.store.Alias(r.Author), Revision: r.Revision.String(),
			Verdict: string(r.Verdict), Summary: r.Summary, Comments: []rpc.PatchInlineComment{}, CreatedMS: r.Created}
		for _, c := range r.Comments {
			rr.Comments = append(rr.Comments, rpc.PatchInlineComment(c))
		}
		d.Reviews = append(d.Reviews, rr)
	}
	for _, c := range p.Comments {
		rc := rpc.PatchComment{IssueComment: rpc.IssueComment{ID: c.ID.String(), Author: c.Author.String(),
			AuthorAlias: n.store.Alias(c.Author), Body: c.Body, CreatedMS: c.Created, Edited: c.Edited,
			Redacted: c.Redacted, Reactions: reactions(c.Reactions)}}
		if !c.ReplyTo.IsZero() {
			rc.ReplyTo = c.ReplyTo.String()
		}
		if !c.Revision.IsZero() {
			rc.Revision = c.Revision.String()
		}
		d.Comments = append(d.Comments, rc)
	}
	for _, h := range p.Heads {
		d.Heads = append(d.Heads, h.String())
	}
	return d
}
