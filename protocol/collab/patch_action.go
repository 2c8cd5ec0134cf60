package collab

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Patch action types. ONLY APPEND TO THIS LIST; spec/collab.md §8 holds
// the same registry. A patch also takes comment, edit (title and
// description), edit-comment, redact-comment, label, assign, close,
// reopen and react, with the rules they have for issues.
const (
	ActionOpenPatch       ActionType = "open-patch"
	ActionRevise          ActionType = "revise"
	ActionReview          ActionType = "review"
	ActionCommentRevision ActionType = "comment-revision"
	ActionDraft           ActionType = "draft"
	ActionReady           ActionType = "ready"
	ActionMerge           ActionType = "merge"
)

// Verdict is a review's judgement of a revision.
type Verdict string

// Verdicts.
const (
	VerdictAccept Verdict = "accept"
	VerdictReject Verdict = "reject"
)

// Patch limits.
const (
	// MaxInlineComments bounds the inline comments of one review.
	MaxInlineComments = 64

	// MaxPathLen bounds the file path of an inline comment, in bytes.
	MaxPathLen = 4096

	// MaxLine bounds the line numbers of an inline comment.
	MaxLine = 1 << 31
)

// OpenPatch creates a patch and its first revision (whose id is the
// patch id): it is the only action of a patch's root change. Base and head
// are git commit ids in lowercase hex (40 or 64 digits).
type OpenPatch struct {
	Title       string
	Description string
	Base        string
	Head        string
	Draft       bool // open as a draft
}

// Revise adds a revision (new base and head); the revision's id is the id
// of the change that holds it (a change holds at most one revise).
type Revise struct {
	Description string // what changed in this revision; may be empty
	Base        string
	Head        string
}

// InlineComment is a remark on lines Start to End (1-based, inclusive) of
// Path as of Commit.
type InlineComment struct {
	Commit string `json:"commit"`
	Path   string `json:"path"`
	Start  uint64 `json:"start"`
	End    uint64 `json:"end"`
	Body   string `json:"body"`
}

// Review judges one revision. A reviewer has one verdict per revision:
// a later review of the same revision by the same author replaces it.
type Review struct {
	Revision ChangeID
	Verdict  Verdict
	Summary  string
	Comments []InlineComment
}

// CommentRevision is a comment on a revision (Comment is on the patch as
// a whole). Its id is the id of its change, as for Comment.
type CommentRevision struct {
	Revision ChangeID
	Body     string
	ReplyTo  ChangeID
}

// Draft turns a patch back into a draft.
type Draft struct{}

// Ready marks a draft ready for review.
type Ready struct{}

// Merge records that Commit, on the author's (a delegate's) default
// branch, contains the head of Revision.
type Merge struct {
	Revision ChangeID
	Commit   string
}

func (*OpenPatch) Type() ActionType       { return ActionOpenPatch }
func (*Revise) Type() ActionType          { return ActionRevise }
func (*Review) Type() ActionType          { return ActionReview }
func (*CommentRevision) Type() ActionType { return ActionCommentRevision }
func (*Draft) Type() ActionType           { return ActionDraft }
func (*Ready) Type() ActionType           { return ActionReady }
func (*Merge) Type() ActionType           { return ActionMerge }

func (a *OpenPatch) validate() error {
	if err := checkTitle(a.Title); err != nil {
		return err
	}
	if err := checkBody("description", a.Description, false); err != nil {
		return err
	}
	return checkCommits(a.Base, a.Head)
}

func (a *Revise) validate() error {
	if err := checkBody("description", a.Description, false); err != nil {
		return err
	}
	return checkCommits(a.Base, a.Head)
}

func (a *Review) validate() error {
	if a.Revision.IsZero() {
		return invalid("review names no revision")
	}
	if a.Verdict != VerdictAccept && a.Verdict != VerdictReject {
		return invalid("verdict %q (want %q or %q)", truncate(string(a.Verdict)), VerdictAccept, VerdictReject)
	}
	if err := checkBody("summary", a.Summary, false); err != nil {
		return err
	}
	if len(a.Comments) > MaxInlineComments {
		return tooLarge("%d inline comments, max %d", len(a.Comments), MaxInlineComments)
	}
	for i, c := range a.Comments {
		if err := c.validate(); err != nil {
			return fmt.Errorf("inline comment %d: %w", i, err)
		}
	}
	return nil
}

