package collab

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// randomHistory builds an issue of n changes by several authors on a DAG
// with branches and merges: each change has one to three parents picked
// among the changes so far, and a random action, some unauthorized, some
// naming comments that come later in the fold's order. A few changes
// break the clock rules, and some build on those.
func randomHistory(t testing.TB, rng *rand.Rand, n int) []*Change {
	keys := []*identity.Key{alice, bob, carol, testKey(1), testKey(2)}
	set := []*Change{open(t, bob, "random", "bug")}
	pool := set[:1:1] // changes valid to build on
	var comments []ChangeID
	var broken *Change // the latest change that breaks a clock rule
	for len(set) < n {
		var parents []*Change
		for range 1 + rng.IntN(3) {
			parents = append(parents, pool[len(pool)-1-rng.IntN(min(len(pool), 6))])
		}
		if broken != nil && rng.IntN(12) == 0 {
			parents = append(parents, broken) // a descendant of a rejected change
		}
		key := keys[rng.IntN(len(keys))]
		a := randomAction(rng, comments)
		f := Fields{Type: TypeIssue, Object: set[0].ID(), Actions: []Action{a}, Nonce: nonce(rng.Uint64()),
			Timestamp: vectorTimeMs + uint64(rng.IntN(1_000_000))}
		for _, p := range parents {
			f.Parents = append(f.Parents, p.ID())
			f.Clock = max(f.Clock, p.Clock()+1)
		}
		bad := parents[len(parents)-1] == broken
		switch rng.IntN(20) {
		case 0:
			f.Clock-- // not greater than every parent
			bad = true
		case 1:
			f.Clock += MaxClockJump // one over the largest allowed jump
			bad = true
		default:
			f.Clock += uint64(rng.IntN(3))
		}
		c, err := SignChange(key, f)
		if err != nil {
			t.Fatal(err)
		}
		set = append(set, c)
		if bad {
			broken = c
		} else {
			pool = append(pool, c)
		}
		if _, ok := a.(*Comment); ok {
			comments = append(comments, c.ID())
		}
	}
	return set
}

func randomAction(rng *rand.Rand, comments []ChangeID) Action {
	someComment := func() ChangeID {
		if len(comments) == 0 {
			return ChangeID{}
		}
		return comments[rng.IntN(len(comments))]
	}
	labels := []string{"bug", "ui", "p1", "p2"}
	who := []identity.NodeID{alice.ID(), bob.ID(), carol.ID()}
	switch rng.IntN(12) {
	case 0, 10, 11:
		return &Comment{Body: fmt.Sprint("comment ", rng.IntN(100)), ReplyTo: someComment()}
	case 1:
		return &Edit{Title: ptr(fmt.Sprint("title ", rng.IntN(100)))}
	case 2:
		if id := someComment(); !id.IsZero() {
			return &EditComment{Comment: id, Body: fmt.Sprint("edited ", rng.IntN(100))}
		}
		return &Reopen{}
	case 3:
		if id := someComment(); !id.IsZero() {
			return &RedactComment{Comment: id}
		}
		return &Reopen{}
	case 4:
		return &Label{Add: []string{labels[rng.IntN(2)]}, Remove: []string{labels[2+rng.IntN(2)]}}
	case 5:
		return &Assign{Add: []identity.NodeID{who[rng.IntN(3)]}}
	case 6:
		return &Close{Reason: []CloseReason{ReasonSolved, ReasonOther}[rng.IntN(2)]}
	case 7:
		return &Reopen{}
	default:
		return &React{Comment: someComment(), Emoji: []string{"+1", "-1", "🎉"}[rng.IntN(3)], Remove: rng.IntN(3) == 0}
	}
}

// foldText is the state and report of a fold as text, for comparison.
func foldText(t testing.TB, object ObjectID, set []*Change) string {
	is, rep, err := FoldIssue(object, set, delegates)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(is)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + fmt.Sprint(rep)
}

// TestFoldOrderIndependent folds the same set in 1,000 random orders
// (sometimes with duplicates) and requires the same state every time.
func TestFoldOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	set := randomHistory(t, rng, 120)
	object := set[0].ID()
	want := foldText(t, object, set)

	is, rep, _ := FoldIssue(object, set, delegates)
	if len(is.Comments) < 5 || len(rep.Rejected) < 3 || len(rep.Skipped) < 5 || len(is.Heads) < 1 {
		t.Fatalf("history too tame to test anything: %d comments, %d rejected, %d skipped, heads %d",
			len(is.Comments), len(rep.Rejected), len(rep.Skipped), len(is.Heads))
	}
	for i := range 1000 {
		perm := make([]*Change, len(set))
		for j, k := range rng.Perm(len(set)) {
			perm[j] = set[k]
		}
		if i%10 == 0 {
			perm = append(perm, perm[:i%len(perm)]...)
		}
		if got := foldText(t, object, perm); got != want {
			t.Fatalf("order %d folds differently:\n got %s\nwant %s", i, got, want)
		}
	}
}
