package rpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// Limits of the control socket (DESIGN.md D11: every length read from the
// socket is checked against a named constant before anything is allocated).
const (
	// MaxRequestSize bounds one message a client sends to the daemon (the
	// JSON body, without framing). A larger message gets a CodeInvalidRequest
	// answer and the connection is closed.
	MaxRequestSize = 1 << 20

	// MaxResponseSize bounds one message the daemon sends to a client. The
	// server answers CodeInternalError rather than send a larger result; the
	// Client closes a connection that carries one.
	MaxResponseSize = 64 << 20

	// WriteTimeout bounds writing one message to a connection. A client that
	// stops reading for this long (a stuck event subscriber) is disconnected.
	WriteTimeout = 30 * time.Second

	// MessageTimeout bounds reading one message once its first byte came: a
	// client that sends half a message and stalls gets an error answer and
	// is disconnected. Between messages a connection may idle forever.
	MessageTimeout = 10 * time.Second

	// MaxConnections bounds the control socket's open connections; one more
	// gets a CodeUnavailable error and is closed.
	MaxConnections = 64

	// maxHeaderLine and maxHeaders bound the Content-Length header block.
	maxHeaderLine = 1024
	maxHeaders    = 16

	readBufferSize = 32 << 10
)

// framing is how messages are delimited on one connection.
type framing int

const (
	framingUnknown framing = iota // not yet detected (server, before the first message)
	framingLine                   // one JSON object per line, "\n"-terminated
	framingHeader                 // "Content-Length: N\r\n\r\n" + N bytes, as in LSP
)

func (f framing) String() string {
	switch f {
	case framingLine:
		return "newline"
	case framingHeader:
		return "content-length"
	}
	return "unknown"
}

// errTooLarge is a message over the stream's size cap.
var errTooLarge = errors.New("message too large")

// stream is a jsonrpc2.ObjectStream over a net.Conn with either framing and
// a size cap per message.
//
// On the server side (server=true) it detects the framing from the first
// non-whitespace byte ('C' or 'c' starts a Content-Length header, anything
// else is newline-delimited JSON), and it answers messages that are not valid
// requests itself — parse errors and invalid requests, with id null or the id
// it could read — and goes on reading, instead of failing the connection as
// jsonrpc2 would. Responses sent by a client are dropped: the daemon never
// calls the client. A message over the cap or a broken frame header gets an
// answer too, then the connection is closed, since the message boundary is
// lost.
type stream struct {
	conn         net.Conn
	r            *bufio.Reader // all reads go through r
	max          int
	server       bool
	writeTimeout time.Duration
	msgTimeout   time.Duration // server: MessageTimeout; 0 for none

	mu      sync.Mutex // serialises writes; guards framing after detection
	framing framing

	readerDone     chan struct{} // closed once ReadObject has failed: jsonrpc2 reads no more
	readerDoneOnce sync.Once

	// drain, if set, runs when the peer ends its side of the connection
	// cleanly (EOF between messages), before the EOF is reported to
	// jsonrpc2 (which then closes the connection and cancels its calls).
	// The server uses it to answer the calls already received, so
	// `echo request | socat - UNIX-CONNECT:…` gets its answer.
	drain func()

	// broken, if set, runs when a write fails: the client is gone or stuck,
	// and the server cancels the connection's calls.
	broken func()
}

// testHookDrain, set by tests, runs when a stream starts draining.
var testHookDrain func()

func newServerStream(conn net.Conn) *stream {
	return &stream{conn: conn, r: bufio.NewReaderSize(conn, readBufferSize), max: MaxRequestSize,
		server: true, writeTimeout: WriteTimeout, msgTimeout: MessageTimeout, readerDone: make(chan struct{})}
}

func newClientStream(conn net.Conn) *stream {
	return &stream{conn: conn, r: bufio.NewReaderSize(conn, readBufferSize), max: MaxResponseSize,
		framing: framingLine, writeTimeout: WriteTimeout, readerDone: make(chan struct{})}
}

// ReadObject implements jsonrpc2.ObjectStream.
func (s *stream) ReadObject(v any) error {
	err := s.readObject(v)
	if errors.Is(err, io.EOF) && s.drain != nil {
		if testHookDrain != nil {
			testHookDrain()
		}
		s.drain()
	}
	if err != nil {
		s.readerDoneOnce.Do(func() { close(s.readerDone) })
	}
	return err
}

