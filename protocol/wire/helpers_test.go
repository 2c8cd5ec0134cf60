package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// RFC 8032 test 1 and test 2 seeds.
const (
	vectorSeedHex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	otherSeedHex  = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"

	// vectorTimeMs is 2026-11-21T00:00:00Z, the version 1 date.
	vectorTimeMs = 1795219200000

	// vectorRepoHex is the first repository id of spec/vectors/identity.json.
	vectorRepoHex = "16208c776b4ead001f101c1067fead282fa594c9763638d02e6d558bb360a32b5be3"
)

var vectorTime = time.UnixMilli(vectorTimeMs)

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

func vectorKey() *identity.Key { return keyFromHex(vectorSeedHex) }
func otherKey() *identity.Key  { return keyFromHex(otherSeedHex) }

func vectorRepo() identity.RepoID {
	id, err := identity.RepoIDFromMultihash(mustHex(vectorRepoHex))
	if err != nil {
		panic(err)
	}
	return id
}

func vectorRefs() []Ref {
	return []Ref{
		{Name: "refs/heads/main", OID: mustHex("b4d1c1f3a0e0a3c35f3c1c5fd0b3de5a0a3b9c1e")},
		{Name: "refs/heads/dev", OID: mustHex("0123456789abcdef0123456789abcdef01234567")},
		{Name: "refs/tags/v1.0", OID: mustHex("fedcba9876543210fedcba9876543210fedcba98")},
	}
}

func vectorSignedRefs() *SignedRefs {
	s, err := SignRefs(vectorKey(), vectorRepo(), vectorTimeMs, vectorRefs())
	if err != nil {
		panic(err)
	}
	return s
}

func vectorNode() *NodeAnnouncement {
	return &NodeAnnouncement{
		Alias:     "alice",
		Addresses: []string{"192.0.2.7:9000", "[2001:db8::7]:9000"},
		Kind:      KindNormal,
		Version:   "0.1.0",
		Features:  []string{"datagrams", "signed-refs"},
	}
}

func vectorRepoAnn() *RepoAnnouncement {
	return &RepoAnnouncement{
		Repo:       vectorRepo(),
		RefsSeq:    vectorTimeMs,
		RefsDigest: vectorSignedRefs().Digest(),
	}
}

func vectorActivity() *ActivityAnnouncement {
	return &ActivityAnnouncement{
		Repo:  vectorRepo(),
		Heads: [][32]byte{sha256.Sum256([]byte("event 2")), sha256.Sum256([]byte("event 1"))},
	}
}

func init() {
	// Heads must be sorted; sha256("event 2") happens to sort first.
	a := vectorActivity()
	if a.Validate() != nil {
		panic("vector activity heads are not sorted")
	}
}

// signRaw signs arbitrary body bytes under any version and type, for tests
// that need an authentic envelope with a bad body or header.
func signRaw(t testing.TB, key *identity.Key, version uint64, typ MsgType, tsMs uint64, body []byte) *Envelope {
	t.Helper()
	e := &Envelope{Version: version, Type: typ, Origin: key.ID(), Timestamp: tsMs, Body: body, TTL: DefaultTTL}
	sb, err := e.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	e.Signature = key.Sign(sb)
	return e
}

func mustMarshal(t testing.TB, e *Envelope) []byte {
	t.Helper()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cborx.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSign(t testing.TB, key *identity.Key, body Body) *Envelope {
	t.Helper()
	e, err := Sign(key, vectorTime, body)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// open is what a receiver does with envelope bytes: Unmarshal, Verify,
// DecodeBody. On success the envelope is authentic, fresh and its body
// valid. An authentic, fresh envelope of a type this version does not know
// is returned with an error wrapping ErrUnknownType and a nil body (a node
// may relay it without applying it); on every other error both results are
// nil.
func open(b []byte, now time.Time) (*Envelope, Body, error) {
	e, err := Unmarshal(b)
	if err != nil {
		return nil, nil, err
	}
	verify := e.Verify
	if e.Unsigned() {
		verify = e.VerifyUnsigned
	}
	if err := verify(now); err != nil {
		return nil, nil, err
	}
	body, err := e.DecodeBody()
	if errors.Is(err, ErrUnknownType) {
		return e, nil, err
	}
	if err != nil {
		return nil, nil, err
	}
	return e, body, nil
}

// refOID returns the object id the signed refs hold for the named ref.
func refOID(s *SignedRefs, name string) ([]byte, bool) {
	for _, r := range s.refs {
		if r.Name == name {
			return r.OID, true
		}
	}
	return nil, false
}
