package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Link messages (types 4–7) are between two connected peers: sent with
// TTL 0 and never relayed or stored. Subscribe is signed like every
// envelope; IHave, Graft and Prune travel unsigned (see Unsigned). A
// receiver ignores one whose origin is not the peer it came from. A node
// of an older version drops a Subscribe as an unknown type (TTL 0: it
// does not relay) and, never having sent one, gets no other link message.

// Link message limits.
const (
	// BloomMinBytes and BloomMaxBytes bound a subscription filter; its
	// length is 0 (follows nothing) or a power of two between them.
	BloomMinBytes = 64
	BloomMaxBytes = 4096
	// BloomMaxHashes bounds the number of hash functions of a filter.
	BloomMaxHashes = 16
	// MaxLinkIDs bounds the message ids of one IHave or Graft: 30 ids
	// keep the envelope inside DatagramBudget.
	MaxLinkIDs = 30
)

// Subscribe (type 4) tells a peer which repositories the origin follows,
// as a Bloom filter (see Bloom), and asks for what changed since Since.
// A peer sends it on connect and again when what it follows changes.
//
// Map keys (ONLY APPEND, never renumber); all are required:
// 1 filter (bytes), 2 hashes (uint), 3 relay (bool), 4 since (uint, ms).
type Subscribe struct {
	// Filter is the Bloom filter's bit array: empty, or a power of two
	// of BloomMinBytes–BloomMaxBytes bytes.
	Filter []byte `cbor:"1,keyasint"`
	// Hashes is the filter's number of hash functions: 1–BloomMaxHashes,
	// or 0 exactly when Filter is empty.
	Hashes uint64 `cbor:"2,keyasint"`
	// Relay asks for every repository and activity announcement,
	// whatever the filter says: the origin relays for others.
	Relay bool `cbor:"3,keyasint"`
	// Since asks the peer's connect-time snapshot to hold only
	// announcements signed at or after this time (Unix ms; 0: all).
	Since uint64 `cbor:"4,keyasint"`
}

// Type returns TypeSubscribe.
func (*Subscribe) Type() MsgType { return TypeSubscribe }

// Subject returns "": link messages are about the link.
func (*Subscribe) Subject() string { return "" }

// Validate checks the filter's size and hash count.
func (s *Subscribe) Validate() error {
	if s == nil {
		return invalid("nil Subscribe")
	}
	n := len(s.Filter)
	if n == 0 {
		if s.Hashes != 0 {
			return invalid("empty filter with %d hashes", s.Hashes)
		}
		return nil
	}
	if n < BloomMinBytes || n > BloomMaxBytes || bits.OnesCount(uint(n)) != 1 {
		return invalid("filter of %d bytes, want 0 or a power of two in %d-%d", n, BloomMinBytes, BloomMaxBytes)
	}
	if s.Hashes < 1 || s.Hashes > BloomMaxHashes {
		return invalid("%d hashes, want 1-%d", s.Hashes, BloomMaxHashes)
	}
	return nil
}

func (s *Subscribe) encode() ([]byte, error) {
	c := *s
	c.Filter = orEmpty(c.Filter)
	return cborx.Marshal(&c)
}

func decodeSubscribe(b []byte) (*Subscribe, error) {
	var s Subscribe
	if err := cborx.UnmarshalCanonical(b, &s); err != nil {
		return nil, decodeError("Subscribe", err)
	}
	if s.Filter == nil {
		return nil, fmt.Errorf("decoding Subscribe: %w: filter null", ErrMalformed)
	}
	return &s, nil
}

