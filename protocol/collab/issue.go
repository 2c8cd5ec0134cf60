package collab

import (
	"fmt"
	"maps"
	"slices"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Status is an issue's state.
type Status string

// Issue states.
const (
	StatusOpen   Status = "open"
	StatusClosed Status = "closed"
)

// Reactions maps an emoji to the authors who reacted with it, ascending
// bytewise; emoji with no authors left are absent.
type Reactions map[string][]identity.NodeID

// Issue is the folded state of an issue.
type Issue struct {
	ID        ObjectID          `json:"id"`
	Title     string            `json:"title"`
	Body      string            `json:"body"`
	Author    identity.NodeID   `json:"author"`
	Status    Status            `json:"status"`
	Reason    CloseReason       `json:"reason,omitempty"` // set while closed
	Labels    []string          `json:"labels"`           // ascending
	Assignees []identity.NodeID `json:"assignees"`        // ascending bytewise
	Reactions Reactions         `json:"reactions"`        // to the issue itself
	Comments  []IssueComment    `json:"comments"`         // in the fold's order
	Created   uint64            `json:"created_ms"`       // the root change's timestamp
	Updated   uint64            `json:"updated_ms"`       // latest timestamp of a change that applied something
	Heads     []ChangeID        `json:"heads"`            // accepted changes without accepted children
}

// IssueComment is one comment of an issue. Its id is the id of the change
// that made it.
type IssueComment struct {
	ID        ChangeID        `json:"id"`
	Author    identity.NodeID `json:"author"`
	Body      string          `json:"body"` // empty once redacted
	ReplyTo   ChangeID        `json:"reply_to,omitzero"`
	Created   uint64          `json:"created_ms"`
	Edited    bool            `json:"edited"`
	Redacted  bool            `json:"redacted"`
	Reactions Reactions       `json:"reactions"`
}

// FoldIssue folds a set of changes into the state of the issue object:
// Order, then every action of every accepted change in that order, each
// applied only if auth allows it (spec/collab.md §5). The same set gives
// the same state and report, whatever the order of changes; auth may be
// nil (no delegates). The error is ErrNoRoot if the issue's root change is
// not in the set.
func FoldIssue(object ObjectID, changes []*Change, auth Authority) (*Issue, Report, error) {
	if auth == nil {
		auth = Delegates(nil)
	}
	order, rejected, err := Order(TypeIssue, object, changes)
	report := Report{Rejected: rejected}
	if err != nil {
		return nil, report, err
	}
	f := newIssueFolder(auth, object)
	for _, c := range order {
		applied := false
		for i, a := range c.actions {
			if err := f.apply(c, a); err != nil {
				report.Skipped = append(report.Skipped, Skipped{c.id, i, a.Type(), err})
				if _, partial := err.(partialSkip); !partial {
					continue
				}
			}
			applied = true
		}
		if applied {
			f.issue.Updated = max(f.issue.Updated, c.timestamp)
		}
	}
	f.finish(order)
	return f.issue, report, nil
}

func newIssueFolder(auth Authority, object ObjectID) *issueFolder {
	return &issueFolder{
		auth: auth, issue: &Issue{ID: object, Status: StatusOpen},
		labels: map[string]bool{}, assignees: map[identity.NodeID]bool{},
		comments:  map[ChangeID]int{},
		reactions: map[ChangeID]map[string]map[identity.NodeID]bool{},
	}
}

// partialSkip is an error for an action applied only in part (open's
// labels by a non-delegate).
type partialSkip struct{ error }

func (p partialSkip) Unwrap() error { return p.error }

type issueFolder struct {
	auth      Authority
	issue     *Issue
	labels    map[string]bool
	assignees map[identity.NodeID]bool
	comments  map[ChangeID]int // index into issue.Comments
	// reactions by target: the zero id is the issue itself.
	reactions map[ChangeID]map[string]map[identity.NodeID]bool
}

func unauthorized(who identity.NodeID, what string) error {
	return fmt.Errorf("%w: %s may not %s", ErrUnauthorized, who.Short(), what)
}

// apply applies one action of c, or says why not.
func (f *issueFolder) apply(c *Change, a Action) error {
	is := f.issue
	delegate := f.auth.IsDelegate(c.author)
	owner := delegate || c.author == is.Author
	switch a := a.(type) {
	case *Open:
		is.Title, is.Body, is.Author, is.Created = a.Title, a.Body, c.author, c.timestamp
		if len(a.Labels) > 0 && !delegate {
			return partialSkip{unauthorized(c.author, "label (labels of open ignored)")}
		}
		f.setLabels(a.Labels, nil)
	case *Comment:
		if _, ok := f.comments[a.ReplyTo]; !a.ReplyTo.IsZero() && !ok {
			return fmt.Errorf("%w: reply to %s", ErrNoSuchComment, a.ReplyTo.Short())
		}
		f.comments[c.id] = len(is.Comments)
		is.Comments = append(is.Comments, IssueComment{
			ID: c.id, Author: c.author, Body: a.Body, ReplyTo: a.ReplyTo, Created: c.timestamp,
		})
	case *Edit:
		if !owner {
			return unauthorized(c.author, "edit the issue")
		}
		if a.Title != nil {
			is.Title = *a.Title
		}
		if a.Body != nil {
			is.Body = *a.Body
		}
	case *EditComment, *RedactComment:
		return f.changeComment(c, a)
	case *Label:
		if !delegate {
			return unauthorized(c.author, "label")
		}
		f.setLabels(a.Add, a.Remove)
	case *Assign:
		if !delegate {
			return unauthorized(c.author, "assign")
		}
		for _, k := range a.Add {
			f.assignees[k] = true
		}
		for _, k := range a.Remove {
			delete(f.assignees, k)
		}
	case *Close:
		if !owner {
			return unauthorized(c.author, "close the issue")
		}
		is.Status, is.Reason = StatusClosed, a.Reason
	case *Reopen:
		if !owner {
			return unauthorized(c.author, "reopen the issue")
		}
		is.Status, is.Reason = StatusOpen, ""
	case *React:
		return f.react(c, a)
	}
	return nil
}

func (f *issueFolder) setLabels(add, remove []string) {
	for _, l := range add {
		f.labels[l] = true
	}
	for _, l := range remove {
		delete(f.labels, l)
	}
}

// changeComment applies edit-comment and redact-comment: only the
// comment's author may do either (DESIGN D7; nobody puts words in another's
// mouth, nor takes them out).
func (f *issueFolder) changeComment(c *Change, a Action) error {
	var target ChangeID
	switch a := a.(type) {
	case *EditComment:
		target = a.Comment
	case *RedactComment:
		target = a.Comment
	}
	i, ok := f.comments[target]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchComment, target.Short())
	}
	cm := &f.issue.Comments[i]
	if cm.Redacted {
		return fmt.Errorf("%w: %s", ErrRedacted, target.Short())
	}
	if e, isEdit := a.(*EditComment); isEdit {
		if c.author != cm.Author {
			return unauthorized(c.author, "edit another's comment")
		}
		cm.Body, cm.Edited = e.Body, true
		return nil
	}
	if c.author != cm.Author {
		return unauthorized(c.author, "redact another's comment")
	}
	cm.Body, cm.Redacted = "", true
	return nil
}

