package collab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// mkp is mk for patches.
func mkp(t testing.TB, key *identity.Key, parents []*Change, actions ...Action) *Change {
	t.Helper()
	f := Fields{Type: TypePatch, Actions: actions, Clock: 1}
	for _, p := range parents {
		f.Object = p.ObjectID()
		f.Parents = append(f.Parents, p.ID())
		f.Clock = max(f.Clock, p.Clock()+1)
	}
	f.Timestamp = vectorTimeMs + f.Clock*1000
	c, err := SignChange(key, f)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(c.raw)
	copy(f.Nonce[:], h[:])
	if c, err = SignChange(key, f); err != nil {
		t.Fatal(err)
	}
	return c
}

// commit returns a fake git commit id.
func commit(n byte) string { return strings.Repeat(string("0123456789abcdef"[n%16]), 39) + "1" }

func openPatch(t testing.TB, key *identity.Key, draft bool) *Change {
	t.Helper()
	return mkp(t, key, nil, &OpenPatch{Title: "Relay fallback", Description: "use a relay", Base: commit(0), Head: commit(1), Draft: draft})
}

func foldP(t *testing.T, changes ...*Change) (*Patch, Report) {
	t.Helper()
	p, rep, err := FoldPatch(changes[0].ID(), changes, delegates)
	if err != nil {
		t.Fatal(err)
	}
	return p, rep
}

