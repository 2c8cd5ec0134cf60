package collab

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// randomPatchAction picks a patch action naming known revisions and
// comments (and now and then an unknown one).
func randomPatchAction(rng *rand.Rand, revisions, comments []ChangeID) Action {
	pick := func(ids []ChangeID) ChangeID {
		if len(ids) == 0 || rng.IntN(10) == 0 {
			return ChangeID{0xee, byte(rng.IntN(256))}
		}
		return ids[rng.IntN(len(ids))]
	}
	c := commit(byte(rng.IntN(16)))
	switch rng.IntN(10) {
	case 0, 1:
		return &Revise{Base: commit(0), Head: c}
	case 2, 3:
		v := []Verdict{VerdictAccept, VerdictReject}[rng.IntN(2)]
		return &Review{Revision: pick(revisions), Verdict: v, Summary: "s",
			Comments: []InlineComment{{Commit: c, Path: "f.go", Start: 1, End: 2, Body: "b"}}}
	case 4:
		return &CommentRevision{Revision: pick(revisions), Body: "c"}
	case 5:
		return &Comment{Body: "c", ReplyTo: pick(append(comments, ChangeID{}))}
	case 6:
		return []Action{&Draft{}, &Ready{}, &Close{Reason: ReasonOther}, &Reopen{}}[rng.IntN(4)]
	case 7:
		return &Merge{Revision: pick(revisions), Commit: c}
	case 8:
		return &Edit{Title: ptr(fmt.Sprint("t", rng.IntN(5)))}
	}
	return &React{Comment: pick(comments), Emoji: "👍"}
}

// randomPatchHistory builds a patch of n changes by several authors on
// random earlier changes.
func randomPatchHistory(t testing.TB, rng *rand.Rand, n int) []*Change {
	keys := []*identity.Key{alice, bob, carol, testKey(1)}
	set := []*Change{openPatch(t, bob, rng.IntN(2) == 0)}
	revisions, comments := []ChangeID{set[0].ID()}, []ChangeID{}
	for len(set) < n {
		var parents []*Change
		for range 1 + rng.IntN(2) {
			parents = append(parents, set[len(set)-1-rng.IntN(min(len(set), 5))])
		}
		a := randomPatchAction(rng, revisions, comments)
		c := mkp(t, keys[rng.IntN(len(keys))], parents, a)
		set = append(set, c)
		switch a.(type) {
		case *Revise:
			revisions = append(revisions, c.ID())
		case *Comment, *CommentRevision:
			comments = append(comments, c.ID())
		}
	}
	return set
}

func foldPatchText(t testing.TB, object ObjectID, set []*Change) string {
	p, rep, err := FoldPatch(object, set, delegates)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + fmt.Sprint(rep)
}

// FuzzFoldPatch: a random patch history folds without panic to the same
// state in any order; every reviewer has at most one review per revision.
func FuzzFoldPatch(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(20))
	f.Add(uint64(9), uint64(4), uint8(50))
	f.Fuzz(func(t *testing.T, s1, s2 uint64, n uint8) {
		rng := rand.New(rand.NewPCG(s1, s2))
		set := randomPatchHistory(t, rng, 1+int(n%60))
		object := set[0].ID()
		want := foldPatchText(t, object, set)
		rng.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
		if got := foldPatchText(t, object, set); got != want {
			t.Fatalf("shuffled set folds differently:\n got %s\nwant %s", got, want)
		}
		p, _, _ := FoldPatch(object, set, delegates)
		seen := map[reviewKey]bool{}
		for _, r := range p.Reviews {
			if k := (reviewKey{r.Author, r.Revision}); seen[k] {
				t.Fatalf("two reviews by %s of %s", r.Author, r.Revision.Short())
			} else {
				seen[k] = true
			}
		}
		if (p.State == PatchMerged) != (p.Merge != nil) || len(p.Revisions) == 0 {
			t.Fatalf("state %s, merge %v, %d revisions", p.State, p.Merge, len(p.Revisions))
		}
	})
}