func (c *InlineComment) validate() error {
	if err := checkCommit("commit", c.Commit); err != nil {
		return err
	}
	if c.Path == "" || !validText(c.Path, MaxPathLen, false) || strings.HasPrefix(c.Path, "/") {
		return invalid("path must be 1-%d bytes of UTF-8 without control characters, relative", MaxPathLen)
	}
	if c.Start < 1 || c.End < c.Start || c.End > MaxLine {
		return invalid("lines %d-%d (want 1 <= start <= end <= %d)", c.Start, c.End, uint64(MaxLine))
	}
	return checkBody("inline comment", c.Body, true)
}

func (a *CommentRevision) validate() error {
	if a.Revision.IsZero() {
		return invalid("comment-revision names no revision")
	}
	return checkBody("comment", a.Body, true)
}

func (*Draft) validate() error { return nil }
func (*Ready) validate() error { return nil }

func (a *Merge) validate() error {
	if a.Revision.IsZero() {
		return invalid("merge names no revision")
	}
	return checkCommit("commit", a.Commit)
}

func (a *OpenPatch) normalize() Action       { c := *a; return &c }
func (a *Revise) normalize() Action          { c := *a; return &c }
func (a *CommentRevision) normalize() Action { c := *a; return &c }
func (*Draft) normalize() Action             { return &Draft{} }
func (*Ready) normalize() Action             { return &Ready{} }
func (a *Merge) normalize() Action           { c := *a; return &c }

// normalize keeps the inline comments in the author's order (a review is
// read in that order) but copies them.
func (a *Review) normalize() Action {
	c := *a
	if len(a.Comments) > 0 {
		c.Comments = append([]InlineComment(nil), a.Comments...)
	}
	return &c
}

func checkCommits(base, head string) error {
	if err := checkCommit("base", base); err != nil {
		return err
	}
	if err := checkCommit("head", head); err != nil {
		return err
	}
	if len(base) != len(head) {
		return invalid("base and head of different hash functions")
	}
	return nil
}

// checkCommit: a git object id, 40 (SHA-1) or 64 (SHA-256) lowercase hex
// digits, not all zero.
func checkCommit(what, s string) error {
	if (len(s) != 40 && len(s) != 64) || strings.Trim(s, "0123456789abcdef") != "" || strings.Trim(s, "0") == "" {
		return invalid("%s %q is not a git object id (40 or 64 lowercase hex digits)", what, truncate(s))
	}
	return nil
}

// patchActions are the action types a patch takes; issueActions those an
// issue takes.
var (
	patchActions = map[ActionType]bool{
		ActionOpenPatch: true, ActionRevise: true, ActionReview: true, ActionCommentRevision: true,
		ActionDraft: true, ActionReady: true, ActionMerge: true,
		ActionComment: true, ActionEdit: true, ActionEditComment: true, ActionRedactComment: true,
		ActionLabel: true, ActionAssign: true, ActionClose: true, ActionReopen: true, ActionReact: true,
	}
	issueActions = map[ActionType]bool{
		ActionOpen: true, ActionComment: true, ActionEdit: true, ActionEditComment: true,
		ActionRedactComment: true, ActionLabel: true, ActionAssign: true, ActionClose: true,
		ActionReopen: true, ActionReact: true,
	}
)

// rootAction is the one action of a root change of typ.
func rootAction(typ ObjectType) ActionType {
	if typ == TypePatch {
		return ActionOpenPatch
	}
	return ActionOpen
}

// allowed reports whether an object of typ takes action type a.
func allowed(typ ObjectType, a ActionType) bool {
	if typ == TypePatch {
		return patchActions[a]
	}
	return issueActions[a]
}

// commitBytes encodes a checked commit id (hex) as bytes.
func commitBytes(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return []byte{}
	}
	return b
}

// commitFromBytes decodes a commit id; the length is checked by
// validate (on the hex form).
func commitFromBytes(b []byte) string { return hex.EncodeToString(b) }