func TestPatchRevisionsInOrder(t *testing.T) {
	root := openPatch(t, bob, false)
	r2 := mkp(t, bob, []*Change{root}, &Revise{Base: commit(0), Head: commit(2)})
	r3 := mkp(t, bob, []*Change{r2}, &Revise{Description: "rebased", Base: commit(3), Head: commit(4)})
	stranger := mkp(t, carol, []*Change{r3}, &Revise{Base: commit(3), Head: commit(5)})
	p, rep := foldP(t, root, stranger, r3, r2)
	var heads []string
	for _, r := range p.Revisions {
		heads = append(heads, r.Head)
	}
	if !reflect.DeepEqual(heads, []string{commit(1), commit(2), commit(4)}) || p.Revisions[0].ID != root.ID() ||
		p.Latest().ID != r3.ID() || p.Latest().Description != "rebased" || p.State != PatchOpen {
		t.Fatalf("revisions %+v", p.Revisions)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Change != stranger.ID() || !errors.Is(rep.Skipped[0].Err, ErrUnauthorized) {
		t.Fatalf("a stranger's revision: skipped %v", rep.Skipped)
	}
}

func TestPatchOneVerdictPerReviewerPerRevision(t *testing.T) {
	root := openPatch(t, bob, false)
	r2 := mkp(t, bob, []*Change{root}, &Revise{Base: commit(0), Head: commit(2)})
	inline := []InlineComment{{Commit: commit(2), Path: "daemon/relay.go", Start: 10, End: 12, Body: "lock here"}}
	a1 := mkp(t, carol, []*Change{r2}, &Review{Revision: root.ID(), Verdict: VerdictReject, Summary: "no"})
	a2 := mkp(t, carol, []*Change{a1}, &Review{Revision: r2.ID(), Verdict: VerdictReject, Comments: inline})
	a3 := mkp(t, carol, []*Change{a2}, &Review{Revision: r2.ID(), Verdict: VerdictAccept, Summary: "fixed"})
	b1 := mkp(t, alice, []*Change{a3}, &Review{Revision: r2.ID(), Verdict: VerdictAccept})
	bad := mkp(t, alice, []*Change{b1}, &Review{Revision: a1.ID(), Verdict: VerdictAccept})
	p, rep := foldP(t, root, r2, a1, a2, a3, b1, bad)
	type v struct {
		who identity.NodeID
		rev ChangeID
		ver Verdict
		sum string
	}
	var got []v
	for _, r := range p.Reviews {
		got = append(got, v{r.Author, r.Revision, r.Verdict, r.Summary})
	}
	want := []v{{carol.ID(), root.ID(), VerdictReject, "no"}, {carol.ID(), r2.ID(), VerdictAccept, "fixed"}, {alice.ID(), r2.ID(), VerdictAccept, ""}}
	if !reflect.DeepEqual(got, want) || len(p.Reviews[1].Comments) != 0 {
		t.Fatalf("reviews\n got %+v\nwant %+v", got, want)
	}
	if len(rep.Skipped) != 1 || !errors.Is(rep.Skipped[0].Err, ErrNoSuchRevision) {
		t.Fatalf("review of a non-revision: skipped %v", rep.Skipped)
	}
	p, _ = foldP(t, root, r2, a1, a2)
	if !reflect.DeepEqual(p.Reviews[1].Comments, inline) {
		t.Fatalf("inline comments %+v", p.Reviews[1].Comments)
	}
}

func TestPatchMergeByNonDelegateSkipped(t *testing.T) {
	root := openPatch(t, bob, false)
	m := mkp(t, bob, []*Change{root}, &Merge{Revision: root.ID(), Commit: commit(1)})
	p, rep := foldP(t, root, m)
	if p.State != PatchOpen || p.Merge != nil || len(rep.Skipped) != 1 || !errors.Is(rep.Skipped[0].Err, ErrUnauthorized) {
		t.Fatalf("merge by the author (no delegate): %s %v", p.State, rep.Skipped)
	}
}

func TestPatchDraftReadyMerged(t *testing.T) {
	root := openPatch(t, bob, true)
	set := []*Change{root}
	next := func(key *identity.Key, a ...Action) {
		set = append(set, mkp(t, key, set[len(set)-1:], a...))
	}
	if p, _ := foldP(t, set...); p.State != PatchDraft {
		t.Fatalf("opened as draft: %s", p.State)
	}
	next(carol, &Ready{}) // not carol's patch
	if p, _ := foldP(t, set...); p.State != PatchDraft {
		t.Fatalf("ready by a stranger: %s", p.State)
	}
	next(bob, &Ready{})
	if p, _ := foldP(t, set...); p.State != PatchOpen {
		t.Fatalf("ready: %s", p.State)
	}
	next(alice, &Merge{Revision: root.ID(), Commit: commit(9)})
	next(bob, &Close{Reason: ReasonOther})
	next(bob, &Revise{Base: commit(0), Head: commit(7)})
	p, rep := foldP(t, set...)
	want := &PatchMerge{Revision: root.ID(), Commit: commit(9), Author: alice.ID(), Created: set[3].Timestamp()}
	if p.State != PatchMerged || !reflect.DeepEqual(p.Merge, want) || len(p.Revisions) != 1 {
		t.Fatalf("merged: %s %+v %d revisions", p.State, p.Merge, len(p.Revisions))
	}
	if n := len(rep.Skipped); n != 3 || !errors.Is(rep.Skipped[1].Err, ErrMerged) || !errors.Is(rep.Skipped[2].Err, ErrMerged) {
		t.Fatalf("after the merge: skipped %v", rep.Skipped)
	}
}

func TestPatchConcurrentReviewAndRevision(t *testing.T) {
	root := openPatch(t, bob, false)
	rev := mkp(t, bob, []*Change{root}, &Revise{Base: commit(0), Head: commit(2)})
	review := mkp(t, alice, []*Change{root}, &Review{Revision: root.ID(), Verdict: VerdictAccept})
	comment := mkp(t, carol, []*Change{root}, &CommentRevision{Revision: root.ID(), Body: "nice"})
	merge := mkp(t, alice, []*Change{rev, review, comment}, &Merge{Revision: rev.ID(), Commit: commit(2)})
	set := []*Change{root, rev, review, comment, merge}
	want, _ := foldP(t, set...)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
		if got, _, _ := FoldPatch(root.ID(), set, delegates); !reflect.DeepEqual(got, want) {
			t.Fatalf("order matters:\n got %+v\nwant %+v", got, want)
		}
	}
	if len(want.Revisions) != 2 || len(want.Reviews) != 1 || want.Reviews[0].Revision != root.ID() ||
		want.State != PatchMerged || want.Merge.Revision != rev.ID() || len(want.Comments) != 1 ||
		want.Comments[0].Revision != root.ID() || !reflect.DeepEqual(want.Heads, []ChangeID{merge.ID()}) {
		t.Fatalf("state %+v", want)
	}
}

