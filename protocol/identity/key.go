package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"

	"filippo.io/edwards25519"
)

// Key is a node's private identity: an Ed25519 key pair.
type Key struct {
	priv ed25519.PrivateKey
	id   NodeID
}

// GenerateKey makes a new random identity.
func GenerateKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	return KeyFromPrivate(priv)
}

// KeyFromSeed makes the identity of a 32-byte Ed25519 seed (RFC 8032's
// "secret key").
func KeyFromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ed25519 seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return KeyFromPrivate(ed25519.NewKeyFromSeed(seed))
}

// KeyFromPrivate wraps an Ed25519 private key, checking its public half.
func KeyFromPrivate(priv ed25519.PrivateKey) (*Key, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	// Recompute the public key from the seed: a file could pair a seed with
	// someone else's public key.
	priv = ed25519.NewKeyFromSeed(priv.Seed())
	id, err := NodeIDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, id: id}, nil
}

// ID returns the node id of the key.
func (k *Key) ID() NodeID { return k.id }

// Sign signs msg with Ed25519. Callers prepend their domain-separation string.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// X25519Private returns the X25519 private key that belongs to this identity:
// the clamped first half of SHA-512(seed), as in RFC 8032 key expansion.
func (k *Key) X25519Private() []byte {
	h := sha512.Sum512(k.priv.Seed())
	s := h[:32]
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return append([]byte(nil), s...)
}

// X25519Public returns the X25519 public key of the identity; it equals
// X25519(X25519Private(), basepoint).
func (k *Key) X25519Public() []byte { return k.id.X25519() }

// X25519 maps the node's Ed25519 public key to its X25519 (Montgomery u)
// public key. Two ids map to the same X25519 key: A and its negation -A (see
// "Twin keys" in spec/protocol.md).
func (id NodeID) X25519() []byte {
	p, err := new(edwards25519.Point).SetBytes(id[:])
	if err != nil {
		// Every 32-byte string that a NodeID constructor accepts decodes;
		// reaching this is a programming error.
		panic("identity: X25519 of an invalid NodeID")
	}
	return p.BytesMontgomery()
}

// Verify checks an Ed25519 signature by id over msg.
func (id NodeID) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(id[:], msg, sig)
}