func (s *stream) readObject(v any) error {
	for {
		data, err := s.readFrame()
		if err != nil {
			var ne net.Error
			switch {
			case !s.server:
			case errors.Is(err, errTooLarge) || errors.Is(err, errBadFrame):
				s.writeError(nil, CodeInvalidRequest, err.Error())
			case errors.As(err, &ne) && ne.Timeout():
				s.writeError(nil, CodeInvalidRequest, fmt.Sprintf("incomplete message: the rest did not come within %v", s.msgTimeout))
			}
			return err
		}
		if !s.server {
			return json.Unmarshal(data, v)
		}
		ok, id, code, msg := checkRequest(data)
		if !ok {
			if code != 0 {
				s.writeError(id, code, msg)
			}
			continue
		}
		if err := json.Unmarshal(data, v); err != nil {
			s.writeError(id, CodeInvalidRequest, "invalid request: "+err.Error())
			continue
		}
		return nil
	}
}

// errBadFrame is a Content-Length header block that cannot be read.
var errBadFrame = errors.New("bad Content-Length frame")

// readFrame returns the next message body, skipping blank lines between
// messages.
func (s *stream) readFrame() ([]byte, error) {
	if err := s.skipSpace(); err != nil {
		return nil, err
	}
	if s.msgTimeout > 0 { // a message has begun: the rest must follow soon
		s.conn.SetReadDeadline(time.Now().Add(s.msgTimeout))
		defer s.conn.SetReadDeadline(time.Time{})
	}
	s.mu.Lock()
	f := s.framing
	if f == framingUnknown {
		b, err := s.r.Peek(1)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		f = framingLine
		if b[0] == 'C' || b[0] == 'c' {
			f = framingHeader
		}
		s.framing = f
	}
	s.mu.Unlock()
	if f == framingHeader {
		return s.readHeaderFrame()
	}
	return s.readLine()
}

func (s *stream) skipSpace() error {
	for {
		b, err := s.r.Peek(1)
		if err != nil {
			return err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			s.r.Discard(1)
		default:
			return nil
		}
	}
}

// readLine reads up to "\n" (or EOF, for a last message without one). At
// most s.max+2 bytes are ever buffered.
func (s *stream) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(line)+len(chunk) > s.max+2 { // room for "\r\n"
			return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, s.max)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			// the last message, without its newline
		default:
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > s.max {
			return nil, fmt.Errorf("%w: %d bytes, over %d", errTooLarge, len(line), s.max)
		}
		return line, nil
	}
}

// readHeaderFrame reads "Header: value\r\n"… "\r\n" and then the body whose
// length Content-Length gives (the only header used; names are matched
// without regard to case, bare "\n" line ends are accepted).
func (s *stream) readHeaderFrame() ([]byte, error) {
	length := -1
	for n := 0; ; n++ {
		if n > maxHeaders {
			return nil, fmt.Errorf("%w: more than %d header lines", errBadFrame, maxHeaders)
		}
		line, err := s.readHeaderLine()
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: header line %q has no colon", errBadFrame, line)
		}
		if !strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			continue // Content-Type and the like
		}
		v, err := strconv.ParseUint(strings.TrimSpace(value), 10, 63)
		if err != nil {
			return nil, fmt.Errorf("%w: Content-Length %q is not a number", errBadFrame, strings.TrimSpace(value))
		}
		if v > uint64(s.max) {
			return nil, fmt.Errorf("%w: Content-Length %d is over %d", errTooLarge, v, s.max)
		}
		if length >= 0 {
			return nil, fmt.Errorf("%w: more than one Content-Length header", errBadFrame)
		}
		length = int(v)
	}
	if length < 0 {
		return nil, fmt.Errorf("%w: no Content-Length header", errBadFrame)
	}
	body := make([]byte, length)
	if n, err := io.ReadFull(s.r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: the body ended after %d of its %d bytes", errBadFrame, n, length)
		}
		return nil, err
	}
	return body, nil
}