func TestPatchAuthorEditsOnly(t *testing.T) {
	root := openPatch(t, bob, false)
	e := mkp(t, carol, []*Change{root}, &Edit{Title: ptr("mine now")}, &Close{Reason: ReasonOther})
	e2 := mkp(t, bob, []*Change{e}, &Edit{Body: ptr("new description")})
	p, rep := foldP(t, root, e, e2)
	if p.Title != "Relay fallback" || p.Description != "new description" || p.State != PatchOpen || len(rep.Skipped) != 2 {
		t.Fatalf("edit: %+v skipped %v", p, rep.Skipped)
	}
}

func TestPatchActionsRefused(t *testing.T) {
	root := openPatch(t, bob, false)
	for name, a := range map[string]Action{
		"bad verdict":   &Review{Revision: root.ID(), Verdict: "maybe"},
		"bad commit":    &Revise{Base: "abc", Head: commit(1)},
		"zero commit":   &Merge{Revision: root.ID(), Commit: strings.Repeat("0", 40)},
		"mixed hashes":  &Revise{Base: commit(1), Head: commit(1) + strings.Repeat("a", 24)},
		"bad lines":     &Review{Revision: root.ID(), Verdict: VerdictAccept, Comments: []InlineComment{{Commit: commit(1), Path: "a", Start: 3, End: 2, Body: "x"}}},
		"absolute path": &Review{Revision: root.ID(), Verdict: VerdictAccept, Comments: []InlineComment{{Commit: commit(1), Path: "/a", Start: 1, End: 1, Body: "x"}}},
		"empty inline":  &Review{Revision: root.ID(), Verdict: VerdictAccept, Comments: []InlineComment{{Commit: commit(1), Path: "a", Start: 1, End: 1}}},
		"issue open":    &Open{Title: "t"},
		"no revision":   &CommentRevision{Body: "x"},
		"merge no rev":  &Merge{Commit: commit(1)},
	} {
		f := Fields{Type: TypePatch, Object: root.ID(), Parents: []ChangeID{root.ID()}, Actions: []Action{a}, Clock: 2}
		if _, err := SignChange(bob, f); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	if _, err := SignChange(bob, Fields{Type: TypeIssue, Object: root.ID(), Parents: []ChangeID{root.ID()}, Actions: []Action{&Draft{}}, Clock: 2}); !errors.Is(err, ErrUnknownAction) {
		t.Errorf("draft in an issue: %v", err)
	}
}

// everyPatchAction is one change of each patch action, for round trips
// and fuzz seeds.
func everyPatchAction(t testing.TB) []*Change {
	root := openPatch(t, bob, true)
	inline := []InlineComment{{Commit: commit(1), Path: "a/b.go", Start: 1, End: 4, Body: "why?"}}
	return []*Change{root,
		mkp(t, bob, []*Change{root}, &Revise{Description: "v2", Base: commit(0), Head: commit(2)}, &Ready{}, &Draft{}),
		mkp(t, carol, []*Change{root}, &Review{Revision: root.ID(), Verdict: VerdictReject, Summary: "s", Comments: inline}),
		mkp(t, carol, []*Change{root}, &CommentRevision{Revision: root.ID(), Body: "c", ReplyTo: root.ID()}),
		mkp(t, alice, []*Change{root}, &Merge{Revision: root.ID(), Commit: commit(3)}, &Label{Add: []string{"x"}}),
	}
}

func TestPatchActionsRoundTrip(t *testing.T) {
	for _, c := range everyPatchAction(t) {
		got, err := ParseChange(c.Marshal())
		if err != nil || got.ID() != c.ID() {
			t.Fatalf("round trip: %v", err)
		}
		for i, a := range got.Actions() {
			if want := c.Actions()[i]; a.Type() != want.Type() || !reflect.DeepEqual(a.encode(), want.encode()) {
				t.Fatalf("round trip of %+v: %+v", want, a)
			}
		}
	}
}

// patchActionJSON describes a patch action for people reading the
// vectors.
func patchActionJSON(m map[string]any, a Action) {
	switch a := a.(type) {
	case *OpenPatch:
		m["title"], m["description"], m["base"], m["head"], m["draft"] = a.Title, a.Description, a.Base, a.Head, a.Draft
	case *Revise:
		m["description"], m["base"], m["head"] = a.Description, a.Base, a.Head
	case *Review:
		m["revision"], m["verdict"], m["summary"], m["comments"] = a.Revision, a.Verdict, a.Summary, orEmpty(a.Comments)
	case *CommentRevision:
		m["revision"], m["body"], m["reply_to"] = a.Revision, a.Body, hex.EncodeToString(optionalID(a.ReplyTo))
	case *Merge:
		m["revision"], m["commit"] = a.Revision, a.Commit
	}
}

// vectorPatchHistory is a small patch: opened as a draft, made ready, a
// second revision concurrent with a review of the first, a rejected and
// then accepted review, an inline comment, a non-delegate's merge
// (skipped) and a delegate's merge. Every input is fixed.
func vectorPatchHistory(t testing.TB) []*Change {
	n := uint64(100)
	sign := func(key *identity.Key, clock uint64, parents []*Change, actions ...Action) *Change {
		n++
		f := Fields{Type: TypePatch, Actions: actions, Clock: clock, Timestamp: vectorTimeMs + n*60_000, Nonce: nonce(n)}
		for _, p := range parents {
			f.Object = p.ObjectID()
			f.Parents = append(f.Parents, p.ID())
		}
		c, err := SignChange(key, f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base, h1, h2 := strings.Repeat("b", 40), strings.Repeat("1", 40), strings.Repeat("2", 40)
	root := sign(bob, 1, nil, &OpenPatch{Title: "Relay fallback", Description: "Dial through a relay.", Base: base, Head: h1, Draft: true})
	ready := sign(bob, 2, []*Change{root}, &Ready{})
	review := sign(carol, 3, []*Change{ready}, &Review{Revision: root.ID(), Verdict: VerdictReject, Summary: "Racy.",
		Comments: []InlineComment{{Commit: h1, Path: "daemon/relay.go", Start: 40, End: 44, Body: "Lock this."}}})
	rev := sign(bob, 3, []*Change{ready}, &Revise{Description: "Locked.", Base: base, Head: h2})
	accept := sign(carol, 4, []*Change{review, rev}, &Review{Revision: rev.ID(), Verdict: VerdictAccept, Summary: "Good."})
	comment := sign(carol, 5, []*Change{accept}, &CommentRevision{Revision: rev.ID(), Body: "Thanks."})
	early := sign(bob, 5, []*Change{accept}, &Merge{Revision: rev.ID(), Commit: h2})
	merge := sign(alice, 6, []*Change{comment, early}, &Merge{Revision: rev.ID(), Commit: h2})
	return []*Change{root, ready, review, rev, accept, comment, early, merge}
}

// TestPatchThresholdTwo: with a threshold of two delegates, one merge is
// recorded but does not merge; a second delegate's merge of the same
// revision does; the same delegate twice counts once; a merge of another
// revision counts for that revision only.
func TestPatchThresholdTwo(t *testing.T) {
	quorum := Quorum{Delegates: Delegates{alice.ID(), carol.ID()}, Min: 2}
	fold := func(changes ...*Change) *Patch {
		t.Helper()
		p, _, err := FoldPatch(changes[0].ID(), changes, quorum)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := openPatch(t, bob, false)
	r2 := mkp(t, bob, []*Change{root}, &Revise{Base: commit(0), Head: commit(2)})
	byAlice := mkp(t, alice, []*Change{r2}, &Merge{Revision: root.ID(), Commit: commit(8)})
	again := mkp(t, alice, []*Change{byAlice}, &Merge{Revision: root.ID(), Commit: commit(8)})
	if p := fold(root, r2, byAlice, again); p.State != PatchOpen || p.Merge != nil || len(p.Merges) != 1 {
		t.Fatalf("one delegate of two: state %s, merges %d", p.State, len(p.Merges))
	}
	otherRev := mkp(t, carol, []*Change{again}, &Merge{Revision: r2.ID(), Commit: commit(9)})
	if p := fold(root, r2, byAlice, again, otherRev); p.State != PatchOpen || len(p.Merges) != 2 {
		t.Fatalf("two delegates, two revisions: state %s", p.State)
	}
	byCarol := mkp(t, carol, []*Change{otherRev}, &Merge{Revision: root.ID(), Commit: commit(9)})
	p := fold(root, r2, byAlice, again, otherRev, byCarol)
	if p.State != PatchMerged || p.Merge == nil || p.Merge.Revision != root.ID() || p.Merge.Author != carol.ID() || len(p.Merges) != 3 {
		t.Fatalf("two delegates on one revision: state %s, merge %+v", p.State, p.Merge)
	}
}
