package rpc

import (
	"context"
	"regexp"
)

// The patch.* methods: patches as collaborative objects (spec/collab.md
// §8). Ids are change ids, as for issues; params may give any unique
// prefix of at least 4 digits. A revision's id is the id of the change
// that made it (the first revision's is the patch's).

// Patch states (PatchSummary.State) and the filter of patch.list.
const (
	PatchDraft  = "draft"
	PatchOpen   = "open"
	PatchClosed = "closed"
	PatchMerged = "merged"
	PatchAll    = "all" // patch.list only
)

// Verdicts of patch.review.
const (
	VerdictAccept = "accept"
	VerdictReject = "reject"
)

// PatchOpenParams are the params of patch.open. Base and head are commit
// ids the replica holds (a push brought them).
type PatchOpenParams struct {
	RepoID      string `json:"repo_id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Base        string `json:"base"`
	Head        string `json:"head"`
	Draft       bool   `json:"draft,omitempty"`
}

// PatchListParams are the params of patch.list.
type PatchListParams struct {
	RepoID string `json:"repo_id"`
	// State is PatchOpen (the default), PatchDraft, PatchClosed,
	// PatchMerged or PatchAll.
	State string `json:"state,omitempty"`
}

// PatchIDParams name one patch (patch.show, patch.close, patch.reopen,
// patch.ready).
type PatchIDParams struct {
	RepoID string `json:"repo_id"`
	ID     string `json:"id"`
}

// PatchInlineComment is a remark on lines Start to End (1-based) of Path
// as of Commit (in params, Commit defaults to the revision's head).
type PatchInlineComment struct {
	Commit string `json:"commit,omitempty"`
	Path   string `json:"path"`
	Start  uint64 `json:"start"`
	End    uint64 `json:"end,omitempty"` // params: default Start
	Body   string `json:"body"`
}

// PatchReviewParams are the params of patch.review.
type PatchReviewParams struct {
	RepoID   string               `json:"repo_id"`
	ID       string               `json:"id"`
	Revision string               `json:"revision,omitempty"` // default: the latest
	Verdict  string               `json:"verdict"`
	Summary  string               `json:"summary,omitempty"`
	Comments []PatchInlineComment `json:"comments,omitempty"`
}

// PatchCommentParams are the params of patch.comment.
type PatchCommentParams struct {
	RepoID   string `json:"repo_id"`
	ID       string `json:"id"`
	Body     string `json:"body"`
	ReplyTo  string `json:"reply_to,omitempty"`
	Revision string `json:"revision,omitempty"` // a comment on this revision
}

// PatchReviseParams are the params of patch.revise.
type PatchReviseParams struct {
	RepoID      string `json:"repo_id"`
	ID          string `json:"id"`
	Base        string `json:"base"`
	Head        string `json:"head"`
	Description string `json:"description,omitempty"`
}

// PatchCheckoutParams are the params of patch.checkout: Path is a working
// copy of the repository.
type PatchCheckoutParams struct {
	RepoID string `json:"repo_id"`
	ID     string `json:"id"`
	Path   string `json:"path"`
}

// PatchCheckoutResult says which branch now points at which revision.
type PatchCheckoutResult struct {
	Branch   string `json:"branch"`
	Revision string `json:"revision"`
	Head     string `json:"head"`
}

// PatchSummary is one patch in a listing; Base and Head are the latest
// revision's.
type PatchSummary struct {
	ID            string   `json:"id"`
	Title         string   `json:"title"`
	State         string   `json:"state"`
	Author        string   `json:"author"`
	AuthorAlias   string   `json:"author_alias,omitempty"`
	Labels        []string `json:"labels"`
	Base          string   `json:"base"`
	Head          string   `json:"head"`
	RevisionCount int      `json:"revision_count"`
	CreatedMS     uint64   `json:"created_ms"`
	UpdatedMS     uint64   `json:"updated_ms"`
}

// PatchDetail is one patch with its revisions, reviews and comments.
type PatchDetail struct {
	PatchSummary
	Description string          `json:"description"`
	Merge       *PatchMerge     `json:"merge,omitempty"`
	Revisions   []PatchRevision `json:"revisions"`
	Reviews     []PatchReview   `json:"reviews"`
	Comments    []PatchComment  `json:"comments"`
	Heads       []string        `json:"heads"`
}

// PatchRevision is one revision.
type PatchRevision struct {
	ID          string `json:"id"`
	Author      string `json:"author"`
	Description string `json:"description"`
	Base        string `json:"base"`
	Head        string `json:"head"`
	CreatedMS   uint64 `json:"created_ms"`
}

// PatchReview is a reviewer's latest verdict on a revision.
type PatchReview struct {
	Author      string               `json:"author"`
	AuthorAlias string               `json:"author_alias,omitempty"`
	Revision    string               `json:"revision"`
	Verdict     string               `json:"verdict"`
	Summary     string               `json:"summary"`
	Comments    []PatchInlineComment `json:"comments"`
	CreatedMS   uint64               `json:"created_ms"`
}

// PatchComment is a comment on the patch, or on one revision.
type PatchComment struct {
	IssueComment
	Revision string `json:"revision,omitempty"`
}

// PatchMerge says who merged which revision as which commit.
type PatchMerge struct {
	Revision string `json:"revision"`
	Commit   string `json:"commit"`
	Author   string `json:"author"`
}

// PatchChangeResult is the result of the methods that change a patch:
// the change written and the patch's new state.
type PatchChangeResult struct {
	Change string      `json:"change"`
	Patch  PatchDetail `json:"patch"`
}

// PatchService is the patch part of Service. Params come checked as for
// IssueService; commit ids are 40 or 64 lowercase hex digits.
type PatchService interface {
	PatchOpen(ctx context.Context, p PatchOpenParams) (PatchChangeResult, error)
	PatchList(ctx context.Context, p PatchListParams) ([]PatchSummary, error)
	PatchShow(ctx context.Context, p PatchIDParams) (PatchDetail, error)
	PatchReview(ctx context.Context, p PatchReviewParams) (PatchChangeResult, error)
	PatchComment(ctx context.Context, p PatchCommentParams) (PatchChangeResult, error)
	PatchRevise(ctx context.Context, p PatchReviseParams) (PatchChangeResult, error)
	PatchClose(ctx context.Context, p PatchIDParams) (PatchChangeResult, error)
	PatchReopen(ctx context.Context, p PatchIDParams) (PatchChangeResult, error)
	PatchReady(ctx context.Context, p PatchIDParams) (PatchChangeResult, error)
	PatchCheckout(ctx context.Context, p PatchCheckoutParams) (PatchCheckoutResult, error)
}

var commitID = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

func checkCommitParam(c *call, name, s string) error {
	if !commitID.MatchString(s) {
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: want a commit id of 40 or 64 lowercase hex digits", c.Method, name, s)
	}
	return nil
}

func handlePatchOpen(ctx context.Context, svc Service, c *call) (any, error) {
	var p PatchOpenParams
	if err := issueParams(c, &p, &p.RepoID, nil); err != nil {
		return nil, err
	}
	if p.Title == "" {
		return nil, Errorf(CodeInvalidParams, "%s: title is required", c.Method)
	}
	if err := checkCommitParam(c, "base", p.Base); err != nil {
		return nil, err
	}
	if err := checkCommitParam(c, "head", p.Head); err != nil {
		return nil, err
	}
	return svc.PatchOpen(ctx, p)
}

func handlePatchList(ctx context.Context, svc Service, c *call) (any, error) {
	var p PatchListParams
	if err := issueParams(c, &p, &p.RepoID, nil); err != nil {
		return nil, err
	}
	switch p.State {
	case "":
		p.State = PatchOpen
	case PatchOpen, PatchDraft, PatchClosed, PatchMerged, PatchAll:
	default:
		return nil, Errorf(CodeInvalidParams, "%s: invalid state %q: want open, draft, closed, merged or all", c.Method, p.State)
	}
	return svc.PatchList(ctx, p)
}

// patchIDHandler serves the methods that take PatchIDParams.
func patchIDHandler[R any](f func(Service) func(context.Context, PatchIDParams) (R, error)) handlerFunc {
	return func(ctx context.Context, svc Service, c *call) (any, error) {
		var p PatchIDParams
		if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
			return nil, err
		}
		return f(svc)(ctx, p)
	}
}

// The handlers of the methods that take PatchIDParams.
var (
	handlePatchShow   = patchIDHandler(func(s Service) func(context.Context, PatchIDParams) (PatchDetail, error) { return s.PatchShow })
	handlePatchClose  = patchIDHandler(func(s Service) func(context.Context, PatchIDParams) (PatchChangeResult, error) { return s.PatchClose })
	handlePatchReopen = patchIDHandler(func(s Service) func(context.Context, PatchIDParams) (PatchChangeResult, error) { return s.PatchReopen })
	handlePatchReady  = patchIDHandler(func(s Service) func(context.Context, PatchIDParams) (PatchChangeResult, error) { return s.PatchReady })
)

func handlePatchReview(ctx context.Context, svc Service, c *call) (any, error) {
	var p PatchReviewParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if p.Verdict != VerdictAccept && p.Verdict != VerdictReject {
		return nil, Errorf(CodeInvalidParams, "%s: invalid verdict %q: want accept or reject", c.Method, p.Verdict)
	}
	if err := checkChangeID(c, "revision", p.Revision, false); err != nil {
		return nil, err
	}
	for i := range p.Comments {
		ic := &p.Comments[i]
		if ic.End == 0 {
			ic.End = ic.Start
		}
		if ic.Path == "" || ic.Body == "" || ic.Start == 0 || ic.End < ic.Start {
			return nil, Errorf(CodeInvalidParams, "%s: comment %d needs a path, a body and lines 1 <= start <= end", c.Method, i)
		}
		if ic.Commit != "" {
			if err := checkCommitParam(c, "commit", ic.Commit); err != nil {
				return nil, err
			}
		}
	}
	return svc.PatchReview(ctx, p)
}

func handlePatchComment(ctx context.Context, svc Service, c *call) (any, error) {
	var p PatchCommentParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if p.Body == "" {
		return nil, Errorf(CodeInvalidParams, "%s: body is required", c.Method)
	}
	if err := checkChangeID(c, "reply_to", p.ReplyTo, false); err != nil {
		return nil, err
	}
	if err := checkChangeID(c, "revision", p.Revision, false); err != nil {
		return nil, err
	}
	return svc.PatchComment(ctx, p)
}

func handlePatchRevise(ctx context.Context, svc Service, c *call) (any, error) {
	var p PatchReviseParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if err := checkCommitParam(c, "base", p.Base); err != nil {
		return nil, err
	}
	if err := checkCommitParam(c, "head", p.Head); err != nil {
		return nil, err
	}
	return svc.PatchRevise(ctx, p)
}

func handlePatchCheckout(ctx context.Context, svc Service, c *call) (any, error) {
	var p PatchCheckoutParams
	if err := issueParams(c, &p, &p.RepoID, &p.ID); err != nil {
		return nil, err
	}
	if p.Path == "" {
		return nil, Errorf(CodeInvalidParams, "%s: path is required (a working copy of the repository)", c.Method)
	}
	return svc.PatchCheckout(ctx, p)
}

// PatchOpen calls patch.open.
func (c *Client) PatchOpen(ctx context.Context, p PatchOpenParams) (PatchChangeResult, error) {
	return callFor[PatchChangeResult](ctx, c, MethodPatchOpen, p, nil)
}

// PatchList calls patch.list.
func (c *Client) PatchList(ctx context.Context, p PatchListParams) ([]PatchSummary, error) {
	return callFor[[]PatchSummary](ctx, c, MethodPatchList, p, nil)
}

// PatchShow calls patch.show.
func (c *Client) PatchShow(ctx context.Context, p PatchIDParams) (PatchDetail, error) {
	return callFor[PatchDetail](ctx, c, MethodPatchShow, p, nil)
}

// PatchReview calls patch.review.
func (c *Client) PatchReview(ctx context.Context, p PatchReviewParams) (PatchChangeResult, error) {
	return callFor[PatchChangeResult](ctx, c, MethodPatchReview, p, nil)
}

// PatchComment calls patch.comment.
func (c *Client) PatchComment(ctx context.Context, p PatchCommentParams) (PatchChangeResult, error) {
	return callFor[PatchChangeResult](ctx, c, MethodPatchComment, p, nil)
}

// PatchRevise calls patch.revise.
func (c *Client) PatchRevise(ctx context.Context, p PatchReviseParams) (PatchChangeResult, error) {
	return callFor[PatchChangeResult](ctx, c, MethodPatchRevise, p, nil)
}

// PatchClose calls patch.close.
func (c *Client) PatchClose(ctx context.Context, p PatchIDParams) (PatchChangeResult, error) {
	return callFor[PatchChangeResult](ctx, c, MethodPatchClose, p, nil)
}

// PatchReopen calls patch.reopen.
func (c *Client) PatchReopen(ctx context.Context, p PatchIDParams) (PatchChangeResult, error) {
	return callFor[PatchChangeResult](ctx, c, MethodPatchReopen, p, nil)
}

// PatchReady calls patch.ready.
func (c *Client) PatchReady(ctx context.Context, p PatchIDParams) (PatchChangeResult, error) {
	return callFor[PatchChangeResult](ctx, c, MethodPatchReady, p, nil)
}

// PatchCheckout calls patch.checkout.
func (c *Client) PatchCheckout(ctx context.Context, p PatchCheckoutParams) (PatchCheckoutResult, error) {
	return callFor[PatchCheckoutResult](ctx, c, MethodPatchCheckout, p, nil)
}
