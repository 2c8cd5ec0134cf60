package collab

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/megaengine/megaengine/protocol/identity"
)

// ObjectType is the kind of collaborative object a change belongs to.
type ObjectType string

// Object types. ONLY APPEND TO THIS LIST; spec/collab.md holds the same
// registry.
const (
	TypeIssue ObjectType = "issue"
	// TypePatch is a patch (version 2; spec/collab.md §8).
	TypePatch ObjectType = "patch"
)

func (t ObjectType) check() error {
	switch t {
	case TypeIssue, TypePatch:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownType, truncate(string(t)))
}

// ActionType names an action on the wire (action key 1).
type ActionType string

// Issue action types. ONLY APPEND TO THIS LIST; spec/collab.md §4 holds the
// same registry.
const (
	ActionOpen          ActionType = "open"
	ActionComment       ActionType = "comment"
	ActionEdit          ActionType = "edit"
	ActionEditComment   ActionType = "edit-comment"
	ActionRedactComment ActionType = "redact-comment"
	ActionLabel         ActionType = "label"
	ActionAssign        ActionType = "assign"
	ActionClose         ActionType = "close"
	ActionReopen        ActionType = "reopen"
	ActionReact         ActionType = "react"
)

// Action is one step of a change: *Open, *Comment, *Edit, *EditComment,
// *RedactComment, *Label, *Assign, *Close, *Reopen or *React. The interface
// is sealed because each action needs a canonical encoding that
// ParseChange can read back.
type Action interface {
	// Type is the action's name on the wire.
	Type() ActionType
	// validate checks the rules and limits of spec/collab.md §4.
	validate() error
	// normalize returns a copy with its lists sorted and deduplicated.
	normalize() Action
	// encode returns the value whose CBOR encoding is the action.
	encode() any
}

// CloseReason says why an issue was closed.
type CloseReason string

// Close reasons.
const (
	ReasonSolved CloseReason = "solved"
	ReasonOther  CloseReason = "other"
)

// Open creates the issue; it is the only action of a root change.
type Open struct {
	Title  string
	Body   string
	Labels []string // applied only if the author is a delegate
}

// Comment adds a comment. Its id is the id of the change that holds it (a
// change holds at most one Comment).
type Comment struct {
	Body    string
	ReplyTo ChangeID // zero: a top-level comment
}

// Edit changes the issue's title, body or both (nil: unchanged).
type Edit struct {
	Title *string
	Body  *string
}

// EditComment replaces the body of a comment.
type EditComment struct {
	Comment ChangeID
	Body    string
}

// RedactComment removes the body of a comment, leaving a marker.
type RedactComment struct {
	Comment ChangeID
}

// Label adds and removes labels.
type Label struct {
	Add    []string
	Remove []string
}

// Assign adds and removes assignees.
type Assign struct {
	Add    []identity.NodeID
	Remove []identity.NodeID
}

// Close closes the issue.
type Close struct {
	Reason CloseReason
}

// Reopen reopens a closed issue.
type Reopen struct{}

// React adds (or, with Remove, withdraws) the author's reaction to the
// issue (Comment zero) or to a comment.
type React struct {
	Comment ChangeID
	Emoji   string
	Remove  bool
}

func (*Open) Type() ActionType          { return ActionOpen }
func (*Comment) Type() ActionType       { return ActionComment }
func (*Edit) Type() ActionType          { return ActionEdit }
func (*EditComment) Type() ActionType   { return ActionEditComment }
func (*RedactComment) Type() ActionType { return ActionRedactComment }
func (*Label) Type() ActionType         { return ActionLabel }
func (*Assign) Type() ActionType        { return ActionAssign }
func (*Close) Type() ActionType         { return ActionClose }
func (*Reopen) Type() ActionType        { return ActionReopen }
func (*React) Type() ActionType         { return ActionReact }

func (a *Open) validate() error {
	if err := checkTitle(a.Title); err != nil {
		return err
	}
	if err := checkBody("body", a.Body, false); err != nil {
		return err
	}
	return checkLabels("labels", a.Labels)
}

func (a *Comment) validate() error { return checkBody("comment", a.Body, true) }

func (a *Edit) validate() error {
	if a.Title == nil && a.Body == nil {
		return invalid("edit changes neither title nor body")
	}
	if a.Title != nil {
		if err := checkTitle(*a.Title); err != nil {
			return err
		}
	}
	if a.Body != nil {
		return checkBody("body", *a.Body, false)
	}
	return nil
}

func (a *EditComment) validate() error {
	if a.Comment.IsZero() {
		return invalid("edit-comment names no comment")
	}
	return checkBody("comment", a.Body, true)
}

func (a *RedactComment) validate() error {
	if a.Comment.IsZero() {
		return invalid("redact-comment names no comment")
	}
	return nil
}

func (a *Label) validate() error {
	if len(a.Add) == 0 && len(a.Remove) == 0 {
		return invalid("label adds and removes nothing")
	}
	if err := checkLabels("add", a.Add); err != nil {
		return err
	}
	if err := checkLabels("remove", a.Remove); err != nil {
		return err
	}
	for _, l := range a.Add {
		if _, found := slices.BinarySearch(a.Remove, l); found {
			return invalid("label %q both added and removed", l)
		}
	}
	return nil
}