func (f *issueFolder) react(c *Change, a *React) error {
	if _, ok := f.comments[a.Comment]; !a.Comment.IsZero() && !ok {
		return fmt.Errorf("%w: reaction to %s", ErrNoSuchComment, a.Comment.Short())
	}
	byEmoji := f.reactions[a.Comment]
	if byEmoji == nil {
		byEmoji = map[string]map[identity.NodeID]bool{}
		f.reactions[a.Comment] = byEmoji
	}
	if a.Remove {
		delete(byEmoji[a.Emoji], c.author)
		return nil
	}
	if byEmoji[a.Emoji] == nil {
		byEmoji[a.Emoji] = map[identity.NodeID]bool{}
	}
	byEmoji[a.Emoji][c.author] = true
	return nil
}

// finish turns the sets into sorted lists and computes the heads.
func (f *issueFolder) finish(order []*Change) {
	is := f.issue
	is.Labels = slices.Sorted(maps.Keys(f.labels))
	if is.Labels == nil {
		is.Labels = []string{}
	}
	is.Assignees = sortedKeys(f.assignees)
	is.Reactions = reactionList(f.reactions[ChangeID{}])
	for i := range is.Comments {
		is.Comments[i].Reactions = reactionList(f.reactions[is.Comments[i].ID])
	}
	if is.Comments == nil {
		is.Comments = []IssueComment{}
	}
	is.Heads = Heads(order)
}

func sortedKeys(set map[identity.NodeID]bool) []identity.NodeID {
	out := make([]identity.NodeID, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return out
}

func reactionList(byEmoji map[string]map[identity.NodeID]bool) Reactions {
	out := Reactions{}
	for emoji, who := range byEmoji {
		if len(who) > 0 {
			out[emoji] = sortedKeys(who)
		}
	}
	return out
}
