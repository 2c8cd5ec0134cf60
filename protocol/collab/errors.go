package collab

import (
	"errors"
	"fmt"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Errors of ParseChange and SignChange. The first four are the classes of
// protocol/wire (the same values, so errors.Is works with either name).
// Errors are wrapped with detail; test with errors.Is.
var (
	// ErrTooLarge: the blob or a field exceeds a limit.
	ErrTooLarge = wire.ErrTooLarge

	// ErrMalformed: the bytes are not a strictly and canonically encoded
	// change (a missing, extra or duplicate key, a wrong type, a
	// non-canonical encoding, a field of the wrong length).
	ErrMalformed = wire.ErrMalformed

	// ErrInvalid: the change decoded but breaks a rule (a text, a list
	// order, a clock, the shape of a root change).
	ErrInvalid = wire.ErrInvalid

	// ErrBadSignature: the signature does not verify under the author key.
	ErrBadSignature = wire.ErrBadSignature

	// ErrUnknownType: the object type is not one this version defines.
	ErrUnknownType = errors.New("unknown object type")

	// ErrUnknownAction: an action's type is not one this version defines,
	// or not one the object's type takes; the whole change is rejected.
	ErrUnknownAction = errors.New("unknown action type")
)

// Reasons for which the fold rejects a change (Rejected.Err wraps one).
var (
	// ErrMissingParent: a parent is not in the set.
	ErrMissingParent = errors.New("parent not in the set")

	// ErrRejectedParent: a parent is in the set but was rejected.
	ErrRejectedParent = errors.New("parent rejected")

	// ErrClockNotIncreasing: the clock is not greater than a parent's.
	ErrClockNotIncreasing = errors.New("clock not greater than a parent's")

	// ErrClockJump: the clock exceeds the largest parent clock by more
	// than MaxClockJump.
	ErrClockJump = errors.New("clock jump too large")

	// ErrWrongObject: the change belongs to another object or type.
	ErrWrongObject = errors.New("change of another object")
)

// Reasons for which the fold skips an action (Skipped.Err wraps one).
var (
	// ErrUnauthorized: the author may not perform the action.
	ErrUnauthorized = errors.New("not authorized")

	// ErrNoSuchComment: the action names a comment that does not exist
	// (or not yet, in the fold's order).
	ErrNoSuchComment = errors.New("no such comment")

	// ErrRedacted: the action edits a redacted comment.
	ErrRedacted = errors.New("comment redacted")
)

// Errors of FoldIssue and ResolveChangeID.
var (
	// ErrNoRoot: the set holds no valid root change of the object.
	ErrNoRoot = errors.New("root change not in the set")

	// ErrNotFound: no id has the prefix.
	ErrNotFound = errors.New("no change with that id")

	// ErrAmbiguous: several ids have the prefix.
	ErrAmbiguous = errors.New("ambiguous change id prefix")
)

// decodeError classifies an error of the CBOR decoder.
func decodeError(what string, err error) error {
	if cborx.IsLimitError(err) {
		return fmt.Errorf("decoding %s: %w: %w", what, ErrTooLarge, err)
	}
	return fmt.Errorf("decoding %s: %w: %w", what, ErrMalformed, err)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTooLarge, fmt.Sprintf(format, args...))
}
