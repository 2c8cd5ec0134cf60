// Package identity holds the identity formats of MegaEngine: node ids
// (did:key), repository ids (did:repo), node addresses (did:key:…@host:port),
// mega:// URLs (MegaURL), the node key file, and the Ed25519 → X25519 conversion the Noise handshake
// uses. It is pure: no sockets, no goroutines; the only disk access is the key
// file in keyfile.go.
package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"filippo.io/edwards25519"
	"github.com/mr-tron/base58"
)

const (
	// NodeIDPrefix starts every node id: the W3C did:key method with a
	// base58btc multibase string.
	NodeIDPrefix = "did:key:z"

	// MaxDIDLen bounds any did string accepted by the parsers, before decoding.
	MaxDIDLen = 128
)

// multicodec ed25519-pub, as an unsigned varint: 0xed 0x01.
var ed25519Multicodec = []byte{0xed, 0x01}

// Errors returned by the parsers. Wrapped with detail; test with errors.Is.
var (
	ErrMalformedDID = errors.New("malformed did")
	ErrBadKey       = errors.New("invalid ed25519 public key")
)

// NodeID is a node's Ed25519 public key. The zero value is not a valid id.
// It is comparable and can be a map key.
type NodeID [ed25519.PublicKeySize]byte

// NodeIDFromPublicKey checks pub and returns it as a NodeID.
func NodeIDFromPublicKey(pub ed25519.PublicKey) (NodeID, error) {
	var id NodeID
	if len(pub) != ed25519.PublicKeySize {
		return id, fmt.Errorf("%w: %d bytes, want %d", ErrBadKey, len(pub), ed25519.PublicKeySize)
	}
	copy(id[:], pub)
	if err := checkPoint(id[:]); err != nil {
		return NodeID{}, err
	}
	return id, nil
}

// checkPoint accepts only canonical encodings of curve points outside the
// small-order subgroup: a low-order key makes X25519 produce an all-zero
// shared secret, and a non-canonical one gives one key two ids.
func checkPoint(b []byte) error {
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return fmt.Errorf("%w: not a curve point", ErrBadKey)
	}
	if !bytes.Equal(p.Bytes(), b) {
		return fmt.Errorf("%w: non-canonical encoding", ErrBadKey)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return fmt.Errorf("%w: low-order point", ErrBadKey)
	}
	return nil
}

// PublicKey returns the id as an ed25519.PublicKey (a fresh copy).
func (id NodeID) PublicKey() ed25519.PublicKey {
	return bytes.Clone(id[:])
}

// IsZero reports whether id is the zero value.
func (id NodeID) IsZero() bool { return id == NodeID{} }

// String returns the W3C did:key form, "did:key:z6Mk…".
func (id NodeID) String() string {
	buf := make([]byte, 0, len(ed25519Multicodec)+len(id))
	buf = append(buf, ed25519Multicodec...)
	buf = append(buf, id[:]...)
	return NodeIDPrefix + base58.Encode(buf)
}

// Short returns an abbreviation for logs: the last 8 characters of the did.
func (id NodeID) Short() string {
	s := id.String()
	return "…" + s[len(s)-8:]
}

// LogValue implements slog.LogValuer: a node id in a log line is its Short
// form, never the whole did (the daemon's logger adds the alias).
func (id NodeID) LogValue() slog.Value { return slog.StringValue(id.Short()) }

// MarshalText implements encoding.TextMarshaler (JSON uses the did form).
func (id NodeID) MarshalText() ([]byte, error) {
	if id.IsZero() {
		return nil, fmt.Errorf("%w: zero node id", ErrBadKey)
	}
	return []byte(id.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseNodeID.
func (id *NodeID) UnmarshalText(b []byte) error {
	v, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseNodeID parses a did:key. It accepts the W3C form (multicodec 0xed 0x01)
// and the seed implementation's legacy form (a single 0xed byte), and returns
// the same NodeID for both; String always gives the W3C form.
func ParseNodeID(s string) (NodeID, error) {
	if len(s) > MaxDIDLen {
		return NodeID{}, fmt.Errorf("%w: longer than %d characters", ErrMalformedDID, MaxDIDLen)
	}
	rest, ok := strings.CutPrefix(s, NodeIDPrefix)
	if !ok {
		return NodeID{}, fmt.Errorf("%w: %q does not start with %q", ErrMalformedDID, s, NodeIDPrefix)
	}
	raw, err := base58.Decode(rest)
	if err != nil || rest == "" {
		return NodeID{}, fmt.Errorf("%w: %q is not base58btc", ErrMalformedDID, s)
	}
	var key []byte
	switch {
	case len(raw) == 2+ed25519.PublicKeySize && bytes.HasPrefix(raw, ed25519Multicodec):
		key = raw[2:]
	case len(raw) == 1+ed25519.PublicKeySize && raw[0] == 0xed:
		key = raw[1:] // legacy form without the varint continuation byte
	default:
		return NodeID{}, fmt.Errorf("%w: %q is not an ed25519 did:key (%d bytes after decoding)", ErrMalformedDID, s, len(raw))
	}
	id, err := NodeIDFromPublicKey(key)
	if err != nil {
		return NodeID{}, fmt.Errorf("%w: %q: %w", ErrMalformedDID, s, err)
	}
	return id, nil
}
