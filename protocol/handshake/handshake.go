// Package handshake authenticates a MegaEngine connection with the Noise
// handshake Noise_IK_25519_ChaChaPoly_BLAKE2s (design D2, spec/handshake.md).
//
// The dialer is the Noise initiator: it knows the responder's did:key and
// hence its X25519 static key. Each side's encrypted payload carries its
// Ed25519 public key, which the other side checks against the Noise static
// key it proved. The prologue binds the handshake to the underlying QUIC
// connection (the daemon passes 32 bytes of the TLS exporter), so a relay
// between two QUIC connections fails. After the handshake no Noise cipher
// state is used: traffic flows over the QUIC connection's own TLS channel,
// which the binding has tied to the authenticated identities.
//
// The package is pure: it works over any io.ReadWriter, owns no sockets and
// starts no goroutine that outlives a call.
package handshake

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"github.com/megaengine/megaengine/protocol/identity"
)

const (
	// ProtocolName is the full Noise protocol name; it is mixed into the
	// handshake hash, so both sides must agree on it byte for byte.
	ProtocolName = "Noise_IK_25519_ChaChaPoly_BLAKE2s"

	// PrologueVersion starts the prologue. The prologue is PrologueVersion's
	// bytes followed by the BindingSize-byte channel binding, with no
	// separator: the version string has a fixed length.
	PrologueVersion = "megaengine/1 noise-ik"

	// BindingSize is the exact length of the channel binding.
	BindingSize = 32

	// MaxFrameSize bounds a handshake message (frame body). It is checked
	// before anything is allocated. Version-1 messages are 134 and 86 bytes;
	// the slack leaves room for larger payloads in later versions.
	MaxFrameSize = 1024

	// PayloadVersion is the payload version this implementation sends. A
	// peer's higher version is accepted and reported in Result.PeerVersion.
	PayloadVersion = 1
)

// Errors of the handshake, always wrapped with detail; test with errors.Is.
// Errors caused by the context wrap context.DeadlineExceeded or
// context.Canceled instead.
var (
	// ErrBadBinding means the channel binding is not BindingSize bytes.
	ErrBadBinding = errors.New("channel binding has the wrong length")
	// ErrBadFrame means a frame header announced an empty message.
	ErrBadFrame = errors.New("malformed handshake frame")
	// ErrFrameTooLarge means a frame header announced more than MaxFrameSize
	// bytes (or a caller tried to send that much).
	ErrFrameTooLarge = errors.New("handshake frame too large")
	// ErrTruncated means the stream ended in the middle of a frame; it
	// wraps io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("handshake frame truncated")
	// ErrHandshakeClosed means the stream ended cleanly between frames. A
	// responder closes without a word when message 1 does not decrypt, so
	// an initiator seeing this usually dialled the wrong key or the two
	// sides' channel bindings differ (a man in the middle).
	ErrHandshakeClosed = errors.New("peer closed the connection during the handshake")
	// ErrDecrypt means a Noise message failed to decrypt or authenticate:
	// wrong static key, different prologue, or a corrupted message.
	ErrDecrypt = errors.New("handshake message does not decrypt")
	// ErrBadPayload means a decrypted payload is not a valid Payload.
	ErrBadPayload = errors.New("invalid handshake payload")
	// ErrKeyMismatch means the Ed25519 key a peer presented is not the one
	// its Noise static key proves, or not the node the initiator dialled.
	ErrKeyMismatch = errors.New("handshake key mismatch")
)

// Result is what a completed handshake proved about the peer.
type Result struct {
	// Peer is the peer's node id: for an initiator the id it dialled, for a
	// responder the id the initiator proved.
	Peer identity.NodeID
	// PeerVersion is the payload version the peer sent (≥ 1).
	PeerVersion uint64
}

// suite is Noise's 25519 / ChaChaPoly / BLAKE2s; with HandshakeIK it gives
// ProtocolName.
var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// Initiate runs the handshake as the dialer over rw, proving key and checking
// that the responder is remote. binding must be BindingSize bytes and equal
// to the responder's. If rw has SetDeadline (net.Conn, *quic.Stream), ctx's
// deadline and cancellation abort blocked I/O; otherwise ctx is checked
// between steps. The caller should close rw if Initiate fails.
func Initiate(ctx context.Context, rw io.ReadWriter, key *identity.Key, remote identity.NodeID, binding []byte) (Result, error) {
	return InitiateOn(ctx, rw, key, remote, binding, DefaultNetwork)
}

