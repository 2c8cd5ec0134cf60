package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/collab"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// The issue.* methods of rpc.Service: resolve ids, call the collab
// service, turn its issues into rpc types and its domain errors into codes.

// issueError maps the collab service's domain errors to RPC codes.
func issueError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, collab.ErrNotFound):
		return rpc.Errorf(rpc.CodeNotFound, "%v", err)
	case errors.Is(err, collab.ErrInvalid):
		return rpc.Errorf(rpc.CodeInvalidArgument, "%v", err)
	case errors.Is(err, collab.ErrPermission):
		return rpc.Errorf(rpc.CodePermission, "%v", err)
	}
	return rpcError(err)
}

// resolveIssue parses the repository and resolves an issue id prefix.
func (n *Node) resolveIssue(ctx context.Context, repoID, id string) (identity.RepoID, cob.ObjectID, error) {
	repo, err := parseRepo(repoID)
	if err != nil {
		return repo, cob.ObjectID{}, err
	}
	obj, err := n.collab.Resolve(ctx, repo, id)
	return repo, obj, issueError(err)
}

// resolveComment resolves a comment id prefix among the issue's comments
// (zero for an empty prefix).
func (n *Node) resolveComment(ctx context.Context, repo identity.RepoID, obj cob.ObjectID, prefix string) (cob.ChangeID, error) {
	if prefix == "" {
		return cob.ChangeID{}, nil
	}
	issue, err := n.collab.Issue(ctx, repo, obj)
	if err != nil {
		return cob.ChangeID{}, issueError(err)
	}
	ids := make([]cob.ChangeID, len(issue.Comments))
	for i, c := range issue.Comments {
		ids[i] = c.ID
	}
	id, err := cob.ResolveChangeID(prefix, ids)
	if err != nil {
		return id, rpc.Errorf(rpc.CodeNotFound, "comment %q of issue %s: %v", prefix, obj.Short(), err)
	}
	return id, nil
}

// act resolves the issue and writes a change with the actions that mk
// builds (mk may resolve comment ids).
func (n *Node) act(ctx context.Context, repoID, id string, mk func(repo identity.RepoID, obj cob.ObjectID) ([]cob.Action, error)) (rpc.IssueChangeResult, error) {
	repo, obj, err := n.resolveIssue(ctx, repoID, id)
	if err != nil {
		return rpc.IssueChangeResult{}, err
	}
	actions, err := mk(repo, obj)
	if err != nil {
		return rpc.IssueChangeResult{}, err
	}
	issue, change, err := n.collab.Act(ctx, repo, obj, actions...)
	if err != nil {
		return rpc.IssueChangeResult{}, issueError(err)
	}
	return rpc.IssueChangeResult{Change: change.String(), Issue: n.issueDetail(issue)}, nil
}

func just(a ...cob.Action) func(identity.RepoID, cob.ObjectID) ([]cob.Action, error) {
	return func(identity.RepoID, cob.ObjectID) ([]cob.Action, error) { return a, nil }
}

// IssueOpen implements rpc.IssueService.
func (n *Node) IssueOpen(ctx context.Context, p rpc.IssueOpenParams) (rpc.IssueChangeResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.IssueChangeResult{}, err
	}
	issue, err := n.collab.Open(ctx, repo, p.Title, strings.ReplaceAll(p.Body, "\r\n", "\n"), p.Labels)
	if err != nil {
		return rpc.IssueChangeResult{}, issueError(err)
	}
	return rpc.IssueChangeResult{Change: issue.ID.String(), Issue: n.issueDetail(issue)}, nil
}

// IssueList implements rpc.IssueService.
func (n *Node) IssueList(ctx context.Context, p rpc.IssueListParams) ([]rpc.IssueSummary, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return nil, err
	}
	issues, err := n.collab.Issues(ctx, repo)
	if err != nil {
		return nil, issueError(err)
	}
	out := []rpc.IssueSummary{}
	for _, is := range issues {
		if p.State == rpc.IssueAll || string(is.Status) == p.State {
			out = append(out, n.issueSummary(is))
		}
	}
	return out, nil
}

// IssueShow implements rpc.IssueService.
func (n *Node) IssueShow(ctx context.Context, p rpc.IssueIDParams) (rpc.IssueDetail, error) {
	repo, obj, err := n.resolveIssue(ctx, p.RepoID, p.ID)
	if err != nil {
		return rpc.IssueDetail{}, err
	}
	issue, err := n.collab.Issue(ctx, repo, obj)
	if err != nil {
		return rpc.IssueDetail{}, issueError(err)
	}
	return n.issueDetail(issue), nil
}

