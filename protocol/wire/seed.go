package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Seed requests (spec/node.md §6) run on a bidirectional stream of kind
// seed: the requester sends one frame holding a SeedRequest, the receiver
// answers one frame holding a SeedReply. A frame is a 2-byte big-endian
// length (1..MaxSeedFrame) and the CBOR bytes.

// SeedRequestDomain separates seed request signatures.
const SeedRequestDomain = "megaengine/1 seed-request"

// FeatureSeedRequests is the NodeAnnouncement feature of a node that
// answers seed requests (whether it accepts them or not): only such nodes
// are asked, so a node of an earlier release never sees the stream kind.
const FeatureSeedRequests = "seed-requests"

// Seed request limits.
const (
	// MaxSeedFrame bounds one frame of the seed exchange (a request is
	// about 150 bytes, a reply at most MaxSeedReason + a few).
	MaxSeedFrame = 512
	// MaxSeedReason bounds a reply's reason, in bytes.
	MaxSeedReason = 200
	// MaxSeedSkew is how far a request's timestamp may be from the
	// receiver's clock, either way.
	MaxSeedSkew = 5 * time.Minute
)

// Seed reply codes (SeedReply.Code). ONLY APPEND TO THIS LIST.
const (
	SeedAccepted     = 0 // the receiver seeds the repository: now, or already
	SeedNotAccepting = 1 // the receiver takes no seed requests
	SeedOverBudget   = 2 // the requester's or the receiver's budget is used up
	SeedBadRequest   = 3 // malformed, badly signed, stale, or not signed by the peer
	SeedRefused      = 4 // refused for another reason (low disk, the owner dropped the repository)
)

// SeedRequest asks the receiver to seed (replicate and serve) Repo, signed
// by Requester, who must be the peer that sends it.
//
// Map keys (ONLY APPEND, never renumber); all are required:
// 1 repo (34-byte multihash), 2 requester (32-byte key), 3 timestamp
// (uint, Unix ms), 4 signature (64 bytes, over SeedRequestDomain ‖ 0x00 ‖
// the canonical CBOR of keys 1–3).
type SeedRequest struct {
	Repo      identity.RepoID
	Requester identity.NodeID
	Timestamp uint64 // Unix ms when signed
	Signature []byte
}

type seedRequestSignedCBOR struct {
	Repo      []byte `cbor:"1,keyasint"`
	Requester []byte `cbor:"2,keyasint"`
	Timestamp uint64 `cbor:"3,keyasint"`
}

type seedRequestCBOR struct {
	Repo      []byte `cbor:"1,keyasint"`
	Requester []byte `cbor:"2,keyasint"`
	Timestamp uint64 `cbor:"3,keyasint"`
	Signature []byte `cbor:"4,keyasint"`
}

// SignSeedRequest makes key's request to seed repo, signed at now.
func SignSeedRequest(key *identity.Key, repo identity.RepoID, now time.Time) (*SeedRequest, error) {
	r := &SeedRequest{Repo: repo, Requester: key.ID(), Timestamp: uint64(now.UnixMilli())}
	sb, err := r.SignedBytes()
	if err != nil {
		return nil, err
	}
	r.Signature = key.Sign(sb)
	return r, nil
}

// SignedBytes returns what the requester signs.
func (r *SeedRequest) SignedBytes() ([]byte, error) {
	if r.Repo.IsZero() || r.Timestamp == 0 {
		return nil, invalid("seed request without a repository or a timestamp")
	}
	enc, err := cborx.Marshal(seedRequestSignedCBOR{r.Repo.Multihash(), r.Requester[:], r.Timestamp})
	if err != nil {
		return nil, fmt.Errorf("encoding seed request: %w", err)
	}
	return domainBytes(SeedRequestDomain, enc), nil
}

// Marshal returns the canonical encoding.
func (r *SeedRequest) Marshal() ([]byte, error) {
	if len(r.Signature) != signatureLen {
		return nil, invalid("seed request signature of %d bytes, want %d", len(r.Signature), signatureLen)
	}
	if _, err := r.SignedBytes(); err != nil {
		return nil, err
	}
	return cborx.Marshal(seedRequestCBOR{r.Repo.Multihash(), r.Requester[:], r.Timestamp, r.Signature})
}