func (a *Assign) validate() error {
	if len(a.Add) == 0 && len(a.Remove) == 0 {
		return invalid("assign adds and removes nobody")
	}
	if err := checkKeys("add", a.Add); err != nil {
		return err
	}
	if err := checkKeys("remove", a.Remove); err != nil {
		return err
	}
	for _, k := range a.Add {
		if _, found := slices.BinarySearchFunc(a.Remove, k, compareKeys); found {
			return invalid("assignee %s both added and removed", k)
		}
	}
	return nil
}

func (a *Close) validate() error {
	if a.Reason != ReasonSolved && a.Reason != ReasonOther {
		return invalid("close reason %q (want %q or %q)", truncate(string(a.Reason)), ReasonSolved, ReasonOther)
	}
	return nil
}

func (*Reopen) validate() error { return nil }

func (a *React) validate() error {
	if a.Emoji == "" || len(a.Emoji) > MaxEmojiLen || !utf8.ValidString(a.Emoji) ||
		strings.IndexFunc(a.Emoji, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return invalid("reaction must be 1-%d bytes of UTF-8 without spaces or control characters", MaxEmojiLen)
	}
	return nil
}

func (a *Open) normalize() Action {
	c := *a
	c.Labels = sortedUnique(a.Labels)
	return &c
}
func (a *Comment) normalize() Action { c := *a; return &c }
func (a *Edit) normalize() Action {
	c := Edit{}
	if a.Title != nil {
		t := *a.Title
		c.Title = &t
	}
	if a.Body != nil {
		b := *a.Body
		c.Body = &b
	}
	return &c
}
func (a *EditComment) normalize() Action   { c := *a; return &c }
func (a *RedactComment) normalize() Action { c := *a; return &c }
func (a *Label) normalize() Action {
	return &Label{Add: sortedUnique(a.Add), Remove: sortedUnique(a.Remove)}
}
func (a *Assign) normalize() Action {
	return &Assign{Add: sortedUniqueKeys(a.Add), Remove: sortedUniqueKeys(a.Remove)}
}
func (a *Close) normalize() Action { c := *a; return &c }
func (*Reopen) normalize() Action  { return &Reopen{} }
func (a *React) normalize() Action { c := *a; return &c }

// checkTitle: 1 to MaxTitleLen bytes of UTF-8 without control characters.
func checkTitle(s string) error {
	if s == "" || !validText(s, MaxTitleLen, false) {
		return invalid("title must be 1-%d bytes of UTF-8 without control characters", MaxTitleLen)
	}
	return nil
}

// checkBody: at most MaxBodyLen bytes of UTF-8 whose only control
// characters are newline and tab; non-empty if required.
func checkBody(what, s string, required bool) error {
	if len(s) > MaxBodyLen {
		return tooLarge("%s of %d bytes, max %d", what, len(s), MaxBodyLen)
	}
	if (required && s == "") || !validText(s, MaxBodyLen, true) {
		return invalid("%s must be %s UTF-8 without control characters other than newline and tab", what, map[bool]string{true: "non-empty", false: "valid"}[required])
	}
	return nil
}

// checkLabels: at most MaxLabels labels, strictly ascending (sorted, no
// duplicates), each 1 to MaxLabelLen bytes of UTF-8 without control
// characters and without leading or trailing white space.
func checkLabels(what string, labels []string) error {
	if len(labels) > MaxLabels {
		return tooLarge("%d labels in %s, max %d", len(labels), what, MaxLabels)
	}
	for i, l := range labels {
		if l == "" || !validText(l, MaxLabelLen, false) || strings.TrimSpace(l) != l {
			return invalid("label %q: must be 1-%d bytes of UTF-8 without control characters or surrounding spaces", truncate(l), MaxLabelLen)
		}
		if i > 0 && labels[i-1] >= l {
			return invalid("%s labels not strictly ascending at %q", what, truncate(l))
		}
	}
	return nil
}

// checkKeys: at most MaxAssignees keys, strictly ascending bytewise.
func checkKeys(what string, keys []identity.NodeID) error {
	if len(keys) > MaxAssignees {
		return tooLarge("%d assignees in %s, max %d", len(keys), what, MaxAssignees)
	}
	for i, k := range keys {
		if k.IsZero() {
			return invalid("zero assignee in %s", what)
		}
		if i > 0 && compareKeys(keys[i-1], k) >= 0 {
			return invalid("%s assignees not strictly ascending at %s", what, k)
		}
	}
	return nil
}

func compareKeys(a, b identity.NodeID) int { return bytes.Compare(a[:], b[:]) }

// validText reports whether s is at most max bytes of UTF-8 without control
// characters (Unicode Cc), newline and tab allowed if multiline.
func validText(s string, max int, multiline bool) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return false
		}
	}
	return true
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedUniqueKeys(s []identity.NodeID) []identity.NodeID {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.SortFunc(out, compareKeys)
	return slices.Compact(out)
}