// IssueComment implements rpc.IssueService.
func (n *Node) IssueComment(ctx context.Context, p rpc.IssueCommentParams) (rpc.IssueChangeResult, error) {
	return n.act(ctx, p.RepoID, p.ID, func(repo identity.RepoID, obj cob.ObjectID) ([]cob.Action, error) {
		reply, err := n.resolveComment(ctx, repo, obj, p.ReplyTo)
		return []cob.Action{&cob.Comment{Body: strings.ReplaceAll(p.Body, "\r\n", "\n"), ReplyTo: reply}}, err
	})
}

// IssueEdit implements rpc.IssueService.
func (n *Node) IssueEdit(ctx context.Context, p rpc.IssueEditParams) (rpc.IssueChangeResult, error) {
	if p.Body != nil {
		b := strings.ReplaceAll(*p.Body, "\r\n", "\n")
		p.Body = &b
	}
	return n.act(ctx, p.RepoID, p.ID, just(&cob.Edit{Title: p.Title, Body: p.Body}))
}

// IssueLabel implements rpc.IssueService.
func (n *Node) IssueLabel(ctx context.Context, p rpc.IssueLabelParams) (rpc.IssueChangeResult, error) {
	return n.act(ctx, p.RepoID, p.ID, just(&cob.Label{Add: p.Add, Remove: p.Remove}))
}

// IssueAssign implements rpc.IssueService.
func (n *Node) IssueAssign(ctx context.Context, p rpc.IssueAssignParams) (rpc.IssueChangeResult, error) {
	var add, remove []identity.NodeID
	for _, l := range []struct {
		in  []string
		out *[]identity.NodeID
	}{{p.Add, &add}, {p.Remove, &remove}} {
		for _, s := range l.in {
			id, err := identity.ParseNodeID(s)
			if err != nil {
				return rpc.IssueChangeResult{}, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
			}
			*l.out = append(*l.out, id)
		}
	}
	return n.act(ctx, p.RepoID, p.ID, just(&cob.Assign{Add: add, Remove: remove}))
}

// IssueClose implements rpc.IssueService.
func (n *Node) IssueClose(ctx context.Context, p rpc.IssueCloseParams) (rpc.IssueChangeResult, error) {
	return n.act(ctx, p.RepoID, p.ID, just(&cob.Close{Reason: cob.CloseReason(p.Reason)}))
}

// IssueReopen implements rpc.IssueService.
func (n *Node) IssueReopen(ctx context.Context, p rpc.IssueIDParams) (rpc.IssueChangeResult, error) {
	return n.act(ctx, p.RepoID, p.ID, just(&cob.Reopen{}))
}

// IssueReact implements rpc.IssueService.
func (n *Node) IssueReact(ctx context.Context, p rpc.IssueReactParams) (rpc.IssueChangeResult, error) {
	return n.act(ctx, p.RepoID, p.ID, func(repo identity.RepoID, obj cob.ObjectID) ([]cob.Action, error) {
		target, err := n.resolveComment(ctx, repo, obj, p.Comment)
		return []cob.Action{&cob.React{Comment: target, Emoji: p.Emoji, Remove: p.Remove}}, err
	})
}

func (n *Node) issueSummary(is *cob.Issue) rpc.IssueSummary {
	return rpc.IssueSummary{
		ID: is.ID.String(), Title: is.Title, State: string(is.Status), Reason: string(is.Reason),
		Author: is.Author.String(), AuthorAlias: n.store.Alias(is.Author),
		Labels: slices.Clone(is.Labels), Assignees: dids(is.Assignees),
		CommentCount: len(is.Comments), CreatedMS: is.Created, UpdatedMS: is.Updated,
	}
}

func (n *Node) issueDetail(is *cob.Issue) rpc.IssueDetail {
	d := rpc.IssueDetail{IssueSummary: n.issueSummary(is), Body: is.Body, Reactions: reactions(is.Reactions), Comments: []rpc.IssueComment{}}
	for _, c := range is.Comments {
		rc := rpc.IssueComment{
			ID: c.ID.String(), Author: c.Author.String(), AuthorAlias: n.store.Alias(c.Author), Body: c.Body,
			CreatedMS: c.Created, Edited: c.Edited, Redacted: c.Redacted, Reactions: reactions(c.Reactions),
		}
		if !c.ReplyTo.IsZero() {
			rc.ReplyTo = c.ReplyTo.String()
		}
		d.Comments = append(d.Comments, rc)
	}
	for _, h := range is.Heads {
		d.Heads = append(d.Heads, h.String())
	}
	return d
}

func reactions(r cob.Reactions) map[string][]string {
	out := map[string][]string{}
	for emoji, who := range r {
		out[emoji] = dids(who)
	}
	return out
}
