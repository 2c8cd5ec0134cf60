package wire

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/megaengine/megaengine/protocol/cborx"
)

// Errors returned by this package. They are wrapped with detail; test with
// errors.Is. spec/wire.md says which step of the verification produces which.
var (
	// ErrTooLarge: the input, or something being encoded, exceeds a size
	// limit (MaxEnvelopeSize, MaxSignedRefsSize, or a decoder count limit).
	ErrTooLarge = errors.New("too large")

	// ErrMalformed: the bytes are not a well-formed, strictly and (where
	// required) canonically encoded message of the expected shape.
	ErrMalformed = errors.New("malformed")

	// ErrUnknownType: the envelope's type is not in this version's registry.
	ErrUnknownType = errors.New("unknown message type")

	// ErrBadSignature: the signature does not verify under the claimed key.
	ErrBadSignature = errors.New("bad signature")

	// ErrFutureTimestamp: the timestamp is more than MaxFutureSkew ahead.
	ErrFutureTimestamp = errors.New("timestamp in the future")

	// ErrExpired: the timestamp is more than MaxAge in the past.
	ErrExpired = errors.New("expired")

	// ErrBadVersion: the envelope's version is not ProtocolVersion.
	ErrBadVersion = errors.New("unsupported protocol version")

	// ErrInvalid: the message decoded but a field breaks a rule (a length,
	// a range, an order, a syntax).
	ErrInvalid = errors.New("invalid")
)

// decodeError classifies an error from the CBOR decoder: count limits are
// ErrTooLarge, everything else ErrMalformed. The decoder's own error is kept
// in the chain (for errors.As) and in the message.
func decodeError(what string, err error) error {
	var (
		arr  *cbor.MaxArrayElementsError
		mp   *cbor.MaxMapPairsError
		nest *cbor.MaxNestedLevelError
	)
	if errors.As(err, &arr) || errors.As(err, &mp) || errors.As(err, &nest) {
		return fmt.Errorf("decoding %s: %w: %w", what, ErrTooLarge, err)
	}
	if errors.Is(err, cborx.ErrNonCanonical) {
		return fmt.Errorf("decoding %s: %w: %w (every key present, no nulls, core deterministic encoding)", what, ErrMalformed, err)
	}
	return fmt.Errorf("decoding %s: %w: %w", what, ErrMalformed, err)
}

// invalid returns an ErrInvalid with detail.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
