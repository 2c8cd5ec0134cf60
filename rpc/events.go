package rpc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// NotifyEvent is the notification that carries one Event to a connection
// that called events.subscribe.
const NotifyEvent = "event"

// Event types, the Type of an Event. Append-only.
const (
	// EventPeerConnected: a connection to DID was authenticated; Alias and
	// Addresses describe the peer when known.
	EventPeerConnected = "peer.connected"
	// EventPeerDisconnected: the connection to DID closed; Reason says why.
	EventPeerDisconnected = "peer.disconnected"
	// EventNodeDiscovered: a node that was not in the routing table
	// announced itself (DID, Alias, Addresses).
	EventNodeDiscovered = "node.discovered"
	// EventRepoAnnounced: DID announced repository Repo (new or updated).
	EventRepoAnnounced = "repo.announced"
	// EventCobChanged: the state of collaborative object Object (of type
	// ObjectType, e.g. "issue") of repository Repo changed: a change made
	// on this node, or one a fetch brought.
	EventCobChanged = "cob.changed"
	// EventRepoSyncStarted: a sync of Repo began (DID: the holder
	// preferred, if any).
	EventRepoSyncStarted = "repo.sync.started"
	// EventRepoSyncFinished: a sync of Repo ended well; Bytes were
	// received, from DID (empty when already up to date).
	EventRepoSyncFinished = "repo.sync.finished"
	// EventRepoSyncFailed: a sync of Repo failed; Reason says why.
	EventRepoSyncFailed = "repo.sync.failed"
	// EventRepoPublished: this node signed and announced new refs of Repo.
	EventRepoPublished = "repo.published"
)

var eventTypes = []string{EventPeerConnected, EventPeerDisconnected, EventNodeDiscovered, EventRepoAnnounced, EventCobChanged,
	EventRepoSyncStarted, EventRepoSyncFinished, EventRepoSyncFailed, EventRepoPublished}

// EventTypes returns every event type the daemon may send, in the order they
// were added.
func EventTypes() []string { return slices.Clone(eventTypes) }

// SubscribeParams are the params of events.subscribe.
type SubscribeParams struct {
	// Types selects event types (EventTypes); empty means all of them.
	Types []string `json:"types,omitempty"`
}

// SubscribeResult is the result of events.subscribe.
type SubscribeResult struct {
	// Subscribed is always true in a successful answer.
	Subscribed bool `json:"subscribed"`
}

// Event is the params of an "event" notification.
type Event struct {
	// Type is one of EventTypes.
	Type string `json:"type"`
	// Time is when the daemon observed the event.
	Time time.Time `json:"time"`
	// DID is the node the event is about.
	DID string `json:"did,omitempty"`
	// Repo is the repository id (did:repo:…) for repo.* events.
	Repo string `json:"repo,omitempty"`
	// Alias is the node's alias, when known.
	Alias string `json:"alias,omitempty"`
	// Addresses are the node's addresses, when relevant.
	Addresses []string `json:"addresses,omitempty"`
	// Reason explains a disconnection or a failure.
	Reason string `json:"reason,omitempty"`
	// ObjectType and Object name a collaborative object (cob.changed).
	ObjectType string `json:"object_type,omitempty"`
	Object     string `json:"object,omitempty"`
	// Bytes is what a finished sync received.
	Bytes int64 `json:"bytes,omitempty"`
}

func handleEventsSubscribe(ctx context.Context, svc Service, c *call) (any, error) {
	var p SubscribeParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	for _, t := range p.Types {
		if !slices.Contains(eventTypes, t) {
			return nil, Errorf(CodeInvalidParams, "%s: unknown event type %q (known: %s)", c.Method, t, strings.Join(eventTypes, ", "))
		}
	}
	events, cancel := svc.Subscribe(p.Types)
	if events == nil {
		if cancel != nil {
			cancel()
		}
		return nil, Errorf(CodeUnavailable, "events are not available")
	}
	c.after = func(ctx context.Context) {
		defer cancel()
		if forwardEvents(ctx, events, p.Types, c.Notify) {
			// The daemon ended the stream (shutdown, or this subscriber fell
			// behind): closing the connection is how the client learns it.
			c.CloseConn()
		}
	}
	return SubscribeResult{Subscribed: true}, nil
}

// forwardEvents sends the events that match types as notifications, in
// order, until ctx is done, the channel closes or a send fails. It reports
// whether the channel was closed.
func forwardEvents(ctx context.Context, events <-chan Event, types []string, notify func(string, any) error) (closed bool) {
	for {
		if ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-events:
			if !ok {
				return true
			}
			if len(types) > 0 && !slices.Contains(types, ev.Type) {
				continue // the Service should have filtered; the contract is kept here
			}
			if err := notify(NotifyEvent, ev); err != nil {
				return false
			}
		}
	}
}

// Subscribe calls events.subscribe for the given types (nil: all) and calls
// fn for each event, in order, until ctx is done (it then returns nil) or
// the daemon closes the stream (an error wrapping ErrClosed). It uses a
// connection of its own, so calls on c go on meanwhile and ending the
// subscription ends it on the daemon too. fn runs on that connection's read
// goroutine, never after Subscribe returns; while it blocks, no more events
// are read.
func (c *Client) Subscribe(ctx context.Context, types []string, fn func(Event)) error {
	conn, err := dialSocket(ctx, c.root, c.path, 0)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	stopped := false
	sc := newClient(conn, c.root, c.path, func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			fn(ev)
		}
	})
	defer func() {
		sc.Close()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}()
	var res SubscribeResult
	if err := sc.Call(ctx, MethodEventsSubscribe, SubscribeParams{Types: types}, &res, nil); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-sc.conn.DisconnectNotify():
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("event stream from %s ended: %w", c.path, ErrClosed)
	}
}
