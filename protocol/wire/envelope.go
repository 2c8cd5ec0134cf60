package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// MsgType identifies the body an envelope carries. It mirrors the CBOR
// unsigned integer on the wire (every value decodes; unknown ones are
// rejected by DecodeBody).
type MsgType uint64

// Message types.
//
// ONLY APPEND TO THIS LIST. A number, once published, keeps its meaning
// forever; a retired type's number is never reused. spec/wire.md holds the
// same registry.
const (
	TypeNodeAnnouncement     MsgType = 1
	TypeRepoAnnouncement     MsgType = 2
	TypeActivityAnnouncement MsgType = 3
	TypeSubscribe            MsgType = 4 // link message (TTL 0)
	TypeIHave                MsgType = 5 // link message (TTL 0)
	TypeGraft                MsgType = 6 // link message (TTL 0)
	TypePrune                MsgType = 7 // link message (TTL 0)
)

// String returns the type's name, or its number for unknown types.
func (t MsgType) String() string {
	switch t {
	case TypeNodeAnnouncement:
		return "NodeAnnouncement"
	case TypeRepoAnnouncement:
		return "RepoAnnouncement"
	case TypeActivityAnnouncement:
		return "ActivityAnnouncement"
	case TypeSubscribe:
		return "Subscribe"
	case TypeIHave:
		return "IHave"
	case TypeGraft:
		return "Graft"
	case TypePrune:
		return "Prune"
	}
	return "MsgType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// MessageID identifies an envelope: SHA-256 of its signed bytes. The TTL is
// not part of it, so relayed copies share the id.
type MessageID [sha256.Size]byte

// String returns the id in lowercase hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// Body is the content of an envelope: *NodeAnnouncement,
// *RepoAnnouncement or *ActivityAnnouncement. The interface is sealed (an
// unexported method) because each body needs a canonical encoding that
// DecodeBody can read back.
type Body interface {
	// Type is the message type the body travels under.
	Type() MsgType
	// Subject names what the body is about, within its origin and type: ""
	// for a NodeAnnouncement (one per node), the repository id for the
	// repository messages. A receiver keeps only the newest envelope per
	// (origin, type, subject).
	Subject() string
	// Validate checks every field against the rules and limits of
	// spec/wire.md; errors wrap ErrInvalid.
	Validate() error

	// encode returns the canonical CBOR encoding of a valid body.
	encode() ([]byte, error)
}

// Envelope is a gossip message: signed, or an unsigned link message
// (IHave, Graft, Prune), which the authenticated connection it came on
// vouches for (see Unsigned).
//
// Map keys on the wire (ONLY APPEND, never renumber): 1 version, 2 type,
// 3 origin, 4 timestamp, 5 body, 6 signature, 7 ttl. All seven are required.
type Envelope struct {
	// Version is ProtocolVersion.
	Version uint64
	// Type says how to decode Body.
	Type MsgType
	// Origin is the node that signed the envelope (32-byte Ed25519 key on
	// the wire).
	Origin identity.NodeID
	// Timestamp is when the origin signed, in Unix milliseconds.
	Timestamp uint64
	// Body is the canonical CBOR encoding of the body, carried as a byte
	// string so that the signature covers these exact bytes.
	Body []byte
	// Signature is the origin's Ed25519 signature over SignedBytes, or
	// empty for an unsigned link message.
	Signature []byte
	// TTL is the remaining hop budget; not signed, each relay decrements it.
	TTL uint8
}

// envelopeDecodeCBOR receives an envelope. Pointers and nil slices tell an
// absent (or null) key from a zero value: every key is required.
type envelopeDecodeCBOR struct {
	Version   *uint64 `cbor:"1,keyasint"`
	Type      *uint64 `cbor:"2,keyasint"`
	Origin    []byte  `cbor:"3,keyasint"`
	Timestamp *uint64 `cbor:"4,keyasint"`
	Body      []byte  `cbor:"5,keyasint"`
	Signature []byte  `cbor:"6,keyasint"`
	TTL       *uint64 `cbor:"7,keyasint"`
}

// Sign validates body and returns an envelope for it, signed by key, with
// the given timestamp (millisecond precision) and TTL = DefaultTTL.
func Sign(key *identity.Key, ts time.Time, body Body) (*Envelope, error) {
	if key == nil || body == nil {
		return nil, fmt.Errorf("signing envelope: %w: nil key or body", ErrInvalid)
	}
	e, err := newEnvelope(key.ID(), ts, body)
	if err != nil {
		return nil, fmt.Errorf("signing %w", err)
	}
	e.TTL = DefaultTTL
	sb, err := e.SignedBytes()
	if err != nil {
		return nil, fmt.Errorf("signing %v: %w", body.Type(), err)
	}
	e.Signature = key.Sign(sb)
	if _, err := e.Marshal(); err != nil {
		return nil, fmt.Errorf("signing %v: %w", body.Type(), err)
	}
	return e, nil
}

// Unsigned validates body, a link message of a type that may travel
// unsigned (IHave, Graft, Prune), and returns an envelope for it from
// origin with the given timestamp, TTL 0 and an empty signature.
func Unsigned(origin identity.NodeID, ts time.Time, body Body) (*Envelope, error) {
	if body == nil || !MayBeUnsigned(body.Type()) {
		return nil, fmt.Errorf("making an unsigned envelope: %w: only IHave, Graft and Prune travel unsigned", ErrInvalid)
	}
	e, err := newEnvelope(origin, ts, body)
	if err != nil {
		return nil, fmt.Errorf("making %w", err)
	}
	e.Signature = []byte{}
	if _, err := e.Marshal(); err != nil {
		return nil, fmt.Errorf("making %v: %w", body.Type(), err)
	}
	return e, nil
}

// newEnvelope validates and encodes body into an envelope from origin at
// ts, with neither signature nor TTL yet. Its errors start with the type.
func newEnvelope(origin identity.NodeID, ts time.Time, body Body) (*Envelope, error) {
	if err := body.Validate(); err != nil {
		return nil, fmt.Errorf("%v: %w", body.Type(), err)
	}
	ms := ts.UnixMilli()
	if ms < 0 {
		return nil, fmt.Errorf("%v: %w: timestamp %v before 1970", body.Type(), ErrInvalid, ts)
	}
	enc, err := body.encode()
	if err != nil {
		return nil, fmt.Errorf("%v: encoding body: %w", body.Type(), err)
	}
	if len(enc) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%v: %w: body of %d bytes", body.Type(), ErrTooLarge, len(enc))
	}
	return &Envelope{Version: ProtocolVersion, Type: body.Type(), Origin: origin, Timestamp: uint64(ms), Body: enc}, nil
}

