package main

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/megaengine/megaengine/rpc"
)

// The collaboration tools of mecli mcp: one issue.* or patch.* method each.

type (
	issueListInput struct {
		RepoID string `json:"repo_id" jsonschema:"the repository: did:repo:z… (or z… alone) or its mega:// URL"`
		State  string `json:"state,omitempty" jsonschema:"open (the default), closed or all"`
	}
	issueIDInput struct {
		RepoID string `json:"repo_id" jsonschema:"the repository: did:repo:z… (or z… alone) or its mega:// URL"`
		ID     string `json:"id" jsonschema:"the issue id (hex), or a unique prefix of it"`
	}
	issueOpenInput struct {
		RepoID string   `json:"repo_id" jsonschema:"the repository: did:repo:z… (or z… alone) or its mega:// URL"`
		Title  string   `json:"title" jsonschema:"the issue's title, one line"`
		Body   string   `json:"body,omitempty" jsonschema:"the issue's description (Markdown)"`
		Labels []string `json:"labels,omitempty" jsonschema:"labels; applied only if this node is a delegate of the repository"`
	}
	issueCommentInput struct {
		RepoID  string `json:"repo_id" jsonschema:"the repository: did:repo:z… (or z… alone) or its mega:// URL"`
		ID      string `json:"id" jsonschema:"the issue id (hex), or a unique prefix of it"`
		Body    string `json:"body" jsonschema:"the comment (Markdown)"`
		ReplyTo string `json:"reply_to,omitempty" jsonschema:"the id (or a prefix) of the comment this one answers"`
	}
	issueListOutput struct {
		Issues []rpc.IssueSummary `json:"issues"`
	}
	patchListInput struct {
		RepoID string `json:"repo_id" jsonschema:"the repository: did:repo:z… (or z… alone) or its mega:// URL"`
		State  string `json:"state,omitempty" jsonschema:"open (the default), draft, closed, merged or all"`
	}
	patchIDInput struct {
		RepoID string `json:"repo_id" jsonschema:"the repository: did:repo:z… (or z… alone) or its mega:// URL"`
		ID     string `json:"id" jsonschema:"the patch id (hex), or a unique prefix of it"`
	}
	patchListOutput struct {
		Patches []rpc.PatchSummary `json:"patches"`
	}
)

// addPatchTools adds patch_list and patch_show.
func addPatchTools(s *mcp.Server, root string) {
	no := false
	mcp.AddTool(s, &mcp.Tool{
		Name:        "patch_list",
		Description: "List a repository's patches (open ones unless state says otherwise): proposed changes with their revisions, as every node folds them.",
		Annotations: &mcp.ToolAnnotations{Title: "List patches", ReadOnlyHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in patchListInput) (*mcp.CallToolResult, patchListOutput, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, patchListOutput{}, err
		}
		list, err := dialDo(ctx, root, func(c *rpc.Client) ([]rpc.PatchSummary, error) {
			return c.PatchList(ctx, rpc.PatchListParams{RepoID: id, State: in.State})
		})
		return nil, patchListOutput{Patches: list}, err
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "patch_show",
		Description: "Show one patch: its revisions (base and head commits), reviews with verdicts and inline comments, and comments.",
		Annotations: &mcp.ToolAnnotations{Title: "Show a patch", ReadOnlyHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in patchIDInput) (*mcp.CallToolResult, rpc.PatchDetail, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, rpc.PatchDetail{}, err
		}
		return mcpCall(ctx, root, func(c *rpc.Client) (rpc.PatchDetail, error) {
			return c.PatchShow(ctx, rpc.PatchIDParams{RepoID: id, ID: in.ID})
		})
	})
}

// addIssueTools adds issue_list, issue_show, issue_open and issue_comment.
func addIssueTools(s *mcp.Server, root string) {
	no, yes := false, true
	mcp.AddTool(s, &mcp.Tool{
		Name:        "issue_list",
		Description: "List a repository's issues (open ones unless state says otherwise), as every node folds them from the signed changes it holds.",
		Annotations: &mcp.ToolAnnotations{Title: "List issues", ReadOnlyHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in issueListInput) (*mcp.CallToolResult, issueListOutput, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, issueListOutput{}, err
		}
		list, err := dialDo(ctx, root, func(c *rpc.Client) ([]rpc.IssueSummary, error) {
			return c.IssueList(ctx, rpc.IssueListParams{RepoID: id, State: in.State})
		})
		return nil, issueListOutput{Issues: list}, err
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "issue_show",
		Description: "Show one issue with its body, labels, assignees, reactions and comment thread.",
		Annotations: &mcp.ToolAnnotations{Title: "Show an issue", ReadOnlyHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in issueIDInput) (*mcp.CallToolResult, rpc.IssueDetail, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, rpc.IssueDetail{}, err
		}
		return mcpCall(ctx, root, func(c *rpc.Client) (rpc.IssueDetail, error) {
			return c.IssueShow(ctx, rpc.IssueIDParams{RepoID: id, ID: in.ID})
		})
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "issue_open",
		Description: "Open an issue in a repository: a change signed by this node, announced to the network at once.",
		Annotations: &mcp.ToolAnnotations{Title: "Open an issue", DestructiveHint: &no, OpenWorldHint: &yes},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in issueOpenInput) (*mcp.CallToolResult, rpc.IssueChangeResult, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, rpc.IssueChangeResult{}, err
		}
		return mcpCall(ctx, root, func(c *rpc.Client) (rpc.IssueChangeResult, error) {
			return c.IssueOpen(ctx, rpc.IssueOpenParams{RepoID: id, Title: in.Title, Body: in.Body, Labels: in.Labels})
		})
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "issue_comment",
		Description: "Comment on an issue (optionally in reply to a comment): a change signed by this node, announced at once.",
		Annotations: &mcp.ToolAnnotations{Title: "Comment on an issue", DestructiveHint: &no, OpenWorldHint: &yes},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in issueCommentInput) (*mcp.CallToolResult, rpc.IssueChangeResult, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, rpc.IssueChangeResult{}, err
		}
		return mcpCall(ctx, root, func(c *rpc.Client) (rpc.IssueChangeResult, error) {
			return c.IssueComment(ctx, rpc.IssueCommentParams{RepoID: id, ID: in.ID, Body: in.Body, ReplyTo: in.ReplyTo})
		})
	})
}
