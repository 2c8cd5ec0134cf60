package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// DialOptions tune DialWith.
type DialOptions struct {
	// Wait is how long to keep retrying while no daemon listens on the
	// socket, for a tool that has just started the daemon; 0 tries once.
	Wait time.Duration
}

// Client is a connection to the daemon with typed methods. It is safe for
// concurrent use; calls on one Client run concurrently on the daemon.
type Client struct {
	root, path string
	conn       *jsonrpc2.Conn
	ids        atomic.Uint64

	mu     sync.Mutex
	routes map[uint64]func(method string, params json.RawMessage) // call id → its onNotify

	onEvent func(Event) // set only on a Subscribe's own connection
}

// Dial connects to the daemon serving root (socket SocketPath(root)). When
// nothing listens there it returns an error wrapping ErrNoDaemon that says
// how to start one.
func Dial(ctx context.Context, root string) (*Client, error) {
	return DialWith(ctx, root, DialOptions{})
}

// DialWith is Dial with options.
func DialWith(ctx context.Context, root string, opts DialOptions) (*Client, error) {
	path := SocketPath(root)
	conn, err := dialSocket(ctx, root, path, opts.Wait)
	if err != nil {
		return nil, err
	}
	return newClient(conn, root, path, nil), nil
}

// noDaemonError is the one line a tool prints when the daemon is not running.
type noDaemonError struct {
	root, path string
	err        error // the dial error
}

func (e *noDaemonError) Error() string {
	return fmt.Sprintf("no daemon running for root %s (socket %s); start one with 'med --root %s' or 'mecli node start'",
		e.root, e.path, e.root)
}

func (e *noDaemonError) Unwrap() []error { return []error{ErrNoDaemon, e.err} }

// testHookDialRefused, set by tests, sees each attempt that found no daemon.
var testHookDialRefused func(error)

// dialSocket connects to path, retrying for up to wait while nobody listens.
func dialSocket(ctx context.Context, root, path string, wait time.Duration) (net.Conn, error) {
	if err := checkSocketPath(path); err != nil {
		return nil, err
	}
	var d net.Dialer
	deadline := time.Now().Add(wait)
	delay := 20 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil || !(errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
			return nil, fmt.Errorf("connecting to the daemon at %s: %w", path, err)
		}
		if testHookDialRefused != nil {
			testHookDialRefused(err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, &noDaemonError{root: root, path: path, err: err}
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connecting to the daemon at %s: %w", path, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

func newClient(conn net.Conn, root, path string, onEvent func(Event)) *Client {
	c := &Client{root: root, path: path, routes: map[uint64]func(string, json.RawMessage){}, onEvent: onEvent}
	c.conn = jsonrpc2.NewConn(context.Background(), newClientStream(conn), clientHandler{c},
		jsonrpc2.SetLogger(log.New(io.Discard, "", 0)))
	return c
}

// clientHandler receives the daemon's notifications, synchronously and in
// order, on the connection's read goroutine.
type clientHandler struct{ c *Client }

func (h clientHandler) Handle(ctx context.Context, jc *jsonrpc2.Conn, req *jsonrpc2.Request) {
	if !req.Notif {
		_ = jc.ReplyWithError(ctx, req.ID, &jsonrpc2.Error{Code: CodeMethodNotFound, Message: "the client serves no methods"})
		return
	}
	var params json.RawMessage
	if req.Params != nil {
		params = *req.Params
	}
	if req.Method == NotifyEvent && h.c.onEvent != nil {
		var ev Event
		if json.Unmarshal(params, &ev) == nil {
			h.c.onEvent(ev)
		}
		return
	}
	// Notifications that belong to a call carry its id as "token".
	var p struct {
		Token json.RawMessage `json:"token"`
	}
	if json.Unmarshal(params, &p) != nil || p.Token == nil {
		return
	}
	id, err := strconv.ParseUint(string(p.Token), 10, 64)
	if err != nil {
		return
	}
	h.c.mu.Lock()
	fn := h.c.routes[id]
	h.c.mu.Unlock()
	if fn != nil {
		fn(req.Method, params)
	}
}

// Socket returns the path of the socket the client is connected to.
func (c *Client) Socket() string { return c.path }

// Close closes the connection. Calls in progress return an error wrapping
// ErrClosed.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil && !errors.Is(err, jsonrpc2.ErrClosed) {
		return err
	}
	return nil
}

// callFor is Call for a typed answer: the typed client methods are this.
func callFor[T any](ctx context.Context, c *Client, method string, params any, onNotify func(string, json.RawMessage)) (T, error) {
	var out T
	err := c.Call(ctx, method, params, &out, onNotify)
	return out, err
}

// Call calls method with params (nil: none) and decodes the answer into
// result (a pointer, or nil to discard it). onNotify, if not nil, receives
// the notifications the daemon sends for this call before its answer
// (progress), on the connection's read goroutine: it must not block. A
// daemon error is returned as an *Error.
func (c *Client) Call(ctx context.Context, method string, params, result any, onNotify func(method string, params json.RawMessage)) error {
	id := c.ids.Add(1)
	if onNotify != nil {
		c.mu.Lock()
		c.routes[id] = onNotify
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.routes, id)
			c.mu.Unlock()
		}()
	}
	err := c.conn.Call(ctx, method, params, result, jsonrpc2.PickID(jsonrpc2.ID{Num: id}))
	return callError(method, err)
}

// callError turns jsonrpc2's errors into this package's.
func callError(method string, err error) error {
	if err == nil {
		return nil
	}
	if je, ok := errors.AsType[*jsonrpc2.Error](err); ok {
		e := &Error{Code: je.Code, Message: je.Message}
		if je.Data != nil {
			e.Data = *je.Data
		}
		return e
	}
	if errors.Is(err, jsonrpc2.ErrClosed) {
		return fmt.Errorf("%s: %w", method, ErrClosed)
	}
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		// The daemon went away before jsonrpc2 noticed.
		return fmt.Errorf("%s: %w (%w)", method, ErrClosed, err)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Errorf("decoding the result of %s: %w", method, err)
	}
	return fmt.Errorf("%s: %w", method, err)
}