// UnmarshalSeedRequest decodes a request strictly and checks its
// signature; it does not check the timestamp (see Fresh).
func UnmarshalSeedRequest(b []byte) (*SeedRequest, error) {
	if len(b) > MaxSeedFrame {
		return nil, fmt.Errorf("decoding seed request: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxSeedFrame)
	}
	var c seedRequestCBOR
	if err := cborx.UnmarshalCanonical(b, &c); err != nil {
		return nil, decodeError("seed request", err)
	}
	repo, err := identity.RepoIDFromMultihash(c.Repo)
	if err != nil {
		return nil, invalid("seed request repository: %v", err)
	}
	node, err := identity.NodeIDFromPublicKey(c.Requester)
	if err != nil {
		return nil, invalid("seed request requester: %v", err)
	}
	if len(c.Signature) != signatureLen {
		return nil, invalid("seed request signature of %d bytes, want %d", len(c.Signature), signatureLen)
	}
	r := &SeedRequest{Repo: repo, Requester: node, Timestamp: c.Timestamp, Signature: c.Signature}
	sb, err := r.SignedBytes()
	if err != nil {
		return nil, err
	}
	if !node.Verify(sb, r.Signature) {
		return nil, fmt.Errorf("seed request of %s for %s: %w", node, repo, ErrBadSignature)
	}
	return r, nil
}

// Fresh checks that the request was signed within MaxSeedSkew of now.
func (r *SeedRequest) Fresh(now time.Time) error {
	ts := time.UnixMilli(int64(min(r.Timestamp, 1<<62)))
	switch {
	case ts.After(now.Add(MaxSeedSkew)):
		return fmt.Errorf("seed request signed at %s: %w", ts.UTC().Format(time.RFC3339), ErrFutureTimestamp)
	case ts.Before(now.Add(-MaxSeedSkew)):
		return fmt.Errorf("seed request signed at %s: %w", ts.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// SeedReply answers a SeedRequest.
//
// Map keys (ONLY APPEND, never renumber): 1 code (uint, a Seed… code;
// required), 2 reason (text, at most MaxSeedReason bytes; required, may
// be empty).
type SeedReply struct {
	Code   uint64 `cbor:"1,keyasint"`
	Reason string `cbor:"2,keyasint"`
}

// Marshal returns the canonical encoding.
func (r *SeedReply) Marshal() ([]byte, error) {
	if len(r.Reason) > MaxSeedReason {
		return nil, invalid("seed reply reason of %d bytes, max %d", len(r.Reason), MaxSeedReason)
	}
	return cborx.Marshal(r)
}

// UnmarshalSeedReply decodes a reply strictly. A code this version does
// not know is kept: the receiver treats it as a refusal.
func UnmarshalSeedReply(b []byte) (*SeedReply, error) {
	if len(b) > MaxSeedFrame {
		return nil, fmt.Errorf("decoding seed reply: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxSeedFrame)
	}
	var r SeedReply
	if err := cborx.UnmarshalCanonical(b, &r); err != nil {
		return nil, decodeError("seed reply", err)
	}
	if len(r.Reason) > MaxSeedReason {
		return nil, invalid("seed reply reason of %d bytes, max %d", len(r.Reason), MaxSeedReason)
	}
	return &r, nil
}

// WriteSeedFrame writes one frame of the seed exchange.
func WriteSeedFrame(w io.Writer, b []byte) error {
	if len(b) == 0 || len(b) > MaxSeedFrame {
		return fmt.Errorf("seed frame: %w: %d bytes, want 1-%d", ErrTooLarge, len(b), MaxSeedFrame)
	}
	_, err := w.Write(append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b))), b...))
	return err
}

// ReadSeedFrame reads one frame, checking its length before allocating.
func ReadSeedFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > MaxSeedFrame {
		return nil, fmt.Errorf("seed frame: %w: %d bytes, want 1-%d", ErrTooLarge, n, MaxSeedFrame)
	}
	b := make([]byte, n) // bounded by MaxSeedFrame
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