func (s *stream) readHeaderLine() (string, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(line)+len(chunk) > maxHeaderLine {
			return "", fmt.Errorf("%w: header line over %d bytes", errBadFrame, maxHeaderLine)
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		return string(bytes.TrimRight(line, "\r\n")), nil
	}
}

// checkRequest decides whether a server-side message goes on to jsonrpc2.
// ok=false with code=0 means drop it silently (a response from the client);
// ok=false with a code means answer with that error, using id (nil: null).
func checkRequest(data []byte) (ok bool, id json.RawMessage, code int64, msg string) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return false, nil, CodeParseError, "parse error: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	switch data[0] {
	case '{':
	case '[':
		return false, nil, CodeInvalidRequest, "invalid request: batches are not supported; send one request per message"
	default:
		return false, nil, CodeInvalidRequest, "invalid request: a request must be a JSON object"
	}
	var m struct {
		JSONRPC *string         `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  *string         `json:"method"`
		Result  json.RawMessage `json:"result"`
		Error   json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return false, nil, CodeInvalidRequest, "invalid request: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	if m.ID != nil {
		if string(m.ID) == "null" {
			return false, nil, CodeInvalidRequest, `invalid request: "id" must be a string or a non-negative integer, not null`
		}
		var jid jsonrpc2.ID
		if err := json.Unmarshal(m.ID, &jid); err != nil {
			return false, nil, CodeInvalidRequest, `invalid request: "id" must be a string or a non-negative integer`
		}
		id = m.ID
	}
	if m.Method == nil {
		if m.Result != nil || m.Error != nil {
			return false, nil, 0, "" // a response: the daemon sends no calls, so nothing waits for it
		}
		return false, id, CodeInvalidRequest, `invalid request: no "method"`
	}
	if m.JSONRPC == nil || *m.JSONRPC != "2.0" {
		return false, id, CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`
	}
	if m.Result != nil || m.Error != nil {
		return false, id, CodeInvalidRequest, `invalid request: a request has no "result" or "error"`
	}
	return true, nil, 0, ""
}

// errorResponse is an error answer written by the stream itself, whose id
// may be null (jsonrpc2.Response cannot express that).
type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers a message jsonrpc2 never saw. Errors are ignored: if the
// connection is broken, the next read says so.
func (s *stream) writeError(id json.RawMessage, code int64, msg string) {
	r := errorResponse{JSONRPC: "2.0", ID: id}
	if r.ID == nil {
		r.ID = json.RawMessage("null")
	}
	r.Error.Code, r.Error.Message = code, msg
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	_ = s.writeFrame(b)
}

// WriteObject implements jsonrpc2.ObjectStream.
func (s *stream) WriteObject(obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return s.writeFrame(b)
}

// writeFrame writes one message in the connection's framing, in one Write,
// within WriteTimeout; on failure it closes the connection.
func (s *stream) writeFrame(body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	if s.framing == framingHeader {
		buf = make([]byte, 0, len(body)+32)
		buf = append(buf, "Content-Length: "...)
		buf = strconv.AppendInt(buf, int64(len(body)), 10)
		buf = append(buf, "\r\n\r\n"...)
		buf = append(buf, body...)
	} else {
		buf = make([]byte, 0, len(body)+1)
		buf = append(buf, body...)
		buf = append(buf, '\n')
	}
	err := s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if err == nil {
		_, err = s.conn.Write(buf)
	}
	if err != nil {
		// A message may be half written: the stream is unusable. Closing
		// makes the reader fail, and jsonrpc2 then closes the connection.
		s.conn.Close()
		if s.broken != nil {
			s.broken()
		}
	}
	return err
}

// peerGone reports whether the peer has closed the connection completely,
// not only its sending side (a half-close, after which it still reads the
// answers). A zero-length write tells them apart on Linux: it fails with
// EPIPE once the peer has closed, and succeeds after a half-close. Where it
// cannot tell, it reports false, and the server waits for the answers.
func (s *stream) peerGone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout)); err != nil {
		return true // closed
	}
	_, err := s.conn.Write(nil)
	return err != nil
}

// Close implements jsonrpc2.ObjectStream.
func (s *stream) Close() error { return s.conn.Close() }

var _ jsonrpc2.ObjectStream = (*stream)(nil)