// InitiateOn is Initiate on network (see CheckNetwork): the name is mixed
// into the prologue, so a responder of another network cannot decrypt
// message 1.
func InitiateOn(ctx context.Context, rw io.ReadWriter, key *identity.Key, remote identity.NodeID, binding []byte, network string) (Result, error) {
	r, _, err := initiate(ctx, rw, key, remote, binding, network, nil)
	return r, err
}

// Respond runs the handshake as the listener over rw, proving key and
// learning who the initiator is. On any failure it writes nothing more and
// returns; the caller should then close rw. See Initiate for ctx and binding.
func Respond(ctx context.Context, rw io.ReadWriter, key *identity.Key, binding []byte) (Result, error) {
	return RespondAdmitting(ctx, rw, key, binding, nil)
}

// RespondAdmitting is Respond that asks admit about the initiator as soon
// as message 1 proved who it is, before any answer: a refused initiator
// gets nothing back (no message 2), and the error wraps ErrRefused and
// admit's error. A nil admit admits everyone.
func RespondAdmitting(ctx context.Context, rw io.ReadWriter, key *identity.Key, binding []byte, admit func(identity.NodeID) error) (Result, error) {
	return RespondOn(ctx, rw, key, binding, DefaultNetwork, admit)
}

// RespondOn is RespondAdmitting on network (see InitiateOn).
func RespondOn(ctx context.Context, rw io.ReadWriter, key *identity.Key, binding []byte, network string, admit func(identity.NodeID) error) (Result, error) {
	r, _, err := respond(ctx, rw, key, binding, network, nil, admit)
	return r, err
}

// ErrRefused is wrapped by RespondAdmitting's error for an initiator its
// admit function refused.
var ErrRefused = errors.New("initiator refused")

// initiate is Initiate with an injectable source of ephemeral randomness
// (nil means crypto/rand) that also returns the final handshake hash; the
// test vectors use both.
func initiate(ctx context.Context, rw io.ReadWriter, key *identity.Key, remote identity.NodeID, binding []byte, network string, rng io.Reader) (Result, []byte, error) {
	if err := checkArgs(key, binding, network); err != nil {
		return Result{}, nil, err
	}
	// NodeID values can be built by conversion from any 32 bytes; a
	// low-order or invalid key must not reach the X25519 conversion.
	if _, err := identity.NodeIDFromPublicKey(remote[:]); err != nil {
		return Result{}, nil, fmt.Errorf("checking the dialled node id: %w", err)
	}
	hs, err := newState(key, true, remote.X25519(), prologue(binding, network), rng)
	if err != nil {
		return Result{}, nil, err
	}
	msg1, err := writeMessage(hs, key, "message 1")
	if err != nil {
		return Result{}, nil, err
	}

	s, stop, err := begin(ctx, rw)
	if err != nil {
		return Result{}, nil, err
	}
	defer stop()
	if err := s.write("writing message 1", msg1); err != nil {
		return Result{}, nil, err
	}
	msg2, err := s.read("reading message 2")
	if errors.Is(err, ErrHandshakeClosed) {
		// A responder says nothing when message 1 fails; guess why for the log.
		return Result{}, nil, fmt.Errorf("%w: wrong key, channel binding or network (ours is %q)?", err, networkName(network))
	}
	if err != nil {
		return Result{}, nil, err
	}
	p, id, err := readMessage(hs, msg2, "message 2")
	if err != nil {
		return Result{}, nil, err
	}
	// Compare Ed25519 keys exactly: the twin -remote maps to the same X25519
	// key and so passes Noise, but it is a different identity.
	if id != remote {
		return Result{}, nil, fmt.Errorf("%w: dialled %s but peer presented %s", ErrKeyMismatch, remote, id)
	}
	return Result{Peer: id, PeerVersion: p.Version}, hs.ChannelBinding(), nil
}