// Unsigned reports whether the envelope carries no signature: an IHave,
// Graft or Prune, which only the peer it came from can have sent (the
// Noise handshake bound to the connection authenticates the peer), and
// which is never relayed or stored. VerifyUnsigned checks it.
func (e *Envelope) Unsigned() bool { return len(e.Signature) == 0 }

// signatureOK reports whether sig has a length the envelope's type
// allows: 64 bytes, or empty for a type that may travel unsigned.
func signatureOK(t MsgType, sig []byte) bool {
	return len(sig) == signatureLen || len(sig) == 0 && MayBeUnsigned(t)
}

// SignedBytes returns what the origin signs: GossipDomain, one 0x00 byte,
// then the core deterministic CBOR encoding of the map {1 version, 2 type,
// 3 origin, 4 timestamp, 5 body}.
func (e *Envelope) SignedBytes() ([]byte, error) {
	b := make([]byte, 0, len(GossipDomain)+headRoom+len(e.Body))
	b = append(append(b, GossipDomain...), 0, 0xa5) // the domain, then a map of 5
	return e.appendSigned(b), nil
}

// ID returns the message id, SHA-256 of SignedBytes.
func (e *Envelope) ID() MessageID {
	sb, err := e.SignedBytes()
	if err != nil {
		// Encoding integers and byte strings cannot fail.
		panic("wire: " + err.Error())
	}
	return sha256.Sum256(sb)
}

