package rpc

import (
	"context"
	"strings"
)

// The issue fixture: one issue of repoExample, opened by bob, with one
// comment by carol (the delegate).
const (
	issueExample   = "e376a5810c5d3a7e2f4b6d8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a"
	commentExample = "8a8d2dc7b3e5f7a9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7"
	changeExample  = "5a38e30a70734ef58dec4d8745116bbb721a8f550c2fc70ced4a14fa83be018b"
)

func fixtureIssue() IssueDetail {
	return IssueDetail{
		IssueSummary: IssueSummary{
			ID: issueExample, Title: "Clone fails behind NAT", State: IssueOpen, Author: didBob, AuthorAlias: "bob",
			Labels: []string{"bug"}, Assignees: []string{}, CommentCount: 1,
			CreatedMS: 1795219200000, UpdatedMS: 1795219320000,
		},
		Body:      "git clone mega://… hangs after the handshake.",
		Reactions: map[string][]string{"👍": {didCarol}},
		Comments: []IssueComment{{
			ID: commentExample, Author: didCarol, AuthorAlias: "carol", Body: "Which relay were you using?",
			CreatedMS: 1795219320000, Reactions: map[string][]string{},
		}},
		Heads: []string{commentExample},
	}
}

func (f *fakeService) issueFor(repo, id string) (IssueDetail, error) {
	if repo != repoExample {
		return IssueDetail{}, notFound(repo)
	}
	if !strings.HasPrefix(issueExample, id) {
		return IssueDetail{}, Errorf(CodeNotFound, "no issue %q in %s", id, repo)
	}
	return fixtureIssue(), nil
}

// changed is the answer of a change to the fixture issue.
func (f *fakeService) changed(repo, id string, apply func(*IssueDetail)) (IssueChangeResult, error) {
	is, err := f.issueFor(repo, id)
	if err != nil {
		return IssueChangeResult{}, err
	}
	apply(&is)
	is.UpdatedMS = 1795219620000
	is.Heads = []string{changeExample}
	return IssueChangeResult{Change: changeExample, Issue: is}, nil
}

func (f *fakeService) IssueOpen(ctx context.Context, p IssueOpenParams) (IssueChangeResult, error) {
	if p.RepoID != repoExample {
		return IssueChangeResult{}, notFound(p.RepoID)
	}
	is := fixtureIssue()
	is.Title, is.Body, is.Labels, is.Comments, is.CommentCount, is.Reactions = p.Title, p.Body, []string{}, []IssueComment{}, 0, map[string][]string{}
	is.Author, is.AuthorAlias, is.UpdatedMS, is.Heads = didAlice, "alice-laptop", is.CreatedMS, []string{issueExample}
	return IssueChangeResult{Change: issueExample, Issue: is}, nil
}

func (f *fakeService) IssueList(ctx context.Context, p IssueListParams) ([]IssueSummary, error) {
	if p.RepoID != repoExample {
		return nil, notFound(p.RepoID)
	}
	if p.State == IssueClosed {
		return nil, nil
	}
	return []IssueSummary{fixtureIssue().IssueSummary}, nil
}

func (f *fakeService) IssueShow(ctx context.Context, p IssueIDParams) (IssueDetail, error) {
	return f.issueFor(p.RepoID, p.ID)
}

func (f *fakeService) IssueComment(ctx context.Context, p IssueCommentParams) (IssueChangeResult, error) {
	return f.changed(p.RepoID, p.ID, func(is *IssueDetail) {
		c := IssueComment{ID: changeExample, Author: didAlice, AuthorAlias: "alice-laptop", Body: p.Body, CreatedMS: 1795219620000, Reactions: map[string][]string{}}
		if p.ReplyTo != "" {
			c.ReplyTo = commentExample
		}
		is.Comments = append(is.Comments, c)
		is.CommentCount++
	})
}

func (f *fakeService) IssueEdit(ctx context.Context, p IssueEditParams) (IssueChangeResult, error) {
	return f.changed(p.RepoID, p.ID, func(is *IssueDetail) {
		if p.Title != nil {
			is.Title = *p.Title
		}
		if p.Body != nil {
			is.Body = *p.Body
		}
	})
}

func (f *fakeService) IssueLabel(ctx context.Context, p IssueLabelParams) (IssueChangeResult, error) {
	return f.changed(p.RepoID, p.ID, func(is *IssueDetail) { is.Labels = p.Add })
}

func (f *fakeService) IssueAssign(ctx context.Context, p IssueAssignParams) (IssueChangeResult, error) {
	return f.changed(p.RepoID, p.ID, func(is *IssueDetail) { is.Assignees = p.Add })
}

func (f *fakeService) IssueClose(ctx context.Context, p IssueCloseParams) (IssueChangeResult, error) {
	return f.changed(p.RepoID, p.ID, func(is *IssueDetail) { is.State, is.Reason = IssueClosed, p.Reason })
}

func (f *fakeService) IssueReopen(ctx context.Context, p IssueIDParams) (IssueChangeResult, error) {
	return f.changed(p.RepoID, p.ID, func(is *IssueDetail) {})
}

func (f *fakeService) IssueReact(ctx context.Context, p IssueReactParams) (IssueChangeResult, error) {
	return f.changed(p.RepoID, p.ID, func(is *IssueDetail) {
		if p.Comment != "" {
			is.Comments[0].Reactions[p.Emoji] = []string{didAlice}
			return
		}
		is.Reactions[p.Emoji] = append(is.Reactions[p.Emoji], didAlice)
	})
}