// Has reports whether the filter may contain repo (false positives at
// the filter's rate; never a false negative). An empty filter holds
// nothing.
func (s *Subscribe) Has(repo identity.RepoID) bool {
	if len(s.Filter) == 0 {
		return false
	}
	m := uint64(len(s.Filter)) * 8
	h1, h2 := bloomHashes(repo)
	for i := range s.Hashes {
		bit := (h1 + i*h2) % m
		if s.Filter[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

// Bloom filter sizing: BloomBitsPerRepo bits per followed repository and
// BloomHashes hash functions give about 1 % false positives.
const (
	BloomBitsPerRepo = 10
	BloomHashes      = 7
)

// NewSubscribe builds the Subscribe for a set of followed repositories:
// the smallest power-of-two filter of at least BloomBitsPerRepo bits per
// repository (capped at BloomMaxBytes, where the false-positive rate
// starts to grow), BloomHashes hash functions.
func NewSubscribe(repos []identity.RepoID, relay bool, since uint64) *Subscribe {
	s := &Subscribe{Filter: []byte{}, Relay: relay, Since: since}
	if len(repos) == 0 {
		return s
	}
	size := BloomMinBytes
	for size < BloomMaxBytes && size*8 < len(repos)*BloomBitsPerRepo {
		size *= 2
	}
	s.Filter, s.Hashes = make([]byte, size), BloomHashes
	m := uint64(size) * 8
	for _, r := range repos {
		h1, h2 := bloomHashes(r)
		for i := range s.Hashes {
			bit := (h1 + i*h2) % m
			s.Filter[bit/8] |= 1 << (bit % 8)
		}
	}
	return s
}

// bloomHashes are the two hashes of double hashing: the first and second
// 8 bytes (big-endian) of SHA-256("megaengine bloom v1" ‖ 0x00 ‖ the
// repository's multihash); the second is forced odd.
func bloomHashes(repo identity.RepoID) (uint64, uint64) {
	h := sha256.Sum256(append([]byte("megaengine bloom v1\x00"), repo.Multihash()...))
	return binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16]) | 1
}

// IHave (type 5) tells a peer that the origin holds these messages,
// without sending them (Plumtree's lazy push). A peer missing one asks
// with Graft.
//
// Map keys (ONLY APPEND): 1 ids (array of 1–MaxLinkIDs 32-byte message ids).
type IHave struct{ IDs []MessageID }

// Graft (type 6) asks a peer to send these messages and to push new ones
// to the origin eagerly from now on (the link joins the tree).
//
// Map keys (ONLY APPEND): 1 ids (array of 1–MaxLinkIDs 32-byte message ids).
type Graft struct{ IDs []MessageID }

// Prune (type 7) asks a peer to stop pushing messages of the topics of
// these messages (their repository; node announcements are one topic) to
// the origin eagerly: it received them already by another way. The peer
// keeps sending IHave notices for them. A Prune without ids (the empty
// map, what versions before topics sent) asks it for every topic.
//
// Map keys (ONLY APPEND): 1 ids (array of 1–MaxLinkIDs 32-byte message
// ids; absent when empty).
type Prune struct{ IDs []MessageID }

type linkIDsCBOR struct {
	IDs [][]byte `cbor:"1,keyasint"`
}

// Type returns TypeIHave.
func (*IHave) Type() MsgType { return TypeIHave }

// Type returns TypeGraft.
func (*Graft) Type() MsgType { return TypeGraft }

// Type returns TypePrune.
func (*Prune) Type() MsgType { return TypePrune }

// Subject returns "".
func (*IHave) Subject() string { return "" }

// Subject returns "".
func (*Graft) Subject() string { return "" }

// Subject returns "".
func (*Prune) Subject() string { return "" }

// Validate checks the number of ids.
func (m *IHave) Validate() error {
	if m == nil {
		return invalid("nil IHave")
	}
	return checkLinkIDs(m.IDs)
}

// Validate checks the number of ids.
func (m *Graft) Validate() error {
	if m == nil {
		return invalid("nil Graft")
	}
	return checkLinkIDs(m.IDs)
}

// Validate checks the number of ids (none is the whole link).
func (m *Prune) Validate() error {
	if m == nil {
		return invalid("nil Prune")
	}
	if len(m.IDs) == 0 {
		return nil
	}
	return checkLinkIDs(m.IDs)
}

func checkLinkIDs(ids []MessageID) error {
	if len(ids) == 0 || len(ids) > MaxLinkIDs {
		return invalid("%d message ids, want 1-%d", len(ids), MaxLinkIDs)
	}
	return nil
}

func (m *IHave) encode() ([]byte, error) { return encodeLinkIDs(m.IDs) }
func (m *Graft) encode() ([]byte, error) { return encodeLinkIDs(m.IDs) }

func (m *Prune) encode() ([]byte, error) {
	if len(m.IDs) == 0 {
		return cborx.Marshal(map[uint64]any{})
	}
	return encodeLinkIDs(m.IDs)
}

func encodeLinkIDs(ids []MessageID) ([]byte, error) {
	w := linkIDsCBOR{IDs: make([][]byte, len(ids))}
	for i := range ids {
		w.IDs[i] = ids[i][:]
	}
	return cborx.Marshal(w)
}

func decodeLinkIDs(what string, b []byte) ([]MessageID, error) {
	var w linkIDsCBOR
	if err := cborx.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeError(what, err)
	}
	if w.IDs == nil {
		return nil, fmt.Errorf("decoding %s: %w: ids null", what, ErrMalformed)
	}
	return copyLinkIDs(what, w.IDs)
}

// copyLinkIDs checks the count, then copies the ids.
func copyLinkIDs(what string, raw [][]byte) ([]MessageID, error) {
	if err := checkLinkIDs(make([]MessageID, min(len(raw), MaxLinkIDs+1))); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", what, err)
	}
	ids := make([]MessageID, len(raw))
	for i, id := range raw {
		if err := decodeFixed(ids[i][:], id, "message id"); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", what, err)
		}
	}
	return ids, nil
}

func decodePrune(b []byte) (*Prune, error) {
	var w struct {
		IDs [][]byte `cbor:"1,keyasint,omitempty"`
	}
	if err := cborx.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeError("Prune", err)
	}
	if w.IDs == nil {
		return &Prune{}, nil
	}
	ids, err := copyLinkIDs("Prune", w.IDs)
	return &Prune{IDs: ids}, err
}

// IsLink reports whether t is a link message type (never relayed or stored).
func IsLink(t MsgType) bool { return t >= TypeSubscribe && t <= TypePrune }

// MayBeUnsigned reports whether a message of type t may travel without a
// signature: IHave, Graft and Prune, which a node sends only to peers that
// sent it a Subscribe. Subscribe is signed, since it goes to peers of any
// version and a node older than link messages rejects an unsigned envelope.
func MayBeUnsigned(t MsgType) bool { return t >= TypeIHave && t <= TypePrune }
