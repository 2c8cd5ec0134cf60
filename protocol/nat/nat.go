// Package nat holds the wire messages of reachability and NAT traversal
// (spec/nat.md): the observed address a peer reports after the handshake,
// the dial-back probe a relay sends to test reachability, introductions of
// two nodes through a relay for hole punching, and the relayed stream.
// The messages travel on streams of an authenticated connection, so they
// are not signed. The package is pure: no sockets, no disk.
package nat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Limits.
const (
	// MaxMessageSize bounds one framed message (checked before allocating).
	MaxMessageSize = 1024
	// MaxLAN bounds the private addresses one Observed carries.
	MaxLAN = 8
	// NonceSize is the length of a dial-back nonce.
	NonceSize = 16
	// MaxReasonLen bounds an error text in a reply.
	MaxReasonLen = 200
)

// Errors; every decoding error wraps ErrMalformed or ErrTooLarge.
var (
	ErrMalformed = errors.New("malformed nat message")
	ErrTooLarge  = errors.New("nat message too large")
)

// Observed (stream kind 4, one per connection and direction) tells the
// peer the address its packets come from, as the sender sees it.
//
// Map keys (ONLY APPEND, never renumber): 1 addr (text ip:port, required),
// 2 lan (list of text ip:port, optional).
type Observed struct {
	// Addr is the peer's address as seen by the sender (its UDP source).
	Addr string `cbor:"1,keyasint"`
	// LAN are the sender's own private addresses, sent only when the
	// connection runs between two private addresses (the same private
	// network): never to the public network.
	LAN []string `cbor:"2,keyasint,omitempty"`
}

// Validate checks the addresses.
func (o *Observed) Validate() error {
	if _, err := netip.ParseAddrPort(o.Addr); err != nil {
		return fmt.Errorf("%w: observed address %q: %v", ErrMalformed, o.Addr, err)
	}
	if len(o.LAN) > MaxLAN {
		return fmt.Errorf("%w: %d lan addresses, max %d", ErrTooLarge, len(o.LAN), MaxLAN)
	}
	for _, a := range o.LAN {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || Public(ap.Addr()) {
			return fmt.Errorf("%w: lan address %q is not a private ip:port", ErrMalformed, a)
		}
	}
	return nil
}

// DialBack (stream kind 5, request) asks a relay to send a probe packet
// (Probe) to the address it sees the requester at, from another socket.
// Map keys (ONLY APPEND): 1 nonce (bytes, NonceSize).
type DialBack struct {
	Nonce []byte `cbor:"1,keyasint"`
}

// Validate checks the nonce length.
func (d *DialBack) Validate() error {
	if len(d.Nonce) != NonceSize {
		return fmt.Errorf("%w: nonce of %d bytes, want %d", ErrMalformed, len(d.Nonce), NonceSize)
	}
	return nil
}

// probeMagic starts a probe packet. Its first byte has the QUIC fixed bit
// (0x40) clear, so QUIC stacks pass it on as a non-QUIC packet.
var probeMagic = []byte("\x00mega-probe")

// Probe is the UDP packet of a dial-back or a hole punch: probeMagic ‖ nonce.
func Probe(nonce []byte) []byte {
	return append(append([]byte{}, probeMagic...), nonce...)
}

// ParseProbe returns the nonce of a probe packet, or false.
func ParseProbe(b []byte) ([]byte, bool) {
	if len(b) != len(probeMagic)+NonceSize || !bytes.HasPrefix(b, probeMagic) {
		return nil, false
	}
	return b[len(probeMagic):], true
}

// Reply answers DialBack, Introduce, Punch and Relay requests.
// Map keys (ONLY APPEND): 1 ok (bool), 2 addr (text, optional: the
// other node's observed address), 3 reason (text, optional).
type Reply struct {
	OK     bool   `cbor:"1,keyasint"`
	Addr   string `cbor:"2,keyasint,omitempty"`
	Reason string `cbor:"3,keyasint,omitempty"`
}

// Validate checks the address and reason.
func (r *Reply) Validate() error {
	if len(r.Reason) > MaxReasonLen {
		return fmt.Errorf("%w: reason of %d bytes", ErrTooLarge, len(r.Reason))
	}
	if r.Addr != "" {
		if _, err := netip.ParseAddrPort(r.Addr); err != nil {
			return fmt.Errorf("%w: address %q", ErrMalformed, r.Addr)
		}
	}
	return nil
}

// Introduce (stream kind 6, node → relay) asks the relay to introduce the
// requester to Target, a node connected to the relay; Punch (stream kind
// 6, relay → target) tells the target that From, seen at Addr, wants a
// direct connection; Relay (stream kind 7) asks for, or announces, a
// relayed stream between the requester and Target.
// Map keys (ONLY APPEND): 1 node (bytes, 32: Ed25519 key), 2 addr (text,
// optional), 3 nonce (bytes, optional).
type Introduce struct {
	Node  []byte `cbor:"1,keyasint"`
	Addr  string `cbor:"2,keyasint,omitempty"`
	Nonce []byte `cbor:"3,keyasint,omitempty"`
}

// NodeID returns the node the message names.
func (m *Introduce) NodeID() (identity.NodeID, error) {
	id, err := identity.NodeIDFromPublicKey(m.Node)
	if err != nil {
		return id, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return id, nil
}

// Validate checks the node, address and nonce.
func (m *Introduce) Validate() error {
	if _, err := m.NodeID(); err != nil {
		return err
	}
	if m.Addr != "" {
		if _, err := netip.ParseAddrPort(m.Addr); err != nil {
			return fmt.Errorf("%w: address %q", ErrMalformed, m.Addr)
		}
	}
	if m.Nonce != nil && len(m.Nonce) != NonceSize {
		return fmt.Errorf("%w: nonce of %d bytes", ErrMalformed, len(m.Nonce))
	}
	return nil
}

// Message is what Write and Read carry.
type Message interface{ Validate() error }

// Encode encodes m canonically after validating it.
func Encode(m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := cborx.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// Decode decodes b strictly and canonically into m and validates it.
func Decode(b []byte, m Message) error {
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	if err := cborx.UnmarshalCanonical(b, m); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m.Validate()
}

// Write writes m as one frame: a 2-byte big-endian length, then the CBOR.
func Write(w io.Writer, m Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	frame := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	_, err = w.Write(append(frame, b...))
	return err
}

// Read reads one frame written by Write into m.
func Read(r io.Reader, m Message) error {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > MaxMessageSize {
		return fmt.Errorf("%w: frame of %d bytes", ErrTooLarge, n)
	}
	b := make([]byte, n) // bounded by MaxMessageSize
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return Decode(b, m)
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether ip is an address others on the internet can
// send to: global unicast, not private (RFC 1918, fc00::/7), not shared
// (100.64/10), not loopback or link-local. The benchmark range
// 198.18.0.0/15 counts as public, which the namespace tests rely on.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip)
}