// respond is Respond with injectable randomness, returning the handshake
// hash (see initiate).
func respond(ctx context.Context, rw io.ReadWriter, key *identity.Key, binding []byte, network string, rng io.Reader, admit func(identity.NodeID) error) (Result, []byte, error) {
	if err := checkArgs(key, binding, network); err != nil {
		return Result{}, nil, err
	}
	hs, err := newState(key, false, nil, prologue(binding, network), rng)
	if err != nil {
		return Result{}, nil, err
	}

	s, stop, err := begin(ctx, rw)
	if err != nil {
		return Result{}, nil, err
	}
	defer stop()
	msg1, err := s.read("reading message 1")
	if err != nil {
		return Result{}, nil, err
	}
	p, id, err := readMessage(hs, msg1, "message 1")
	if err != nil {
		return Result{}, nil, err
	}
	if err := checkStatic(id, hs.PeerStatic()); err != nil {
		return Result{}, nil, err
	}
	if admit != nil {
		if err := admit(id); err != nil {
			return Result{}, nil, fmt.Errorf("%w: %s: %w", ErrRefused, id, err)
		}
	}
	msg2, err := writeMessage(hs, key, "message 2")
	if err != nil {
		return Result{}, nil, err
	}
	if err := s.write("writing message 2", msg2); err != nil {
		return Result{}, nil, err
	}
	return Result{Peer: id, PeerVersion: p.Version}, hs.ChannelBinding(), nil
}

// checkArgs validates the caller's arguments before any I/O.
func checkArgs(key *identity.Key, binding []byte, network string) error {
	if network != "" {
		if err := CheckNetwork(network); err != nil {
			return fmt.Errorf("starting handshake: %w", err)
		}
	}
	if key == nil {
		return errors.New("starting handshake: nil identity key")
	}
	if len(binding) != BindingSize {
		return fmt.Errorf("starting handshake: %w: %d bytes, want %d", ErrBadBinding, len(binding), BindingSize)
	}
	return nil
}

// checkStatic makes sure the initiator's payload names the Ed25519 key whose
// X25519 form it proved as its Noise static key; otherwise anyone could
// claim any id.
func checkStatic(id identity.NodeID, static []byte) error {
	if string(id.X25519()) != string(static) {
		return fmt.Errorf("%w: initiator presented %s but its Noise static key %x does not match", ErrKeyMismatch, id, static)
	}
	return nil
}

// newState prepares a Noise IK handshake state. The static key pair is the
// X25519 form of the node's Ed25519 identity.
func newState(key *identity.Key, initiator bool, peerStatic, prologue []byte, rng io.Reader) (*noise.HandshakeState, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   suite,
		Random:        rng,
		Pattern:       noise.HandshakeIK,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: noise.DHKey{Private: key.X25519Private(), Public: key.X25519Public()},
		PeerStatic:    peerStatic,
	})
	if err != nil {
		return nil, fmt.Errorf("starting noise handshake: %w", err)
	}
	return hs, nil
}

// prologue returns PrologueVersion ‖ binding ‖ the network suffix (empty
// for the default network, "/" ‖ name otherwise). The binding has a fixed
// length, so the suffix is unambiguous.
func prologue(binding []byte, network string) []byte {
	suffix := networkSuffix(network)
	p := make([]byte, 0, len(PrologueVersion)+len(binding)+len(suffix))
	p = append(p, PrologueVersion...)
	p = append(p, binding...)
	return append(p, suffix...)
}

// networkName is name, or DefaultNetwork for "".
func networkName(name string) string {
	if name == "" {
		return DefaultNetwork
	}
	return name
}

// writeMessage produces the next Noise message carrying our payload.
func writeMessage(hs *noise.HandshakeState, key *identity.Key, what string) ([]byte, error) {
	payload, err := encodePayload(key.ID())
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", what, err)
	}
	msg, _, _, err := hs.WriteMessage(nil, payload)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", what, err)
	}
	return msg, nil
}

// readMessage decrypts a Noise message and decodes its payload.
func readMessage(hs *noise.HandshakeState, msg []byte, what string) (Payload, identity.NodeID, error) {
	plain, _, _, err := hs.ReadMessage(nil, msg)
	if err != nil {
		return Payload{}, identity.NodeID{}, fmt.Errorf("reading %s: %w: %w", what, ErrDecrypt, err)
	}
	p, id, err := DecodePayload(plain)
	if err != nil {
		return Payload{}, identity.NodeID{}, fmt.Errorf("reading %s: %w", what, err)
	}
	return p, id, nil
}
