package collab

import (
	"errors"
	"fmt"
	"slices"

	"github.com/megaengine/megaengine/protocol/identity"
)

// PatchState is a patch's state.
type PatchState string

// Patch states.
const (
	PatchDraft  PatchState = "draft"
	PatchOpen   PatchState = "open"
	PatchClosed PatchState = "closed"
	PatchMerged PatchState = "merged"
)

// Reasons for which the patch fold skips an action (Skipped.Err wraps
// one), besides those of the issue fold.
var (
	// ErrNoSuchRevision: the action names a revision that does not exist
	// (or not yet, in the fold's order).
	ErrNoSuchRevision = errors.New("no such revision")

	// ErrMerged: the patch is merged; it takes no revision or change of
	// state any more.
	ErrMerged = errors.New("patch already merged")
)

// Patch is the folded state of a patch.
type Patch struct {
	ID          ObjectID          `json:"id"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Author      identity.NodeID   `json:"author"`
	State       PatchState        `json:"state"`
	Merge       *PatchMerge       `json:"merge,omitempty"` // set once merged: the merge that reached the threshold
	Merges      []PatchMerge      `json:"merges"`          // every delegate's merge, in the fold's order
	Labels      []string          `json:"labels"`
	Assignees   []identity.NodeID `json:"assignees"`
	Reactions   Reactions         `json:"reactions"`
	Revisions   []Revision        `json:"revisions"` // in the fold's order; the first has the patch's id
	Reviews     []PatchReview     `json:"reviews"`   // one per reviewer and revision, in order of first review
	Comments    []PatchComment    `json:"comments"`
	Created     uint64            `json:"created_ms"`
	Updated     uint64            `json:"updated_ms"`
	Heads       []ChangeID        `json:"heads"`
}

// Revision is one version of the patch's code. Its id is the id of the
// change that made it.
type Revision struct {
	ID          ChangeID        `json:"id"`
	Author      identity.NodeID `json:"author"`
	Description string          `json:"description"`
	Base        string          `json:"base"`
	Head        string          `json:"head"`
	Created     uint64          `json:"created_ms"`
}

// PatchReview is a reviewer's latest verdict on a revision.
type PatchReview struct {
	ID       ChangeID        `json:"id"` // the change of the latest review
	Author   identity.NodeID `json:"author"`
	Revision ChangeID        `json:"revision"`
	Verdict  Verdict         `json:"verdict"`
	Summary  string          `json:"summary"`
	Comments []InlineComment `json:"comments"`
	Created  uint64          `json:"created_ms"`
}

// PatchComment is a comment on the patch, or on one of its revisions.
type PatchComment struct {
	IssueComment
	Revision ChangeID `json:"revision,omitzero"`
}

// PatchMerge says who merged which revision, as which commit.
type PatchMerge struct {
	Revision ChangeID        `json:"revision"`
	Commit   string          `json:"commit"`
	Author   identity.NodeID `json:"author"`
	Created  uint64          `json:"created_ms"`
}

// FoldPatch folds a set of changes into the state of the patch object,
// as FoldIssue does for issues (spec/collab.md §8). The fold is pure: it
// does not check that a merge's commit contains the revision's head,
// because that needs git and would make the state depend on which commits
// a node happens to have. A merge is trusted as the word of a delegate;
// the daemon signs one only after checking the ancestry in git
// (daemon/collab).
func FoldPatch(object ObjectID, changes []*Change, auth Authority) (*Patch, Report, error) {
	if auth == nil {
		auth = Delegates(nil)
	}
	order, rejected, err := Order(TypePatch, object, changes)
	report := Report{Rejected: rejected}
	if err != nil {
		return nil, report, err
	}
	f := &patchFolder{
		auth: auth, p: &Patch{ID: object, State: PatchOpen},
		disc:      newIssueFolder(auth, object),
		revisions: map[ChangeID]bool{}, reviews: map[reviewKey]int{}, mergedBy: map[ChangeID][]identity.NodeID{},
		commentRevision: map[ChangeID]ChangeID{},
	}
	for _, c := range order {
		applied := false
		for i, a := range c.actions {
			if err := f.apply(c, a); err != nil {
				report.Skipped = append(report.Skipped, Skipped{c.id, i, a.Type(), err})
				continue
			}
			applied = true
		}
		if applied {
			f.p.Updated = max(f.p.Updated, c.timestamp)
		}
	}
	f.finish(order)
	return f.p, report, nil
}

type reviewKey struct {
	author   identity.NodeID
	revision ChangeID
}

type patchFolder struct {
	auth            Authority
	p               *Patch
	disc            *issueFolder // comments, reactions, labels, assignees
	revisions       map[ChangeID]bool
	mergedBy        map[ChangeID][]identity.NodeID // per revision, the delegates who merged it
	reviews         map[reviewKey]int              // index into p.Reviews
	commentRevision map[ChangeID]ChangeID
}

// apply applies one action of c, or says why not.
func (f *patchFolder) apply(c *Change, a Action) error {
	p := f.p
	owner := f.auth.IsDelegate(c.author) || c.author == p.Author
	switch a := a.(type) {
	case *OpenPatch:
		p.Title, p.Description, p.Author, p.Created = a.Title, a.Description, c.author, c.timestamp
		f.disc.issue.Author = c.author
		if a.Draft {
			p.State = PatchDraft
		}
		f.addRevision(c, a.Description, a.Base, a.Head)
	case *Revise:
		return f.revise(c, a, owner)
	case *Review:
		return f.review(c, a)
	case *CommentRevision:
		if !f.revisions[a.Revision] {
			return fmt.Errorf("%w: %s", ErrNoSuchRevision, a.Revision.Short())
		}
		if err := f.disc.apply(c, &Comment{Body: a.Body, ReplyTo: a.ReplyTo}); err != nil {
			return err
		}
		f.commentRevision[c.id] = a.Revision
	case *Edit:
		if !owner {
			return unauthorized(c.author, "edit the patch")
		}
		if a.Title != nil {
			p.Title = *a.Title
		}
		if a.Body != nil {
			p.Description = *a.Body
		}
	case *Close, *Reopen, *Draft, *Ready:
		return f.setState(c, a, owner)
	case *Merge:
		return f.merge(c, a)
	default: // comment, edit-comment, redact-comment, label, assign, react
		return f.disc.apply(c, a)
	}
	return nil
}

func (f *patchFolder) addRevision(c *Change, description, base, head string) {
	f.revisions[c.id] = true
	f.p.Revisions = append(f.p.Revisions, Revision{
		ID: c.id, Author: c.author, Description: description, Base: base, Head: head, Created: c.timestamp,
	})
}

// revise: the patch's author (or a delegate) adds a revision to an
// unmerged patch.
func (f *patchFolder) revise(c *Change, a *Revise, owner bool) error {
	switch {
	case !owner:
		return unauthorized(c.author, "revise another's patch")
	case f.p.State == PatchMerged:
		return ErrMerged
	}
	f.addRevision(c, a.Description, a.Base, a.Head)
	return nil
}

// review: anyone judges an existing revision; a later review of the same
// revision by the same author replaces the earlier one in its place.
func (f *patchFolder) review(c *Change, a *Review) error {
	if !f.revisions[a.Revision] {
		return fmt.Errorf("%w: %s", ErrNoSuchRevision, a.Revision.Short())
	}
	r := PatchReview{
		ID: c.id, Author: c.author, Revision: a.Revision, Verdict: a.Verdict, Summary: a.Summary,
		Comments: append([]InlineComment{}, a.Comments...), Created: c.timestamp,
	}
	k := reviewKey{c.author, a.Revision}
	if i, ok := f.reviews[k]; ok {
		f.p.Reviews[i] = r
		return nil
	}
	f.reviews[k] = len(f.p.Reviews)
	f.p.Reviews = append(f.p.Reviews, r)
	return nil
}

// setState applies close, reopen, draft and ready: the patch's author or
// a delegate, on an unmerged patch.
func (f *patchFolder) setState(c *Change, a Action, owner bool) error {
	if !owner {
		return unauthorized(c.author, string(a.Type())+" the patch")
	}
	if f.p.State == PatchMerged {
		return ErrMerged
	}
	switch a.(type) {
	case *Close:
		f.p.State = PatchClosed
	case *Reopen, *Ready:
		f.p.State = PatchOpen
	case *Draft:
		f.p.State = PatchDraft
	}
	return nil
}

// merge: a delegate merges an existing revision, once; the patch is
// merged by the first revision that the threshold of delegates merged, in
// the fold's order.
func (f *patchFolder) merge(c *Change, a *Merge) error {
	switch {
	case !f.auth.IsDelegate(c.author):
		return unauthorized(c.author, "merge")
	case !f.revisions[a.Revision]:
		return fmt.Errorf("%w: %s", ErrNoSuchRevision, a.Revision.Short())
	case f.p.State == PatchMerged || slices.Contains(f.mergedBy[a.Revision], c.author):
		return ErrMerged
	}
	m := PatchMerge{Revision: a.Revision, Commit: a.Commit, Author: c.author, Created: c.timestamp}
	f.p.Merges = append(f.p.Merges, m)
	f.mergedBy[a.Revision] = append(f.mergedBy[a.Revision], c.author)
	if len(f.mergedBy[a.Revision]) >= f.auth.Threshold() {
		f.p.State, f.p.Merge = PatchMerged, &m
	}
	return nil
}

func (f *patchFolder) finish(order []*Change) {
	f.disc.finish(order)
	p, is := f.p, f.disc.issue
	p.Labels, p.Assignees, p.Reactions, p.Heads = is.Labels, is.Assignees, is.Reactions, is.Heads
	p.Comments = make([]PatchComment, len(is.Comments))
	for i, c := range is.Comments {
		p.Comments[i] = PatchComment{IssueComment: c, Revision: f.commentRevision[c.ID]}
	}
	if p.Merges == nil {
		p.Merges = []PatchMerge{}
	}
	if p.Reviews == nil {
		p.Reviews = []PatchReview{}
	}
}

// Latest returns the last revision (every patch has one).
func (p *Patch) Latest() Revision { return p.Revisions[len(p.Revisions)-1] }
