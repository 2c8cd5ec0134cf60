package rpc

import (
	"context"
	"regexp"

	"github.com/megaengine/megaengine/protocol/identity"
)

// The issue.* methods: issues as collaborative objects (spec/collab.md).
// Ids are change ids, 64 lowercase hex digits; params may give any unique
// prefix of at least 4 digits, and the daemon resolves it.

// Issue states (IssueSummary.State) and the filter of issue.list.
const (
	IssueOpen   = "open"
	IssueClosed = "closed"
	IssueAll    = "all" // issue.list only
)

// IssueOpenParams are the params of issue.open.
type IssueOpenParams struct {
	RepoID string   `json:"repo_id"`
	Title  string   `json:"title"`
	Body   string   `json:"body,omitempty"`
	Labels []string `json:"labels,omitempty"` // applied only if this node is a delegate
}

// IssueListParams are the params of issue.list.
type IssueListParams struct {
	RepoID string `json:"repo_id"`
	// State is IssueOpen (the default), IssueClosed or IssueAll.
	State string `json:"state,omitempty"`
}

// IssueIDParams name one issue (issue.show, issue.reopen).
type IssueIDParams struct {
	RepoID string `json:"repo_id"`
	ID     string `json:"id"`
}

// IssueCommentParams are the params of issue.comment.
type IssueCommentParams struct {
	RepoID  string `json:"repo_id"`
	ID      string `json:"id"`
	Body    string `json:"body"`
	ReplyTo string `json:"reply_to,omitempty"` // a comment id (or prefix)
}

// IssueEditParams are the params of issue.edit: a new title, body or both.
type IssueEditParams struct {
	RepoID string  `json:"repo_id"`
	ID     string  `json:"id"`
	Title  *string `json:"title,omitempty"`
	Body   *string `json:"body,omitempty"`
}

