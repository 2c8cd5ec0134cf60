package collab

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

var parseErrors = []error{ErrTooLarge, ErrMalformed, ErrInvalid, ErrBadSignature, ErrUnknownType, ErrUnknownAction}

// FuzzDecodeChange: no panic; an error is one of the classes; an accepted
// blob is exactly the encoding of what was decoded (one encoding per
// change) and parses again to the same id.
func FuzzDecodeChange(f *testing.F) {
	for _, c := range append(everyAction(f), everyPatchAction(f)...) {
		f.Add(c.Marshal())
	}
	for _, c := range invalidChangeCases(f) {
		if len(c.raw) <= MaxChangeSize {
			f.Add(c.raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseChange(raw)
		if err != nil {
			for _, e := range parseErrors {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		if !bytes.Equal(c.Marshal(), raw) {
			t.Fatal("accepted blob differs from its encoding")
		}
		payload, err := c.encodePayload()
		if err != nil || c.validate() != nil {
			t.Fatalf("accepted change does not re-encode or validate: %v", err)
		}
		if again, err := ParseChange(c.Marshal()); err != nil || again.ID() != c.ID() || !bytes.Contains(raw, payload) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

// FuzzFold: the input drives the shape of a history (parents, authors,
// actions, clocks); the fold must not panic, must give the same state for
// the set in two different orders, and must report every change it does
// not accept.
func FuzzFold(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(20))
	f.Add(uint64(7), uint64(0), uint8(60))
	f.Add(uint64(0), uint64(0), uint8(1))
	f.Fuzz(func(t *testing.T, s1, s2 uint64, n uint8) {
		rng := rand.New(rand.NewPCG(s1, s2))
		set := randomHistory(t, rng, 1+int(n%80))
		object := set[0].ID()
		want := foldText(t, object, set)
		rng.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
		if got := foldText(t, object, set); got != want {
			t.Fatalf("shuffled set folds differently:\n got %s\nwant %s", got, want)
		}
		is, rep, _ := FoldIssue(object, set, delegates)
		accepted, _, _ := Order(TypeIssue, object, set)
		if len(accepted)+len(rep.Rejected) != len(set) || len(is.Heads) == 0 {
			t.Fatalf("%d accepted + %d rejected != %d changes", len(accepted), len(rep.Rejected), len(set))
		}
	})
}
