package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// Server serves a Service over JSON-RPC 2.0 on the control socket.
//
// Each connection has its framing detected from its first byte (see
// stream). Calls on one connection run concurrently (jsonrpc2.AsyncHandler),
// so a long call does not hold up the others; answers may therefore come out
// of order, matched by id. What one call sends — its progress notifications,
// its answer, then (events.subscribe) its events — is sent by one goroutine,
// in order.
type Server struct {
	svc          Service
	log          *slog.Logger
	methods      map[string]method
	writeTimeout time.Duration // WriteTimeout; tests shorten it
	msgTimeout   time.Duration // MessageTimeout; tests shorten it
	// progressInterval is the throttle of progress notifications (0:
	// ProgressInterval); tests change it.
	progressInterval time.Duration
}

// NewServer returns a server for svc. A nil logger discards. Every call is
// logged at debug level; internal errors at warn; panics in the Service
// (recovered and answered with CodeInternalError) at error.
func NewServer(svc Service, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, log: logger, methods: make(map[string]method, len(methodTable)), writeTimeout: WriteTimeout, msgTimeout: MessageTimeout}
	for _, m := range methodTable {
		s.methods[m.Name] = m
	}
	return s
}

// Serve accepts connections on ln and serves them until ctx is done; then it
// closes ln (which removes a socket made by Listen) and every connection,
// waits for every goroutine it started to return, and returns nil. If
// accepting fails for another reason, it shuts down the same way and returns
// that error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var conns sync.WaitGroup
	var acceptErr error
	backoff := time.Duration(0)
	open := make(chan struct{}, MaxConnections)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if isTemporaryAccept(err) {
				// Out of file descriptors and the like: wait and retry, as
				// net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("rpc: accept failed; retrying", "err", err, "in", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
				continue
			}
			acceptErr = fmt.Errorf("accepting on the control socket: %w", err)
			break
		}
		backoff = 0
		select {
		case open <- struct{}{}:
		default:
			conns.Go(func() { refuseConn(conn, s.writeTimeout) })
			continue
		}
		conns.Go(func() {
			defer func() { <-open }()
			s.serveConn(ctx, conn)
		})
	}
	cancel()
	ln.Close()
	conns.Wait()
	return acceptErr
}

// refuseConn answers a connection over MaxConnections with one error and
// closes it.
func refuseConn(conn net.Conn, timeout time.Duration) {
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(timeout))
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":null,"error":{"code":%d,"message":"too many connections to the control socket (%d)"}}`+"\n", CodeUnavailable, MaxConnections)
	conn.Write([]byte(msg))
}

func isTemporaryAccept(err error) bool {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveConn runs one connection until it closes (the client hangs up, sends
// something unreadable, or ctx is done) and every call on it has returned.
//
// The calls get a context that is cancelled when the client hangs up: when
// reading fails, when a write fails, or — after the client ended its side
// (EOF), while the server waits to send the answers of the calls in progress
// — when the client turns out to have closed the connection completely
// rather than only its sending side.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := newServerStream(conn)
	st.writeTimeout, st.msgTimeout = s.writeTimeout, s.msgTimeout
	st.broken = cancel
	// calls counts handler goroutines; answering counts calls whose answer
	// is not sent yet (a subscription's stream comes after its answer).
	var calls, answering sync.WaitGroup
	st.drain = func() { drain(st, &answering, cancel) }
	h := countingHandler{calls: &calls, answering: &answering,
		async: jsonrpc2.AsyncHandler(dispatcher{s: s, calls: &calls, answering: &answering})}
	jc := jsonrpc2.NewConn(ctx, st, h, jsonrpc2.SetLogger(debugPrintf{s.log}))
	s.log.Debug("rpc: connection opened")
	// Once a read has failed jsonrpc2 dispatches nothing more, so every
	// calls.Add has happened before this returns.
	<-st.readerDone
	cancel() // nobody will read what is still running: end it
	jc.Close()
	calls.Wait()
	st.mu.Lock()
	f := st.framing
	st.mu.Unlock()
	s.log.Debug("rpc: connection closed", "framing", f.String())
}

// hangupProbeInterval is how often drain checks whether a client that ended
// its side of the connection is still there to read the answers.
const hangupProbeInterval = 200 * time.Millisecond

// drain waits until every call received has been answered, once the client
// has ended its side of the connection (EOF). A client that only half-closed
// gets its answers; for one that hung up — mecli interrupted during a clone —
// the calls are cancelled instead of run to the end for nobody.
func drain(st *stream, answering *sync.WaitGroup, cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		answering.Wait() // no Add can follow: nothing more is read
		close(done)
	}()
	t := time.NewTicker(hangupProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if st.peerGone() {
				cancel()
				<-done
				return
			}
		}
	}
}

// countingHandler counts each request before jsonrpc2's AsyncHandler starts
// its goroutine, so serveConn can wait for all of them.
type countingHandler struct {
	calls, answering *sync.WaitGroup
	async            jsonrpc2.Handler
}

