package rpc

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the contract: a code, once given a meaning,
// keeps it (append-only). Tools branch on codes, never on messages.
const (
	// Standard JSON-RPC 2.0 codes.

	// CodeParseError: the message is not valid JSON.
	CodeParseError int64 = -32700
	// CodeInvalidRequest: valid JSON but not a valid request object (no
	// method, wrong "jsonrpc" member, bad id, a batch), or a message larger
	// than MaxRequestSize (the connection is then closed).
	CodeInvalidRequest int64 = -32600
	// CodeMethodNotFound: no method of that name.
	CodeMethodNotFound int64 = -32601
	// CodeInvalidParams: the params do not fit the method: wrong shape,
	// unknown field, missing or malformed value. The message names the field
	// and the problem.
	CodeInvalidParams int64 = -32602
	// CodeInternalError: the daemon failed for a reason the caller cannot
	// fix; the message says what failed.
	CodeInternalError int64 = -32603

	// Application codes.

	// CodeNotFound: the node, repository, issue, … named does not exist.
	CodeNotFound int64 = 1001
	// CodeInvalidArgument: the params are well-formed but the request makes
	// no sense in the node's state (e.g. connecting to oneself).
	CodeInvalidArgument int64 = 1002
	// CodeUnavailable: a peer or the network cannot be reached; retrying
	// later may succeed.
	CodeUnavailable int64 = 1003
	// CodeTimeout: the operation did not finish in time.
	CodeTimeout int64 = 1004
	// CodeConflict: the request conflicts with the current state (already
	// exists, concurrent update, not a fast-forward).
	CodeConflict int64 = 1005
	// CodeShuttingDown: the daemon is stopping and takes no new work.
	CodeShuttingDown int64 = 1006
	// CodePermission: the caller or the node is not allowed to do this
	// (e.g. merging a patch without being a delegate).
	CodePermission int64 = 1007
)

var codeText = map[int64]string{
	CodeParseError:      "parse error",
	CodeInvalidRequest:  "invalid request",
	CodeMethodNotFound:  "method not found",
	CodeInvalidParams:   "invalid params",
	CodeInternalError:   "internal error",
	CodeNotFound:        "not found",
	CodeInvalidArgument: "invalid argument",
	CodeUnavailable:     "unavailable",
	CodeTimeout:         "timeout",
	CodeConflict:        "conflict",
	CodeShuttingDown:    "shutting down",
	CodePermission:      "permission denied",
}

// CodeText returns a short name for an error code ("not found"), or "" for
// a code this package does not define.
func CodeText(code int64) string { return codeText[code] }

// Error is a JSON-RPC error: what a Service returns to choose the code the
// caller sees, and what the Client returns when the daemon answers with an
// error (use errors.As).
type Error struct {
	// Code is one of the Code constants.
	Code int64 `json:"code"`
	// Message is one line for humans.
	Message string `json:"message"`
	// Data is optional structured detail. On the client side it holds the
	// raw JSON (a json.RawMessage) as the daemon sent it.
	Data any `json:"data,omitempty"`

	cause error // what Errorf wrapped with %w, for errors.Is on the server side
}

// Error returns the message (or the code's name when there is none).
func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if t := CodeText(e.Code); t != "" {
		return t
	}
	return fmt.Sprintf("error %d", e.Code)
}

// Unwrap returns the error Errorf wrapped, if any.
func (e *Error) Unwrap() error { return e.cause }

// Errorf returns an *Error with the given code and a message formatted as by
// fmt.Errorf; errors wrapped with %w stay reachable by errors.Is and
// errors.As (in this process: only code, message and data cross the socket).
func Errorf(code int64, format string, a ...any) *Error {
	err := fmt.Errorf(format, a...)
	e := &Error{Code: code, Message: err.Error()}
	if u, ok := err.(interface{ Unwrap() error }); ok {
		e.cause = u.Unwrap()
	} else if u, ok := err.(interface{ Unwrap() []error }); ok {
		e.cause = errors.Join(u.Unwrap()...)
	}
	return e
}

// ErrorCode returns the code of the first *Error in err's chain, or 0 if
// there is none.
func ErrorCode(err error) int64 {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return 0
}

// IsCode reports whether err's chain holds an *Error with the given code.
func IsCode(err error, code int64) bool {
	return err != nil && ErrorCode(err) == code
}

// Sentinel errors, wrapped with detail; test with errors.Is.
var (
	// ErrDaemonRunning: Listen found a live daemon on the socket.
	ErrDaemonRunning = errors.New("a daemon is already running")
	// ErrNoDaemon: Dial found no daemon listening on the socket.
	ErrNoDaemon = errors.New("no daemon running")
	// ErrClosed: the connection to the daemon is closed.
	ErrClosed = errors.New("connection to the daemon closed")
	// ErrSocketPath: the socket path is unusable (too long for a unix
	// socket, or taken by something that is not a socket).
	ErrSocketPath = errors.New("unusable socket path")
)
