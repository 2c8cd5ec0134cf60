package collab

import (
	"errors"
	"reflect"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

var delegates = Delegates{alice.ID()}

func fold(t *testing.T, changes ...*Change) (*Issue, Report) {
	t.Helper()
	is, rep, err := FoldIssue(changes[0].ID(), changes, delegates)
	if err != nil {
		t.Fatal(err)
	}
	return is, rep
}

// TestFoldEveryAction folds a linear history one change at a time and
// checks what each action did.
func TestFoldEveryAction(t *testing.T) {
	root := open(t, bob, "crash", "bug") // bob is no delegate: the label is ignored
	set := []*Change{root}
	next := func(key *identity.Key, actions ...Action) *Change {
		c := mk(t, key, set[len(set)-1:], actions...)
		set = append(set, c)
		return c
	}
	is, rep := fold(t, set...)
	if is.Title != "crash" || is.Body != "body of crash" || is.Author != bob.ID() || is.Status != StatusOpen ||
		len(is.Labels) != 0 || is.Created != root.Timestamp() || is.ID != root.ID() {
		t.Fatalf("opened: %+v", is)
	}
	if len(rep.Skipped) != 1 || !errors.Is(rep.Skipped[0].Err, ErrUnauthorized) {
		t.Fatalf("open's labels by a non-delegate: skipped %v", rep.Skipped)
	}
	c1 := next(carol, &Comment{Body: "same here"})
	c2 := next(bob, &Comment{Body: "which version?", ReplyTo: c1.ID()})
	next(bob, &Edit{Title: ptr("crash on start-up")})
	next(bob, &Edit{Body: ptr("new body")})
	next(carol, &EditComment{Comment: c1.ID(), Body: "same here, v1.2"})
	next(bob, &RedactComment{Comment: c2.ID()})
	next(alice, &Label{Add: []string{"p1", "crash", "later"}})
	next(alice, &Label{Remove: []string{"later"}})
	next(alice, &Assign{Add: []identity.NodeID{carol.ID(), alice.ID()}})
	next(alice, &Assign{Remove: []identity.NodeID{alice.ID()}})
	is, rep = fold(t, set...)
	want := []IssueComment{
		{ID: c1.ID(), Author: carol.ID(), Body: "same here, v1.2", Created: c1.Timestamp(), Edited: true, Reactions: Reactions{}},
		{ID: c2.ID(), Author: bob.ID(), ReplyTo: c1.ID(), Created: c2.Timestamp(), Redacted: true, Reactions: Reactions{}},
	}
	switch {
	case is.Title != "crash on start-up" || is.Body != "new body":
		t.Fatalf("edit: %q %q", is.Title, is.Body)
	case !reflect.DeepEqual(is.Comments, want):
		t.Fatalf("comments:\n got %+v\nwant %+v", is.Comments, want)
	case !reflect.DeepEqual(is.Labels, []string{"crash", "p1"}):
		t.Fatalf("labels %q", is.Labels)
	case !reflect.DeepEqual(is.Assignees, []identity.NodeID{carol.ID()}):
		t.Fatalf("assignees %v", is.Assignees)
	case len(rep.Skipped) != 1:
		t.Fatalf("skipped %v", rep.Skipped)
	}
	next(bob, &Close{Reason: ReasonSolved})
	if is, _ = fold(t, set...); is.Status != StatusClosed || is.Reason != ReasonSolved {
		t.Fatalf("close: %s %s", is.Status, is.Reason)
	}
	next(bob, &Reopen{})
	if is, _ = fold(t, set...); is.Status != StatusOpen || is.Reason != "" {
		t.Fatalf("reopen: %s %s", is.Status, is.Reason)
	}
	next(carol, &React{Emoji: "👍"}, &React{Comment: c1.ID(), Emoji: "🎉"})
	next(bob, &React{Emoji: "👍"}, &React{Comment: c1.ID(), Emoji: "🎉"})
	last := next(carol, &React{Comment: c1.ID(), Emoji: "🎉", Remove: true})
	is, _ = fold(t, set...)
	if !reflect.DeepEqual(is.Reactions, Reactions{"👍": sortedKeys(map[identity.NodeID]bool{bob.ID(): true, carol.ID(): true})}) ||
		!reflect.DeepEqual(is.Comments[0].Reactions, Reactions{"🎉": {bob.ID()}}) {
		t.Fatalf("reactions: issue %v, comment %v", is.Reactions, is.Comments[0].Reactions)
	}
	if !reflect.DeepEqual(is.Heads, []ChangeID{last.ID()}) || is.Updated != last.Timestamp() {
		t.Fatalf("heads %v updated %d", is.Heads, is.Updated)
	}
}

// skippedFold folds root plus one change by who and reports whether the
// change's first action was skipped as unauthorized.
func skippedFold(t *testing.T, set []*Change) (*Issue, bool) {
	t.Helper()
	is, rep := fold(t, set...)
	last := set[len(set)-1].ID()
	for _, s := range rep.Skipped {
		if s.Change == last {
			return is, errors.Is(s.Err, ErrUnauthorized)
		}
	}
	return is, false
}

func TestFoldAuthorization(t *testing.T) {
	root := open(t, bob, "t")
	cm := mk(t, carol, []*Change{root}, &Comment{Body: "carol's words"})
	base := []*Change{root, cm}
	with := func(key *identity.Key, a Action) []*Change { return append(base[:2:2], mk(t, key, []*Change{cm}, a)) }

	for _, tc := range []struct {
		name    string
		set     []*Change
		allowed bool
		check   func(*Issue) bool // true if the action took effect
	}{
		{"non-delegate labels", with(carol, &Label{Add: []string{"x"}}), false, func(is *Issue) bool { return len(is.Labels) > 0 }},
		{"issue author labels", with(bob, &Label{Add: []string{"x"}}), false, func(is *Issue) bool { return len(is.Labels) > 0 }},
		{"delegate labels", with(alice, &Label{Add: []string{"x"}}), true, func(is *Issue) bool { return len(is.Labels) > 0 }},
		{"non-delegate assigns", with(bob, &Assign{Add: []identity.NodeID{bob.ID()}}), false, func(is *Issue) bool { return len(is.Assignees) > 0 }},
		{"delegate assigns", with(alice, &Assign{Add: []identity.NodeID{bob.ID()}}), true, func(is *Issue) bool { return len(is.Assignees) > 0 }},
		{"stranger closes", with(carol, &Close{Reason: ReasonOther}), false, func(is *Issue) bool { return is.Status == StatusClosed }},
		{"author closes", with(bob, &Close{Reason: ReasonOther}), true, func(is *Issue) bool { return is.Status == StatusClosed }},
		{"delegate closes", with(alice, &Close{Reason: ReasonOther}), true, func(is *Issue) bool { return is.Status == StatusClosed }},
		{"stranger edits issue", with(carol, &Edit{Title: ptr("mine")}), false, func(is *Issue) bool { return is.Title == "mine" }},
		{"delegate edits issue", with(alice, &Edit{Title: ptr("mine")}), true, func(is *Issue) bool { return is.Title == "mine" }},
		{"another edits comment", with(bob, &EditComment{Comment: cm.ID(), Body: "forged"}), false, func(is *Issue) bool { return is.Comments[0].Body == "forged" }},
		{"delegate edits comment", with(alice, &EditComment{Comment: cm.ID(), Body: "forged"}), false, func(is *Issue) bool { return is.Comments[0].Body == "forged" }},
		{"comment author edits", with(carol, &EditComment{Comment: cm.ID(), Body: "fixed"}), true, func(is *Issue) bool { return is.Comments[0].Body == "fixed" }},
		{"another redacts comment", with(bob, &RedactComment{Comment: cm.ID()}), false, func(is *Issue) bool { return is.Comments[0].Redacted }},
		{"delegate redacts another's comment", with(alice, &RedactComment{Comment: cm.ID()}), false, func(is *Issue) bool { return is.Comments[0].Redacted }},
		{"stranger comments", with(testKey(1), &Comment{Body: "hi"}), true, func(is *Issue) bool { return len(is.Comments) == 2 }},
		{"stranger reacts", with(testKey(1), &React{Comment: cm.ID(), Emoji: "+1"}), true, func(is *Issue) bool { return len(is.Comments[0].Reactions) == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is, unauthorized := skippedFold(t, tc.set)
			if effect := tc.check(is); effect != tc.allowed || unauthorized == tc.allowed {
				t.Fatalf("took effect %v, recorded unauthorized %v; want allowed %v", effect, unauthorized, tc.allowed)
			}
		})
	}
	// A delegate's open keeps its labels.
	if is, _ := fold(t, open(t, alice, "t", "bug")); !reflect.DeepEqual(is.Labels, []string{"bug"}) {
		t.Fatalf("delegate's open labels %q", is.Labels)
	}
}

func TestFoldSkipsDanglingReferences(t *testing.T) {
	root := open(t, bob, "t")
	unknown := ChangeID{1}
	set := []*Change{root}
	for _, a := range []Action{
		&Comment{Body: "x", ReplyTo: unknown},
		&EditComment{Comment: unknown, Body: "x"},
		&React{Comment: unknown, Emoji: "x"},
		&RedactComment{Comment: root.ID()}, // the root holds no comment
	} {
		set = append(set, mk(t, bob, set[len(set)-1:], a))
	}
	is, rep := fold(t, set...)
	if len(is.Comments) != 0 || len(rep.Skipped) != 4 {
		t.Fatalf("comments %v skipped %v", is.Comments, rep.Skipped)
	}
	for _, s := range rep.Skipped {
		if !errors.Is(s.Err, ErrNoSuchComment) {
			t.Errorf("skipped %v", s.Err)
		}
	}
	cm := mk(t, carol, set[len(set)-1:], &Comment{Body: "x"})
	red := mk(t, carol, []*Change{cm}, &RedactComment{Comment: cm.ID()})
	ed := mk(t, carol, []*Change{red}, &EditComment{Comment: cm.ID(), Body: "back"})
	is, rep = fold(t, append(set, cm, red, ed)...)
	if is.Comments[0].Body != "" || !errors.Is(rep.Skipped[len(rep.Skipped)-1].Err, ErrRedacted) {
		t.Fatalf("edit after redaction: %+v %v", is.Comments[0], rep.Skipped)
	}
}

// withClock signs a comment by key on parents with an explicit clock.
func withClock(t *testing.T, key *identity.Key, clock uint64, parents ...*Change) *Change {
	t.Helper()
	f := Fields{Type: TypeIssue, Object: parents[0].ObjectID(), Clock: clock, Timestamp: vectorTimeMs, Nonce: nonce(clock),
		Actions: []Action{&Comment{Body: "clock test"}}}
	for _, p := range parents {
		f.Parents = append(f.Parents, p.ID())
	}
	c, err := SignChange(key, f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rejectedFor(rep Report, id ChangeID) error {
	for _, r := range rep.Rejected {
		if r.ID == id {
			return r.Err
		}
	}
	return nil
}

func TestFoldRejects(t *testing.T) {
	root := open(t, bob, "t")
	a := mk(t, carol, []*Change{root}, &Comment{Body: "a"}) // clock 2
	same := withClock(t, carol, 2, a)
	lower := withClock(t, carol, 1, a)
	jump := withClock(t, carol, 2+MaxClockJump+1, a)
	edge := withClock(t, carol, 2+MaxClockJump, a) // the largest allowed jump
	child := mk(t, bob, []*Change{same}, &Comment{Body: "child of a rejected change"})
	other := open(t, bob, "another issue")
	otherChild := mk(t, bob, []*Change{other}, &Comment{Body: "elsewhere"})
	orphan := mk(t, bob, []*Change{mk(t, bob, []*Change{a}, &Reopen{})}, &Comment{Body: "parent missing"})

	is, rep, err := FoldIssue(root.ID(), []*Change{root, a, same, lower, jump, edge, child, other, otherChild, orphan}, delegates)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    *Change
		want error
	}{
		{same, ErrClockNotIncreasing}, {lower, ErrClockNotIncreasing}, {jump, ErrClockJump},
		{child, ErrRejectedParent}, {other, ErrWrongObject}, {otherChild, ErrWrongObject}, {orphan, ErrMissingParent},
	} {
		if err := rejectedFor(rep, tc.c.ID()); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.c.ID().Short(), err, tc.want)
		}
	}
	if len(rep.Rejected) != 7 || len(is.Comments) != 2 || is.Comments[1].ID != edge.ID() {
		t.Fatalf("rejected %d, comments %+v", len(rep.Rejected), is.Comments)
	}
	if !reflect.DeepEqual(is.Heads, []ChangeID{edge.ID()}) {
		t.Fatalf("heads %v", is.Heads)
	}
	if _, _, err := FoldIssue(root.ID(), []*Change{a}, delegates); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("fold without root: %v", err)
	}
	if _, _, err := FoldIssue(root.ID(), nil, nil); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("fold of nothing: %v", err)
	}
}