func (h countingHandler) Handle(ctx context.Context, jc *jsonrpc2.Conn, req *jsonrpc2.Request) {
	h.calls.Add(1)
	h.answering.Add(1)
	h.async.Handle(ctx, jc, req)
}

type dispatcher struct {
	s                *Server
	calls, answering *sync.WaitGroup
}

func (d dispatcher) Handle(ctx context.Context, jc *jsonrpc2.Conn, req *jsonrpc2.Request) {
	defer d.calls.Done()
	d.s.handle(ctx, jc, req, sync.OnceFunc(d.answering.Done))
}

// handle runs one request: every answer, success or error, is sent here.
// answered is called once the answer is out (or was not needed).
func (s *Server) handle(ctx context.Context, jc *jsonrpc2.Conn, req *jsonrpc2.Request, answered func()) {
	defer answered()
	start := time.Now()
	c := &call{
		Method:    req.Method,
		Notify:    func(method string, params any) error { return jc.Notify(ctx, method, params) },
		CloseConn: func() { jc.Close() },

		progressInterval: s.progressInterval,
	}
	if req.Params != nil {
		c.Params = *req.Params
	}
	if !req.Notif {
		c.ID, _ = json.Marshal(req.ID)
	}

	var result any
	var err error
	if m, ok := s.methods[req.Method]; ok {
		result, err = s.invoke(ctx, m.handle, c)
	} else {
		err = Errorf(CodeMethodNotFound, "method %q not found", req.Method)
	}

	ok := false
	code := int64(0)
	if req.Notif {
		// JSON-RPC: a notification gets no answer, even an error.
		ok = err == nil
		if err != nil {
			code, _ = s.wireError(ctx, req.Method, err)
		}
	} else {
		ok, code = s.answer(ctx, jc, req, result, err)
	}
	answered()
	s.log.Debug("rpc call", "method", req.Method, "id", idString(req), "code", code,
		"duration", time.Since(start))

	if c.after != nil {
		actx := ctx
		if !ok {
			// No success answer went out: let after release what it holds
			// without sending anything.
			var cancel context.CancelFunc
			actx, cancel = context.WithCancel(ctx)
			cancel()
		}
		c.after(actx)
	}
}

// invoke calls the handler, turning a panic into an internal error.
func (s *Server) invoke(ctx context.Context, h handlerFunc, c *call) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("rpc: panic in handler", "method", c.Method, "panic", r, "stack", string(debug.Stack()))
			result, err = nil, Errorf(CodeInternalError, "internal error in %s: %v", c.Method, r)
		}
	}()
	return h(ctx, s.svc, c)
}

// answer sends the response to a call and reports whether it was a success
// that reached the connection, and the code sent (0 for success).
func (s *Server) answer(ctx context.Context, jc *jsonrpc2.Conn, req *jsonrpc2.Request, result any, err error) (ok bool, code int64) {
	if err == nil {
		var b []byte
		b, err = encodeResult(result)
		switch {
		case err != nil:
			err = Errorf(CodeInternalError, "encoding the result of %s: %w", req.Method, err)
		case len(b) > MaxResponseSize:
			err = Errorf(CodeInternalError, "the result of %s is %d bytes, over the %d-byte limit", req.Method, len(b), MaxResponseSize)
		default:
			if rerr := jc.Reply(ctx, req.ID, json.RawMessage(b)); rerr != nil {
				s.log.Debug("rpc: sending answer", "method", req.Method, "err", rerr)
				return false, 0
			}
			return true, 0
		}
	}
	code, werr := s.wireError(ctx, req.Method, err)
	if rerr := jc.ReplyWithError(ctx, req.ID, werr); rerr != nil {
		s.log.Debug("rpc: sending error answer", "method", req.Method, "err", rerr)
	}
	return false, code
}

// wireError maps an error to what the caller sees: an *Error in the chain
// gives its code (the message is the whole chain's text), a deadline gives
// CodeTimeout, cancellation by shutdown CodeShuttingDown, anything else
// CodeInternalError.
func (s *Server) wireError(ctx context.Context, method string, err error) (int64, *jsonrpc2.Error) {
	we := &jsonrpc2.Error{Message: err.Error()}
	if e, ok := errors.AsType[*Error](err); ok {
		we.Code = e.Code
		if e.Data != nil {
			if b, merr := json.Marshal(e.Data); merr == nil {
				raw := json.RawMessage(b)
				we.Data = &raw
			}
		}
	} else if errors.Is(err, context.DeadlineExceeded) {
		we.Code = CodeTimeout
	} else if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		we.Code = CodeShuttingDown
		we.Message = "cancelled: the connection or the daemon is closing"
	} else {
		we.Code = CodeInternalError
	}
	if we.Code == CodeInternalError {
		s.log.Warn("rpc: internal error", "method", method, "err", err)
	}
	return we.Code, we
}

func idString(req *jsonrpc2.Request) string {
	if req.Notif {
		return ""
	}
	return req.ID.String()
}

// debugPrintf routes jsonrpc2's own log lines (protocol errors on closing
// connections) to slog at debug level.
type debugPrintf struct{ l *slog.Logger }

func (d debugPrintf) Printf(format string, v ...any) {
	d.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
