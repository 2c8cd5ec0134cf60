package handshake

import (
	"fmt"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Payload is the plaintext each side sends inside its Noise message: a CBOR
// map with integer keys. Keys are append-only; never renumber them.
type Payload struct {
	// Version is the sender's payload version, ≥ 1.
	Version uint64 `cbor:"1,keyasint"`
	// Key is the sender's 32-byte Ed25519 public key (its node id).
	Key []byte `cbor:"2,keyasint"`
}

// DecodePayload decodes a payload strictly (see cborx.Unmarshal), requires
// the core deterministic encoding so that each payload has one accepted
// form, checks the version and validates the key as a node id. Every error
// wraps ErrBadPayload.
func DecodePayload(b []byte) (Payload, identity.NodeID, error) {
	if len(b) > MaxFrameSize {
		return Payload{}, identity.NodeID{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBadPayload, len(b), MaxFrameSize)
	}
	var p Payload
	if err := cborx.UnmarshalCanonical(b, &p); err != nil {
		return Payload{}, identity.NodeID{}, fmt.Errorf("%w: decoding cbor: %w", ErrBadPayload, err)
	}
	if p.Version < 1 {
		return Payload{}, identity.NodeID{}, fmt.Errorf("%w: version %d, want at least 1", ErrBadPayload, p.Version)
	}
	id, err := identity.NodeIDFromPublicKey(p.Key)
	if err != nil {
		return Payload{}, identity.NodeID{}, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return p, id, nil
}

// encodePayload is our own payload: PayloadVersion and our Ed25519 key.
func encodePayload(id identity.NodeID) ([]byte, error) {
	b, err := cborx.Marshal(Payload{Version: PayloadVersion, Key: id.PublicKey()})
	if err != nil {
		return nil, fmt.Errorf("encoding payload: %w", err)
	}
	return b, nil
}
