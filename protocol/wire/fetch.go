package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// The fetch exchange (spec/repo.md) runs on a bidirectional stream of kind
// fetch. Both directions are sequences of frames: type (1 byte) ‖ length
// (4 bytes, big-endian) ‖ payload. The client sends one FrameRequest; the
// server answers FrameHeader, then any number of FramePack chunks holding a
// git pack, then FrameEnd — or FrameError at any point.
//
// Frame types: ONLY APPEND TO THIS LIST.
const (
	FrameRequest byte = 1 // CBOR FetchRequest
	FrameHeader  byte = 2 // CBOR FetchHeader
	FramePack    byte = 3 // raw pack bytes, 1..MaxPackChunk
	FrameEnd     byte = 4 // CBOR FetchEnd
	FrameError   byte = 5 // CBOR FetchError
)

// Fetch limits.
const (
	MaxFetchRequestSize = 1 << 20  // a request frame
	MaxFetchHeaderSize  = 16 << 20 // a header frame (doc and signed refs)
	MaxPackChunk        = 64 << 10 // one pack frame
	MaxFetchSmallFrame  = 4 << 10  // end and error frames
	MaxHaves            = 4096     // object ids in a request
	MaxFetchNamespaces  = 64       // namespaces in a request or a header
	// MaxPackSize bounds the pack bytes of one fetch: a receiver cuts the
	// transfer as soon as more arrives. Sized for large real repositories
	// (the Linux kernel's full pack is about 5 GiB; most are far below 1 GiB).
	MaxPackSize = 2 << 30
)

// Fetch status codes (FetchHeader.Status and FetchError.Code). ONLY APPEND.
const (
	FetchOK       = 0 // the header carries the doc and the newer signed refs
	FetchNotFound = 1 // the server does not hold the repository
	FetchBusy     = 2 // try later or elsewhere
	FetchFailed   = 3 // the server failed while serving (FrameError)
	FetchBadInput = 4 // the request was malformed
)

// KnownRefs tells the server which signed refs the client already holds.
type KnownRefs struct {
	_    struct{} `cbor:",toarray"`
	Node []byte   // 32-byte node key
	Seq  uint64
}

// FetchRequest asks for a repository. Map keys (ONLY APPEND): 1 repo,
// 2 namespaces (node keys whose refs are wanted; empty: every namespace the
// server holds), 3 known (signed refs seqs the client holds: namespaces not
// newer than these are left out), 4 haves (object ids the client has, the
// tips of its refs: the pack is thin against them).
type FetchRequest struct {
	Repo       []byte      `cbor:"1,keyasint"`
	Namespaces [][]byte    `cbor:"2,keyasint"`
	Known      []KnownRefs `cbor:"3,keyasint"`
	Haves      [][]byte    `cbor:"4,keyasint"`
}

// FetchHeader answers a request. Map keys (ONLY APPEND): 1 status, 2
// message, 3 doc (the encoded first RepoDoc; empty unless status is OK),
// 4 refs (encoded SignedRefs of the namespaces newer than the client's),
// 5 versions (the later document versions in order; absent if none), 6
// proposal (a next version still short of signatures; absent if none).
type FetchHeader struct {
	Status   uint64   `cbor:"1,keyasint"`
	Message  string   `cbor:"2,keyasint"`
	Doc      []byte   `cbor:"3,keyasint"`
	Refs     [][]byte `cbor:"4,keyasint"`
	Versions [][]byte `cbor:"5,keyasint,omitempty"`
	Proposal []byte   `cbor:"6,keyasint,omitempty"`
}

// FetchEnd closes a pack. Map keys (ONLY APPEND): 1 size (bytes of pack
// sent), 2 digest (SHA-256 of those bytes).
type FetchEnd struct {
	Size   uint64 `cbor:"1,keyasint"`
	Digest []byte `cbor:"2,keyasint"`
}

// FetchError aborts a fetch. Map keys (ONLY APPEND): 1 code, 2 message.
type FetchError struct {
	Code    uint64 `cbor:"1,keyasint"`
	Message string `cbor:"2,keyasint"`
}

// ErrFrame marks a frame that breaks the framing rules.
var ErrFrame = errors.New("bad fetch frame")

// MaxFrameSize returns the largest payload allowed for a frame type, or 0
// for an unknown type.
func MaxFrameSize(typ byte) int {
	switch typ {
	case FrameRequest:
		return MaxFetchRequestSize
	case FrameHeader:
		return MaxFetchHeaderSize
	case FramePack:
		return MaxPackChunk
	case FrameEnd, FrameError:
		return MaxFetchSmallFrame
	}
	return 0
}

