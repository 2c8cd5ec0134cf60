package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Service is what the daemon implements for the server. Methods get the
// calling connection's context, which is cancelled when the caller hangs up
// or the server stops; long operations must return soon after.
//
// To choose the code the caller sees, return an *Error (Errorf); a
// context.DeadlineExceeded becomes CodeTimeout and anything else
// CodeInternalError with the error's text as message. Params are validated
// by the server before a method is called (node.connect's address is parsed;
// repo.* ids come parsed and in canonical form, paths absolute and clean).
// Results may leave any list nil: the server sends it as [].
type Service interface {
	NodeInfo(ctx context.Context) (NodeInfo, error)
	NodePeers(ctx context.Context) ([]Peer, error)
	NodeList(ctx context.Context) ([]NodeEntry, error)
	NodeConnect(ctx context.Context, p ConnectParams) (Peer, error)
	// NodeStop makes the daemon shut down cleanly, as SIGTERM does, and
	// returns without waiting for it. The server calls it once node.stop's
	// answer has been sent (so the caller hears it before its connection
	// closes); an error then has nobody to reach and is dropped.
	NodeStop(ctx context.Context) error

	// Subscribe returns a channel of events of the given types (all types if
	// types is empty) and a cancel func. The channel is closed after cancel
	// or at daemon shutdown. The daemon must never block on a subscriber:
	// when a channel is full it drops the subscriber (closes its channel),
	// and the server then closes that client's connection so the client
	// knows its stream ended.
	Subscribe(types []string) (<-chan Event, func())

	// RepoService serves the repo.* methods. The ProgressFunc given to the
	// long ones is never nil; it may be called from any goroutine until the
	// method returns (calls after that are dropped), and may block while a
	// slow caller reads.
	RepoService

	// IssueService serves the issue.* methods.
	IssueService

	// PatchService serves the patch.* methods.
	PatchService
}

// handlerFunc serves one method: it checks the raw params, calls the
// Service, and returns the result to send (or an error to map to a code).
// The result may hold nil slices: encodeResult sends them as [].
// A handler that must talk before its answer uses c.Notify (e.g. c.Progress
// for long operations, which the caller receives before the answer, in
// order); one that streams after its answer sets c.after.
type handlerFunc func(ctx context.Context, svc Service, c *call) (any, error)

// call is one request as a handler sees it.
type call struct {
	// Method is the method's name.
	Method string
	// Params is the raw "params" member, nil when absent.
	Params json.RawMessage
	// ID is the request's id as sent (a JSON number or string), nil for a
	// notification.
	ID json.RawMessage
	// Notify sends a notification to the calling connection. Notifications
	// sent before the handler returns reach the caller before the answer.
	Notify func(method string, params any) error
	// CloseConn closes the calling connection.
	CloseConn func()

	// progressInterval overrides ProgressInterval (tests shorten it); 0
	// means the default.
	progressInterval time.Duration

	// after, if set by the handler, runs once the answer is sent (or could
	// not be), on the same goroutine, so what it sends follows the answer in
	// order. It must return when ctx is done.
	after func(ctx context.Context)
}

// noParams accepts an absent params member, null, {} or [].
func noParams(c *call) error {
	switch string(bytes.TrimSpace(c.Params)) {
	case "", "null", "{}", "[]":
		return nil
	}
	return Errorf(CodeInvalidParams, "%s takes no params", c.Method)
}

// decodeParams decodes a params object into v, strictly: unknown fields,
// trailing data and by-position (array) params are refused.
func decodeParams(c *call, v any) error {
	raw := bytes.TrimSpace(c.Params)
	if len(raw) == 0 || string(raw) == "null" {
		return nil // all fields absent; the handler checks what is required
	}
	if raw[0] != '{' {
		return Errorf(CodeInvalidParams, "%s: params must be a JSON object", c.Method)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeInvalidParams, "%s: invalid params: %s", c.Method, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return Errorf(CodeInvalidParams, "%s: invalid params: data after the params object", c.Method)
	}
	return nil
}