// Marshal returns the envelope's core deterministic CBOR encoding. It fails
// with ErrTooLarge above MaxEnvelopeSize and with ErrInvalid for an envelope
// no receiver would accept the shape of (TTL above MaxTTL, no signature where one is due).
func (e *Envelope) Marshal() ([]byte, error) {
	if e.TTL > MaxTTL {
		return nil, fmt.Errorf("encoding envelope: %w: ttl %d above %d", ErrInvalid, e.TTL, MaxTTL)
	}
	if !signatureOK(e.Type, e.Signature) {
		return nil, fmt.Errorf("encoding envelope: %w: %v with a signature of %d bytes, want %d", ErrInvalid, e.Type, len(e.Signature), signatureLen)
	}
	if len(e.Body) > MaxEnvelopeSize {
		return nil, fmt.Errorf("encoding envelope: %w: body of %d bytes", ErrTooLarge, len(e.Body))
	}
	b := append(make([]byte, 0, headRoom+len(e.Body)), 0xa7) // a map of 7
	b = e.appendSigned(b)
	b = appendBytesField(b, 6, e.Signature)
	b = appendUintField(b, 7, uint64(e.TTL))
	if len(b) > MaxEnvelopeSize {
		return nil, fmt.Errorf("encoding envelope: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxEnvelopeSize)
	}
	return b, nil
}

// Unmarshal decodes an envelope strictly. The size is checked before
// decoding. It checks the shape (every key present, a valid origin key, a
// 64-byte signature or, for IHave, Graft and Prune, an empty one, TTL at
// most MaxTTL) but not the version, signature or timestamp: that is Verify
// (VerifyUnsigned for an unsigned one). Bytes from the network then go
// through it and DecodeBody before anything in them is used.
func Unmarshal(b []byte) (*Envelope, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, fmt.Errorf("decoding envelope: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxEnvelopeSize)
	}
	w, ok := readCanonicalEnvelope(b)
	if !ok {
		w = envelopeDecodeCBOR{}
		if err := cborx.Unmarshal(b, &w); err != nil {
			return nil, decodeError("envelope", err)
		}
	}
	missing := func(key int, name string) error {
		return fmt.Errorf("decoding envelope: %w: key %d (%s) missing or null", ErrMalformed, key, name)
	}
	switch {
	case w.Version == nil:
		return nil, missing(1, "version")
	case w.Type == nil:
		return nil, missing(2, "type")
	case w.Origin == nil:
		return nil, missing(3, "origin")
	case w.Timestamp == nil:
		return nil, missing(4, "timestamp")
	case w.Body == nil:
		return nil, missing(5, "body")
	case w.Signature == nil:
		return nil, missing(6, "signature")
	case w.TTL == nil:
		return nil, missing(7, "ttl")
	}
	origin, err := parseOrigin(w.Origin)
	if err != nil {
		return nil, fmt.Errorf("decoding envelope: %w: origin: %w", ErrMalformed, err)
	}
	if !signatureOK(MsgType(*w.Type), w.Signature) {
		return nil, fmt.Errorf("decoding envelope: %w: type %d with a signature of %d bytes, want %d", ErrMalformed, *w.Type, len(w.Signature), signatureLen)
	}
	if *w.TTL > MaxTTL {
		return nil, fmt.Errorf("decoding envelope: %w: ttl %d above %d", ErrInvalid, *w.TTL, MaxTTL)
	}
	return &Envelope{
		Version:   *w.Version,
		Type:      MsgType(*w.Type),
		Origin:    origin,
		Timestamp: *w.Timestamp,
		Body:      w.Body,
		Signature: w.Signature,
		TTL:       uint8(*w.TTL),
	}, nil
}

// Verify checks, in this order, the version (ErrBadVersion), the signature
// (ErrBadSignature), that the timestamp is not more than MaxFutureSkew after
// now (ErrFutureTimestamp) and not more than MaxAge before now (ErrExpired).
// The signature comes before freshness so that ErrFutureTimestamp and
// ErrExpired are only ever said of authentic messages (clock skew, not
// forgery). Verify does not look at the body; DecodeBody does.
func (e *Envelope) Verify(now time.Time) error { return e.VerifyWith(now, nil) }

// SignatureCheck reports whether sig is origin's signature over signed.
// The default is Ed25519 verification (identity.NodeID.Verify); a
// simulator may memoise it, since the answer depends on the bytes alone.
type SignatureCheck func(origin identity.NodeID, signed, sig []byte) bool

// VerifyWith is Verify with the signature checked by check (nil: the
// Ed25519 check).
func (e *Envelope) VerifyWith(now time.Time, check SignatureCheck) error {
	sb, err := e.SignedBytes()
	if err != nil {
		return fmt.Errorf("verifying envelope: %w", err)
	}
	return e.VerifySigned(now, sb, check)
}

// VerifySigned is VerifyWith given the envelope's SignedBytes, for a
// caller that has them already (it hashed them for the message id). An
// unsigned envelope fails with ErrBadSignature.
func (e *Envelope) VerifySigned(now time.Time, signed []byte, check SignatureCheck) error {
	if check == nil {
		check = identity.NodeID.Verify
	}
	if e.Version != ProtocolVersion {
		return fmt.Errorf("verifying envelope: %w: version %d, want %d", ErrBadVersion, e.Version, ProtocolVersion)
	}
	if e.Unsigned() || !check(e.Origin, signed, e.Signature) {
		return fmt.Errorf("verifying envelope %v from %s: %w", e.Type, e.Origin, ErrBadSignature)
	}
	return e.fresh(now)
}

// VerifyUnsigned checks an unsigned link message as Verify checks a
// signed one, but for the signature: the version, then the timestamp. Its
// caller must have received it straight from its origin over an
// authenticated connection; a signed envelope fails with ErrInvalid.
func (e *Envelope) VerifyUnsigned(now time.Time) error {
	if !e.Unsigned() {
		return fmt.Errorf("verifying envelope %v from %s: %w: it is signed", e.Type, e.Origin, ErrInvalid)
	}
	if e.Version != ProtocolVersion {
		return fmt.Errorf("verifying envelope: %w: version %d, want %d", ErrBadVersion, e.Version, ProtocolVersion)
	}
	return e.fresh(now)
}

// fresh checks that the timestamp is not more than MaxFutureSkew after
// now (ErrFutureTimestamp) and not more than MaxAge before (ErrExpired).
func (e *Envelope) fresh(now time.Time) error {
	nowMs := max(now.UnixMilli(), 0)
	if latest := uint64(nowMs) + uint64(MaxFutureSkew.Milliseconds()); e.Timestamp > latest {
		return fmt.Errorf("verifying envelope %v from %s: %w: %d ms after now", e.Type, e.Origin, ErrFutureTimestamp, e.Timestamp-uint64(nowMs))
	}
	if earliest := nowMs - MaxAge.Milliseconds(); earliest > 0 && e.Timestamp < uint64(earliest) {
		return fmt.Errorf("verifying envelope %v from %s: %w: %d ms old", e.Type, e.Origin, ErrExpired, uint64(nowMs)-e.Timestamp)
	}
	return nil
}

// DecodeBody decodes Body according to Type: strictly, requiring the
// canonical encoding, then Validate. Unknown types give ErrUnknownType.
func (e *Envelope) DecodeBody() (Body, error) {
	if len(e.Body) > MaxEnvelopeSize {
		return nil, fmt.Errorf("decoding %v body: %w: %d bytes", e.Type, ErrTooLarge, len(e.Body))
	}
	var (
		body Body
		err  error
	)
	switch e.Type {
	case TypeNodeAnnouncement:
		body, err = decodeNodeAnnouncement(e.Body)
	case TypeRepoAnnouncement:
		body, err = decodeRepoAnnouncement(e.Body)
	case TypeActivityAnnouncement:
		body, err = decodeActivityAnnouncement(e.Body)
	case TypeSubscribe:
		body, err = decodeSubscribe(e.Body)
	case TypeIHave:
		var ids []MessageID
		ids, err = decodeLinkIDs("IHave", e.Body)
		body = &IHave{IDs: ids}
	case TypeGraft:
		var ids []MessageID
		ids, err = decodeLinkIDs("Graft", e.Body)
		body = &Graft{IDs: ids}
	case TypePrune:
		body, err = decodePrune(e.Body)
	default:
		return nil, fmt.Errorf("decoding body: %w: %d", ErrUnknownType, uint64(e.Type))
	}
	if err != nil {
		return nil, err
	}
	if err := body.Validate(); err != nil {
		return nil, fmt.Errorf("decoding %v body: %w", e.Type, err)
	}
	return body, nil
}

// Relayed returns a copy of the envelope to forward, with TTL one less, or
// false when the TTL is 0 and the envelope must not be relayed further.
func (e *Envelope) Relayed() (*Envelope, bool) {
	if e.TTL == 0 {
		return nil, false
	}
	c := *e
	c.Body = bytes.Clone(e.Body)
	c.Signature = bytes.Clone(e.Signature)
	c.TTL--
	return &c, true
}

// orEmpty returns b, or an empty non-nil slice for nil: the encoder writes a
// nil slice as CBOR null, and the wire wants a byte string or array.
func orEmpty[T any](b []T) []T {
	if b == nil {
		return []T{}
	}
	return b
}
