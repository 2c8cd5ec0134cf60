package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

func linkRepo(i uint64) identity.RepoID {
	var r identity.RepoID
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
	copy(r[:], h[:])
	return r
}

func TestBloomFalsePositiveRate(t *testing.T) {
	const n = 1000
	repos := make([]identity.RepoID, n)
	for i := range repos {
		repos[i] = linkRepo(uint64(i))
	}
	s := NewSubscribe(repos, false, 0)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		if !s.Has(r) {
			t.Fatalf("false negative for %v", r)
		}
	}
	fp := 0
	const probes = 100000
	for i := range uint64(probes) {
		if s.Has(linkRepo(n + i)) {
			fp++
		}
	}
	if rate := float64(fp) / probes; rate > 0.01 {
		t.Fatalf("false-positive rate %.4f with %d repositories in %d bytes, want ≤ 1%%", rate, n, len(s.Filter))
	}
	if empty := NewSubscribe(nil, false, 0); empty.Has(repos[0]) || len(empty.Filter) != 0 {
		t.Fatal("the empty subscription holds something")
	}
}

func TestLinkMessagesRoundTrip(t *testing.T) {
	ids := []MessageID{sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))}
	for _, body := range []Body{
		NewSubscribe([]identity.RepoID{vectorRepo()}, false, vectorTimeMs),
		&Subscribe{Filter: []byte{}, Relay: true},
		&IHave{IDs: ids},
		&Graft{IDs: ids[:1]},
		&Prune{},
		&Prune{IDs: ids},
	} {
		e := mustSign(t, vectorKey(), body)
		e.TTL = 0
		got, b, err := open(mustMarshal(t, e), vectorTime)
		if err != nil || got.ID() != e.ID() || b.Type() != body.Type() || !IsLink(b.Type()) {
			t.Fatalf("%v: Open = %v, %v", body.Type(), b, err)
		}
	}
}

func TestLinkMessagesInvalid(t *testing.T) {
	tooMany := make([]MessageID, MaxLinkIDs+1)
	for _, c := range []struct {
		name string
		typ  MsgType
		body []byte
	}{
		{"filter not a power of two", TypeSubscribe, mustCBOR(t, map[uint64]any{1: make([]byte, 100), 2: 7, 3: false, 4: 0})},
		{"filter too large", TypeSubscribe, mustCBOR(t, map[uint64]any{1: make([]byte, 2*BloomMaxBytes), 2: 7, 3: false, 4: 0})},
		{"no hashes", TypeSubscribe, mustCBOR(t, map[uint64]any{1: make([]byte, 64), 2: 0, 3: false, 4: 0})},
		{"missing key", TypeSubscribe, mustCBOR(t, map[uint64]any{1: []byte{}, 2: 0, 3: false})},
		{"unknown key", TypePrune, mustCBOR(t, map[uint64]any{2: 1})},
		{"prune ids not an array", TypePrune, mustCBOR(t, map[uint64]any{1: 1})},
		{"prune with an empty id list", TypePrune, mustCBOR(t, map[uint64]any{1: [][]byte{}})},
		{"prune with too many ids", TypePrune, mustBody(t, &Prune{IDs: tooMany})},
		{"no ids", TypeIHave, mustCBOR(t, map[uint64]any{1: [][]byte{}})},
		{"short id", TypeGraft, mustCBOR(t, map[uint64]any{1: [][]byte{make([]byte, 31)}})},
		{"too many ids", TypeIHave, mustBody(t, &IHave{IDs: tooMany})},
	} {
		_, err := (&Envelope{Type: c.typ, Body: c.body}).DecodeBody()
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: DecodeBody = %v, want ErrMalformed or ErrInvalid", c.name, err)
		}
	}
}

func FuzzSubscribe(f *testing.F) {
	seedBodies(f, TypeSubscribe, NewSubscribe([]identity.RepoID{vectorRepo()}, true, 5), &Subscribe{Filter: []byte{}})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzBody(t, b, decodeValid(TypeSubscribe)) })
}

func FuzzIHave(f *testing.F) {
	seedBodies(f, TypeIHave, &IHave{IDs: []MessageID{{1}, {2}}})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzBody(t, b, decodeValid(TypeIHave)) })
}

func FuzzGraft(f *testing.F) {
	seedBodies(f, TypeGraft, &Graft{IDs: []MessageID{{1}}})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzBody(t, b, decodeValid(TypeGraft)) })
}

func FuzzPrune(f *testing.F) {
	seedBodies(f, TypePrune, &Prune{}, &Prune{IDs: []MessageID{{1}}})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzBody(t, b, decodeValid(TypePrune)) })
}
