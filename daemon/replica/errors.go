package replica

import (
	"errors"
	"fmt"
)

// Domain errors. Every error the service returns for a reason the caller
// can act on wraps one of these; the daemon maps them to RPC codes.
var (
	ErrNotFound    = errors.New("not found")         // unknown repository, namespace or holder
	ErrInvalid     = errors.New("invalid argument")  // bad path, id, name or refs
	ErrConflict    = errors.New("conflict")          // diverged, local changes, a watched repository
	ErrPermission  = errors.New("permission denied") // another node's namespace
	ErrUnavailable = errors.New("unavailable")       // no holder could serve it now
	ErrTooLarge    = errors.New("over budget")       // a transfer crossed a size budget
	ErrTampered    = errors.New("not as signed")     // a replica's refs differ from the signed refs: not served
)

// kindError is an error of a domain kind whose text is its message alone.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// errorf makes an error of kind; format may wrap with %w.
func errorf(kind error, format string, a ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, a...)}
}