// IssueLabelParams are the params of issue.label.
type IssueLabelParams struct {
	RepoID string   `json:"repo_id"`
	ID     string   `json:"id"`
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// IssueAssignParams are the params of issue.assign: node ids (did:key).
type IssueAssignParams struct {
	RepoID string   `json:"repo_id"`
	ID     string   `json:"id"`
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// IssueCloseParams are the params of issue.close.
type IssueCloseParams struct {
	RepoID string `json:"repo_id"`
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"` // "solved" (default) or "other"
}

// IssueReactParams are the params of issue.react.
type IssueReactParams struct {
	RepoID  string `json:"repo_id"`
	ID      string `json:"id"`
	Comment string `json:"comment,omitempty"` // empty: the issue itself
	Emoji   string `json:"emoji"`
	Remove  bool   `json:"remove,omitempty"` // withdraw the reaction
}

// IssueSummary is one issue in a listing.
type IssueSummary struct {
	ID           string   `json:"id"`
	Title        string   `json:"title"`
	State        string   `json:"state"`
	Reason       string   `json:"reason,omitempty"` // while closed: solved or other
	Author       string   `json:"author"`
	AuthorAlias  string   `json:"author_alias,omitempty"`
	Labels       []string `json:"labels"`
	Assignees    []string `json:"assignees"`
	CommentCount int      `json:"comment_count"`
	CreatedMS    uint64   `json:"created_ms"`
	UpdatedMS    uint64   `json:"updated_ms"`
}

// IssueDetail is one issue with its thread.
type IssueDetail struct {
	IssueSummary
	Body      string              `json:"body"`
	Reactions map[string][]string `json:"reactions"`
	Comments  []IssueComment      `json:"comments"`
	// Heads are the changes the state was folded up to.
	Heads []string `json:"heads"`
}

// IssueComment is one comment of an issue; its id is its change's id.
type IssueComment struct {
	ID          string              `json:"id"`
	Author      string              `json:"author"`
	AuthorAlias string              `json:"author_alias,omitempty"`
	Body        string              `json:"body"`
	ReplyTo     string              `json:"reply_to,omitempty"`
	CreatedMS   uint64              `json:"created_ms"`
	Edited      bool                `json:"edited"`
	Redacted    bool                `json:"redacted"`
	Reactions   map[string][]string `json:"reactions"`
}

// IssueChangeResult is the result of the methods that change an issue:
// the change written (for issue.open, the new issue's id; for
// issue.comment, the comment's id) and the issue's new state.
type IssueChangeResult struct {
	Change string      `json:"change"`
	Issue  IssueDetail `json:"issue"`
}

// IssueService is the issue part of Service: the issue.* methods. Params
// come checked: repo ids canonical, issue and comment ids lowercase hex of
// 4 to 64 digits (prefixes the Service resolves), node ids canonical, enums
// one of their values (defaults filled in).
type IssueService interface {
	IssueOpen(ctx context.Context, p IssueOpenParams) (IssueChangeResult, error)
	IssueList(ctx context.Context, p IssueListParams) ([]IssueSummary, error)
	IssueShow(ctx context.Context, p IssueIDParams) (IssueDetail, error)
	IssueComment(ctx context.Context, p IssueCommentParams) (IssueChangeResult, error)
	IssueEdit(ctx context.Context, p IssueEditParams) (IssueChangeResult, error)
	IssueLabel(ctx context.Context, p IssueLabelParams) (IssueChangeResult, error)
	IssueAssign(ctx context.Context, p IssueAssignParams) (IssueChangeResult, error)
	IssueClose(ctx context.Context, p IssueCloseParams) (IssueChangeResult, error)
	IssueReopen(ctx context.Context, p IssueIDParams) (IssueChangeResult, error)
	IssueReact(ctx context.Context, p IssueReactParams) (IssueChangeResult, error)
}

var changeIDPrefix = regexp.MustCompile(`^[0-9a-f]{4,64}$`)

// checkChangeID checks an issue or comment id param (a prefix of at least
// 4 lowercase hex digits); an empty one is an error only if required.
func checkChangeID(c *call, name, s string, required bool) error {
	switch {
	case s == "" && !required:
		return nil
	case s == "":
		return Errorf(CodeInvalidParams, "%s: %s is required (an issue id, or a prefix of at least 4 hex digits)", c.Method, name)
	case !changeIDPrefix.MatchString(s):
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: want 4 to 64 lowercase hex digits", c.Method, name, s)
	}
	return nil
}

// issueParams decodes params into p and checks its repo_id and id.
func issueParams(c *call, p any, repo *string, id *string) error {
	if err := decodeParams(c, p); err != nil {
		return err
	}
	var err error
	if *repo, err = checkRepoID(c, *repo, true); err != nil {
		return err
	}
	if id != nil {
		return checkChangeID(c, "id", *id, true)
	}
	return nil
}

func handleIssueOpen(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueOpenParams
	if err := issueParams(c, &p, &p.RepoID, nil); err != nil {
		return nil, err
	}
	if p.Title == "" {
		return nil, Errorf(CodeInvalidParams, "%s: title is required", c.Method)
	}
	return svc.IssueOpen(ctx, p)
}

func handleIssueList(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueListParams
	if err := issueParams(c, &p, &p.RepoID, nil); err != nil {
		return nil, err
	}
	switch p.State {
	case "":
		p.State = IssueOpen
	case IssueOpen, IssueClosed, IssueAll:
	default:
		return nil, Errorf(CodeInvalidParams, "%s: invalid state %q: want open, closed or all", c.Method, p.State)
	}
	return svc.IssueList(ctx, p)
}

func handleIssueShow(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueIDParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	return svc.IssueShow(ctx, p)
}

func handleIssueComment(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueCommentParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if p.Body == "" {
		return nil, Errorf(CodeInvalidParams, "%s: body is required", c.Method)
	}
	if err := checkChangeID(c, "reply_to", p.ReplyTo, false); err != nil {
		return nil, err
	}
	return svc.IssueComment(ctx, p)
}

func handleIssueEdit(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueEditParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if p.Title == nil && p.Body == nil {
		return nil, Errorf(CodeInvalidParams, "%s: give title, body or both", c.Method)
	}
	if p.Title != nil && *p.Title == "" {
		return nil, Errorf(CodeInvalidParams, "%s: title must not be empty", c.Method)
	}
	return svc.IssueEdit(ctx, p)
}

func handleIssueLabel(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueLabelParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if len(p.Add) == 0 && len(p.Remove) == 0 {
		return nil, Errorf(CodeInvalidParams, "%s: give labels to add or remove", c.Method)
	}
	return svc.IssueLabel(ctx, p)
}

func handleIssueAssign(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueAssignParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if len(p.Add) == 0 && len(p.Remove) == 0 {
		return nil, Errorf(CodeInvalidParams, "%s: give node ids to add or remove", c.Method)
	}
	for _, l := range [][]string{p.Add, p.Remove} {
		for i, s := range l {
			id, err := identity.ParseNodeID(s)
			if err != nil {
				return nil, Errorf(CodeInvalidParams, "%s: invalid node id %q: %w", c.Method, s, err)
			}
			l[i] = id.String()
		}
	}
	return svc.IssueAssign(ctx, p)
}

func handleIssueClose(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueCloseParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	switch p.Reason {
	case "":
		p.Reason = "solved"
	case "solved", "other":
	default:
		return nil, Errorf(CodeInvalidParams, "%s: invalid reason %q: want solved or other", c.Method, p.Reason)
	}
	return svc.IssueClose(ctx, p)
}

func handleIssueReopen(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueIDParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	return svc.IssueReopen(ctx, p)
}

func handleIssueReact(ctx context.Context, svc Service, c *call) (any, error) {
	var p IssueReactParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if p.Emoji == "" {
		return nil, Errorf(CodeInvalidParams, "%s: emoji is required", c.Method)
	}
	if err := checkChangeID(c, "comment", p.Comment, false); err != nil {
		return nil, err
	}
	return svc.IssueReact(ctx, p)
}

// IssueOpen calls issue.open.
func (c *Client) IssueOpen(ctx context.Context, p IssueOpenParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueOpen, p, nil)
}

// IssueList calls issue.list.
func (c *Client) IssueList(ctx context.Context, p IssueListParams) ([]IssueSummary, error) {
	return callFor[[]IssueSummary](ctx, c, MethodIssueList, p, nil)
}

// IssueShow calls issue.show.
func (c *Client) IssueShow(ctx context.Context, p IssueIDParams) (IssueDetail, error) {
	return callFor[IssueDetail](ctx, c, MethodIssueShow, p, nil)
}

// IssueComment calls issue.comment.
func (c *Client) IssueComment(ctx context.Context, p IssueCommentParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueComment, p, nil)
}

// IssueEdit calls issue.edit.
func (c *Client) IssueEdit(ctx context.Context, p IssueEditParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueEdit, p, nil)
}

// IssueLabel calls issue.label.
func (c *Client) IssueLabel(ctx context.Context, p IssueLabelParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueLabel, p, nil)
}

// IssueAssign calls issue.assign.
func (c *Client) IssueAssign(ctx context.Context, p IssueAssignParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueAssign, p, nil)
}

// IssueClose calls issue.close.
func (c *Client) IssueClose(ctx context.Context, p IssueCloseParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueClose, p, nil)
}

// IssueReopen calls issue.reopen.
func (c *Client) IssueReopen(ctx context.Context, p IssueIDParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueReopen, p, nil)
}

// IssueReact calls issue.react.
func (c *Client) IssueReact(ctx context.Context, p IssueReactParams) (IssueChangeResult, error) {
	return callFor[IssueChangeResult](ctx, c, MethodIssueReact, p, nil)
}
