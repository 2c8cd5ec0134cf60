package collab

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// RFC 8032 test 1, 2 and 3 seeds: alice is the repository's delegate, bob
// opens issues, carol comments.
const (
	aliceSeedHex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	bobSeedHex   = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
	carolSeedHex = "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"

	// vectorTimeMs is 2026-11-21T00:00:00Z, the version 1 date.
	vectorTimeMs = 1795219200000
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func keyFromHex(s string) *identity.Key {
	k, err := identity.KeyFromSeed(mustHex(s))
	if err != nil {
		panic(err)
	}
	return k
}

var (
	alice = keyFromHex(aliceSeedHex)
	bob   = keyFromHex(bobSeedHex)
	carol = keyFromHex(carolSeedHex)
)

// testKey returns a further deterministic key.
func testKey(n int) *identity.Key {
	seed := sha256.Sum256([]byte{'k', 'e', 'y', byte(n)})
	k, err := identity.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

// nonce returns a deterministic nonce for test changes.
func nonce(n uint64) (out [NonceLen]byte) {
	binary.BigEndian.PutUint64(out[8:], n)
	return out
}

// mk signs a change by key on top of parents with clock max+1 and a
// deterministic timestamp; the object is the parents' (zero if none). The
// nonce is derived from the rest, so the same call gives the same change
// whatever ran before.
func mk(t testing.TB, key *identity.Key, parents []*Change, actions ...Action) *Change {
	t.Helper()
	f := Fields{Type: TypeIssue, Actions: actions, Clock: 1}
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

func open(t testing.TB, key *identity.Key, title string, labels ...string) *Change {
	t.Helper()
	return mk(t, key, nil, &Open{Title: title, Body: "body of " + title, Labels: labels})
}

func ptr[T any](v T) *T { return &v }

// signPayload signs arbitrary payload bytes as key and returns the blob:
// for crafting inputs that SignChange refuses to make.
func signPayload(t testing.TB, key *identity.Key, payload []byte) []byte {
	t.Helper()
	raw, err := cborx.Marshal(blobCBOR{Change: payload, Signature: key.Sign(signedBytes(payload))})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// signUnchecked encodes c without validating it and signs it as key.
func signUnchecked(t testing.TB, key *identity.Key, c *Change) []byte {
	t.Helper()
	c.author = key.ID()
	payload, err := c.encodePayload()
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, key, payload)
}

// bogusAction is an action type this version does not define.
type bogusAction struct{}

func (bogusAction) Type() ActionType    { return "frobnicate" }
func (bogusAction) validate() error     { return nil }
func (a bogusAction) normalize() Action { return a }
func (bogusAction) encode() any         { return reopenCBOR{Type: "frobnicate"} }

func sortIDs(ids []ChangeID) { slices.SortFunc(ids, ChangeID.Compare) }