// WriteFetchFrame writes one frame.
func WriteFetchFrame(w io.Writer, typ byte, payload []byte) error {
	if max := MaxFrameSize(typ); max == 0 || len(payload) > max {
		return fmt.Errorf("%w: type %d with %d bytes", ErrFrame, typ, len(payload))
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// WriteFetchMessage encodes v as CBOR and writes it as one frame.
func WriteFetchMessage(w io.Writer, typ byte, v any) error {
	b, err := cborx.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFetchFrame(w, typ, b)
}

// ReadFetchFrame reads one frame, checking its type against the ones
// allowed and its length against MaxFrameSize before allocating.
func ReadFetchFrame(r io.Reader, allowed ...byte) (typ byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	typ = hdr[0]
	if bytes.IndexByte(allowed, typ) < 0 {
		return 0, nil, fmt.Errorf("%w: unexpected type %d", ErrFrame, typ)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if max := MaxFrameSize(typ); int64(n) > int64(max) || (typ == FramePack && n == 0) {
		return 0, nil, fmt.Errorf("%w: type %d of %d bytes", ErrFrame, typ, n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("%w: truncated: %w", ErrFrame, err)
	}
	return typ, payload, nil
}

func checkOID(b []byte) error {
	if len(b) != sha1OIDLen && len(b) != sha256OIDLen {
		return invalid("object id of %d bytes", len(b))
	}
	return nil
}

// DecodeFetchRequest decodes and validates a request.
func DecodeFetchRequest(b []byte) (*FetchRequest, identity.RepoID, error) {
	var q FetchRequest
	if len(b) > MaxFetchRequestSize {
		return nil, identity.RepoID{}, fmt.Errorf("decoding fetch request: %w", ErrTooLarge)
	}
	if err := cborx.Unmarshal(b, &q); err != nil {
		return nil, identity.RepoID{}, decodeError("fetch request", err)
	}
	repo, err := decodeRepoID(q.Repo)
	if err != nil {
		return nil, repo, fmt.Errorf("decoding fetch request: %w", err)
	}
	if len(q.Namespaces) > MaxFetchNamespaces || len(q.Known) > MaxFetchNamespaces || len(q.Haves) > MaxHaves {
		return nil, repo, fmt.Errorf("decoding fetch request: %w: too many namespaces or haves", ErrTooLarge)
	}
	for _, ns := range q.Namespaces {
		if _, err := identity.NodeIDFromPublicKey(ns); err != nil {
			return nil, repo, fmt.Errorf("decoding fetch request: %w: namespace: %w", ErrInvalid, err)
		}
	}
	for _, k := range q.Known {
		if _, err := identity.NodeIDFromPublicKey(k.Node); err != nil {
			return nil, repo, fmt.Errorf("decoding fetch request: %w: known: %w", ErrInvalid, err)
		}
	}
	for _, h := range q.Haves {
		if err := checkOID(h); err != nil {
			return nil, repo, fmt.Errorf("decoding fetch request: %w", err)
		}
	}
	return &q, repo, nil
}

// DecodeFetchHeader decodes a header; the doc and refs inside are opened
// (verified) by the caller with OpenRepoDoc and OpenSignedRefs.
func DecodeFetchHeader(b []byte) (*FetchHeader, error) {
	var h FetchHeader
	if err := cborx.Unmarshal(b, &h); err != nil {
		return nil, decodeError("fetch header", err)
	}
	if len(h.Refs) > MaxFetchNamespaces {
		return nil, fmt.Errorf("decoding fetch header: %w: %d signed refs", ErrTooLarge, len(h.Refs))
	}
	if len(h.Versions) > MaxDocVersions-1 {
		return nil, fmt.Errorf("decoding fetch header: %w: %d document versions", ErrTooLarge, len(h.Versions))
	}
	return &h, nil
}

// DecodeFetchEnd decodes the trailer.
func DecodeFetchEnd(b []byte) (*FetchEnd, error) {
	var e FetchEnd
	if err := cborx.Unmarshal(b, &e); err != nil {
		return nil, decodeError("fetch end", err)
	}
	if len(e.Digest) != digestLen {
		return nil, fmt.Errorf("decoding fetch end: %w: digest of %d bytes", ErrMalformed, len(e.Digest))
	}
	return &e, nil
}

// DecodeFetchError decodes an error frame. Its text is the server's and
// unauthenticated beyond the connection: show it, do not act on it.
func DecodeFetchError(b []byte) (*FetchError, error) {
	var e FetchError
	if err := cborx.Unmarshal(b, &e); err != nil {
		return nil, decodeError("fetch error", err)
	}
	return &e, nil
}
