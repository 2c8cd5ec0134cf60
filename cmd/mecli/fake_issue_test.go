package main

import (
	"context"

	"github.com/megaengine/megaengine/rpc"
)

// The fake daemon's issue methods record their params and answer with
// fakeIssue, so that tests read what mecli sent and how it prints.

var errNoIssues = rpc.Errorf(rpc.CodeNotFound, "no issue in this test")

func fakeIssue() rpc.IssueDetail {
	return rpc.IssueDetail{
		IssueSummary: rpc.IssueSummary{
			ID: "e376a5810c5d3a7e2f4b6d8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a", Title: "Clone fails behind NAT",
			State: rpc.IssueOpen, Author: didBob, AuthorAlias: "bob", Labels: []string{"bug"}, Assignees: []string{},
			CommentCount: 1, CreatedMS: 1795219200000, UpdatedMS: 1795219320000,
		},
		Body:      "It hangs.",
		Reactions: map[string][]string{},
		Comments: []rpc.IssueComment{{ID: "8a8d2dc7b3e5f7a9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7", Author: didCarol,
			AuthorAlias: "carol", Body: "Which relay?", CreatedMS: 1795219320000, Reactions: map[string][]string{}}},
	}
}

func (f *fakeDaemon) issueChange(p any) (rpc.IssueChangeResult, error) {
	f.record(p)
	return rpc.IssueChangeResult{Change: fakeIssue().ID, Issue: fakeIssue()}, nil
}

func (f *fakeDaemon) IssueOpen(_ context.Context, p rpc.IssueOpenParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
func (f *fakeDaemon) IssueList(_ context.Context, p rpc.IssueListParams) ([]rpc.IssueSummary, error) {
	f.record(p)
	return []rpc.IssueSummary{fakeIssue().IssueSummary}, nil
}
func (f *fakeDaemon) IssueShow(_ context.Context, p rpc.IssueIDParams) (rpc.IssueDetail, error) {
	f.record(p)
	return fakeIssue(), nil
}
func (f *fakeDaemon) IssueComment(_ context.Context, p rpc.IssueCommentParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
func (f *fakeDaemon) IssueEdit(_ context.Context, p rpc.IssueEditParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
func (f *fakeDaemon) IssueLabel(_ context.Context, p rpc.IssueLabelParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
func (f *fakeDaemon) IssueAssign(_ context.Context, p rpc.IssueAssignParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
func (f *fakeDaemon) IssueClose(_ context.Context, p rpc.IssueCloseParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
func (f *fakeDaemon) IssueReopen(_ context.Context, p rpc.IssueIDParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
func (f *fakeDaemon) IssueReact(_ context.Context, p rpc.IssueReactParams) (rpc.IssueChangeResult, error) {
	return f.issueChange(p)
}
