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
	"testing"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/megaengine/megaengine/internal/testutil"
)

// FuzzServerStream feeds arbitrary bytes to the server side of the framing:
// it must not panic, and everything it writes back must be well-framed
// JSON-RPC error answers.
func FuzzServerStream(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n",
		"\n\n" + `{"jsonrpc":"2.0","id":"x","method":"node.connect","params":{"addr":"a"}}` + "\r\n{",
		"Content-Length: 45\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}`,
		"content-length: 3\r\nContent-Type: x\r\n\r\n[1]Content-Length: 2\n\n{}",
		"Content-Length: 99999999999999999999\r\n\r\n",
		`[{"jsonrpc":"2.0"}]` + "\n" + `{"id":null}` + "\n" + `{"jsonrpc":"2.0","id":5,"result":1}`,
		`{"jsonrpc":"2.0","id":1.5,"method":"x"}` + "\n" + `{"jsonrpc":"2.0","id":-3,"method":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := &readerConn{r: bytes.NewReader(data)}
		st := newServerStream(conn)
		for range 1000 {
			// checkRequest let only objects with a string "method" through,
			// so jsonrpc2.Request's decoder must accept every one of them.
			var req jsonrpc2.Request
			if err := st.ReadObject(&req); err != nil {
				break
			}
		}
		checkWritten(t, st.framing, conn.written)
	})
}

// checkWritten parses what a server stream wrote: error answers only, each
// valid JSON in the stream's framing.
func checkWritten(t *testing.T, f framing, out []byte) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		var body []byte
		if f == framingHeader {
			h, err := r.ReadString('\n')
			if err == io.EOF && h == "" {
				return
			}
			n, err2 := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(h, "Content-Length: "), "\r\n"))
			if err != nil || err2 != nil {
				t.Fatalf("bad header %q in %q", h, out)
			}
			if blank, _ := r.ReadString('\n'); blank != "\r\n" {
				t.Fatalf("no blank line after header in %q", out)
			}
			body = make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				t.Fatalf("short body in %q", out)
			}
		} else {
			line, err := r.ReadBytes('\n')
			if err == io.EOF && len(line) == 0 {
				return
			}
			if err != nil {
				t.Fatalf("unterminated line in %q", out)
			}
			body = line
		}
		var resp errorResponse
		if err := json.Unmarshal(body, &resp); err != nil || resp.JSONRPC != "2.0" || resp.Error.Code == 0 || resp.Error.Message == "" {
			t.Fatalf("bad error answer %q (%v)", body, err)
		}
	}
}

// FuzzClientStream: the client side must not panic on anything the socket
// carries, nor accept a message over its cap.
func FuzzClientStream(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}` + "\n"))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"event","params":{"type":"peer.connected"}}` + "\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := newClientStream(&readerConn{r: bytes.NewReader(data)})
		for range 1000 {
			var v json.RawMessage
			if err := st.ReadObject(&v); err != nil {
				return
			}
			if len(v) > MaxResponseSize {
				t.Fatalf("accepted %d bytes", len(v))
			}
		}
	})
}

func TestFramingDetection(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want framing
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n", framingLine},
		{" \r\n\t" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n", framingLine},
		{"Content-Length: 45\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}`, framingHeader},
		{"\r\ncontent-length: 45\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}`, framingHeader},
	} {
		st := newServerStream(&readerConn{r: strings.NewReader(tc.in)})
		var req jsonrpc2.Request
		if err := st.ReadObject(&req); err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if st.framing != tc.want || req.Method != "node.info" {
			t.Errorf("%q: framing %v method %q, want %v", tc.in, st.framing, req.Method, tc.want)
		}
	}
}

func TestNewlineFraming(t *testing.T) {
	ts := startServer(t, newFake())
	rc := ts.raw(t)
	// Leading blank lines and a CRLF line end are accepted.
	rc.send("\n\r\n" + `{"jsonrpc":"2.0","id":7,"method":"node.info"}` + "\r\n")
	line := rc.line()
	if strings.HasPrefix(line, "Content-Length") {
		t.Fatalf("newline request answered with headers: %q", line)
	}
	r := decodeResponse(t, line)
	if string(r.ID) != "7" || r.Error != nil {
		t.Fatalf("answer %q: want id 7 and a result", line)
	}
	var info NodeInfo
	if err := json.Unmarshal(r.Result, &info); err != nil || info.DID != didAlice {
		t.Fatalf("result %s: %v", r.Result, err)
	}
	// A string id comes back as the same string; several requests in one write.
	rc.send(`{"jsonrpc":"2.0","id":"a","method":"node.peers"}` + "\n" + `{"jsonrpc":"2.0","id":"b","method":"node.list"}` + "\n")
	ids := map[string]bool{}
	for range 2 {
		ids[string(decodeResponse(t, rc.line()).ID)] = true
	}
	if !ids[`"a"`] || !ids[`"b"`] {
		t.Errorf("ids answered: %v", ids)
	}
}

// readFramed reads one Content-Length framed message by hand.
func readFramed(t *testing.T, rc *rawConn) string {
	t.Helper()
	length := -1
	for {
		h, err := rc.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading headers: %v", err)
		}
		if !strings.HasSuffix(h, "\r\n") {
			t.Fatalf("header line %q does not end in CRLF", h)
		}
		h = strings.TrimSuffix(h, "\r\n")
		if h == "" {
			break
		}
		v, ok := strings.CutPrefix(h, "Content-Length: ")
		if !ok {
			t.Fatalf("unexpected header %q", h)
		}
		length, err = strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
	}
	if length < 0 {
		t.Fatal("no Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func framed(body string) string {
	return fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
}

func TestContentLengthFraming(t *testing.T) {
	ts := startServer(t, newFake())
	rc := ts.raw(t)
	body := `{"jsonrpc":"2.0","id":1,"method":"node.info"}`
	rc.send("Content-Length: 45\r\n\r\n" + body) // written out by hand
	if len(body) != 45 {
		t.Fatal("test body length changed")
	}
	got := readFramed(t, rc)
	r := decodeResponse(t, got)
	if string(r.ID) != "1" || !strings.Contains(string(r.Result), didAlice) {
		t.Fatalf("answer %q", got)
	}

	// Lower-case header name, a Content-Type header, and two messages in one
	// write, the second without params.
	body2 := `{"jsonrpc":"2.0","id":2,"method":"node.peers"}      `
	two := fmt.Sprintf("content-length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n", len(body2)) +
		body2 + framed(`{"jsonrpc":"2.0","id":3,"method":"node.list"}`)
	rc.send(two)
	seen := map[string]bool{}
	for range 2 {
		seen[string(decodeResponse(t, readFramed(t, rc)).ID)] = true
	}
	if !seen["2"] || !seen["3"] {
		t.Errorf("ids answered: %v", seen)
	}

	// Bad JSON in a frame: a parse error, and the connection goes on.
	rc.send(framed(`{"jsonrpc":`))
	if code := decodeResponse(t, readFramed(t, rc)).errCode(t); code != CodeParseError {
		t.Errorf("code %d, want %d", code, CodeParseError)
	}
	rc.send(framed(`{"jsonrpc":"2.0","id":4,"method":"node.info"}`))
	if r := decodeResponse(t, readFramed(t, rc)); string(r.ID) != "4" || r.Error != nil {
		t.Errorf("after a parse error: %+v", r)
	}
}

// A frame header that cannot be read, or one announcing too much, closes
// the connection after an error answer; the server serves others.
func TestContentLengthFramingErrors(t *testing.T) {
	ts := startServer(t, newFake())
	for _, tc := range []struct{ name, input string }{
		{"too large", fmt.Sprintf("Content-Length: %d\r\n\r\n", MaxRequestSize+1)},
		{"not a number", "Content-Length: lots\r\n\r\n"},
		{"missing", "Content-Type: x\r\n\r\n"},
		{"no colon", "Content-Length 10\r\n\r\n"},
		{"long header", "Content-Length: 1" + strings.Repeat("0", 2*maxHeaderLine) + "\r\n\r\n"},
		{"two lengths", "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := ts.raw(t)
			rc.send(tc.input)
			r := decodeResponse(t, readFramed(t, rc))
			if r.errCode(t) != CodeInvalidRequest || string(r.ID) != "null" {
				t.Errorf("answer %+v, want invalid request with id null", r)
			}
			expectClosed(t, rc)
		})
	}
	if _, err := ts.client(t).NodeInfo(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// A message over MaxRequestSize closes its connection; others go on.
func TestOversizeRequestClosesConn(t *testing.T) {
	ts := startServer(t, newFake())
	other := ts.raw(t)
	rc := ts.raw(t)
	// Detect newline framing with a first, normal request.
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n")
	rc.line()
	writeErr := make(chan error, 1)
	go func() {
		huge := `{"jsonrpc":"2.0","id":2,"method":"node.connect","params":{"addr":"` +
			strings.Repeat("a", 4*MaxRequestSize) + `"}}` + "\n"
		_, err := io.WriteString(rc.Conn, huge)
		writeErr <- err
	}()
	r := decodeResponse(t, rc.line())
	if r.errCode(t) != CodeInvalidRequest {
		t.Fatalf("got %+v", r)
	}
	mustContain(t, r.Error.Message, "too large")
	expectClosed(t, rc)
	if err := <-writeErr; err == nil {
		t.Error("the server read all of a 4 MiB request")
	}

	other.send(`{"jsonrpc":"2.0","id":3,"method":"node.info"}` + "\n")
	if r := decodeResponse(t, other.line()); string(r.ID) != "3" || r.Error != nil {
		t.Fatalf("other connection: %+v", r)
	}
	// Exactly MaxRequestSize bytes are still accepted.
	pad := MaxRequestSize - len(`{"jsonrpc":"2.0","id":4,"method":"node.info","pad":""}`)
	msg := `{"jsonrpc":"2.0","id":4,"method":"node.info","pad":"` + strings.Repeat("x", pad) + `"}`
	if len(msg) != MaxRequestSize {
		t.Fatalf("test message is %d bytes", len(msg))
	}
	other.send(msg + "\n")
	if r := decodeResponse(t, other.line()); string(r.ID) != "4" || r.Error != nil {
		t.Fatalf("a message of exactly MaxRequestSize: %+v", r)
	}
}

// endlessReader yields an endless line without a newline, counting bytes.
type endlessReader struct{ n int }

func (r *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += len(p)
	return len(p), nil
}

// readerConn is a net.Conn that reads from r and discards writes.
type readerConn struct {
	net.Conn // nil: only the methods below are used
	r        io.Reader
	mu       sync.Mutex
	written  []byte
}

func (c *readerConn) Read(p []byte) (int, error)      { return c.r.Read(p) }
func (c *readerConn) SetReadDeadline(time.Time) error { return nil }
func (c *readerConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = append(c.written, p...)
	return len(p), nil
}
func (c *readerConn) SetWriteDeadline(time.Time) error { return nil }
func (c *readerConn) Close() error                     { return nil }

// An endless line is refused after reading little more than the cap: memory
// does not grow with the input.
func TestEndlessLineIsBounded(t *testing.T) {
	src := &endlessReader{}
	st := newServerStream(&readerConn{r: src})
	var v json.RawMessage
	err := st.ReadObject(&v)
	if !errors.Is(err, errTooLarge) {
		t.Fatalf("err %v, want errTooLarge", err)
	}
	if limit := MaxRequestSize + 2*readBufferSize; src.n > limit {
		t.Errorf("read %d bytes before refusing, want at most %d", src.n, limit)
	}
}

// A Content-Length larger than the body, then a half-close: the client
// still gets an answer that says so.
func TestTruncatedBodyIsAnswered(t *testing.T) {
	ts := startServer(t, newFake())
	rc := ts.raw(t)
	rc.send("Content-Length: 100\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}`)
	rc.Conn.(*net.UnixConn).CloseWrite()
	r := decodeResponse(t, readFramed(t, rc))
	if r.errCode(t) != CodeInvalidRequest {
		t.Fatalf("answer %+v, want invalid request", r)
	}
	mustContain(t, r.Error.Message, "ended after 45 of its 100 bytes")
	expectClosed(t, rc)
}

// Half a message and then silence: answered and closed after the message
// timeout, in either framing; an idle connection between messages stays.
func TestHalfSentMessageTimesOut(t *testing.T) {
	ts := startServer(t, newFake(), func(s *Server) { s.msgTimeout = 200 * time.Millisecond })
	idle := ts.raw(t)
	for name, half := range map[string]string{
		"line":           `{"jsonrpc":"2.0","id":1,"meth`,
		"content-length": "Content-Length: 50\r\n\r\n{\"jsonrpc\"",
	} {
		t.Run(name, func(t *testing.T) {
			rc := ts.raw(t)
			rc.send(half)
			read := rc.line
			if name == "content-length" {
				read = func() string { return readFramed(t, rc) }
			}
			r := decodeResponse(t, read())
			if r.errCode(t) != CodeInvalidRequest {
				t.Fatalf("answer %+v, want invalid request", r)
			}
			mustContain(t, r.Error.Message, "incomplete message")
			expectClosed(t, rc)
		})
	}
	idle.send(`{"jsonrpc":"2.0","id":7,"method":"node.info"}` + "\n")
	if r := decodeResponse(t, idle.line()); string(r.ID) != "7" || r.Error != nil {
		t.Fatalf("the idle connection: %+v", r)
	}
}

// One connection over MaxConnections gets an error and is closed; a slot
// freed is usable again.
func TestConnectionCap(t *testing.T) {
	ts := startServer(t, newFake())
	conns := make([]*rawConn, MaxConnections)
	for i := range conns {
		conns[i] = ts.raw(t)
		conns[i].send(`{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n")
		conns[i].line() // served: it holds a slot
	}
	extra := ts.raw(t)
	r := decodeResponse(t, extra.line())
	if r.errCode(t) != CodeUnavailable {
		t.Fatalf("connection %d: %+v, want unavailable", MaxConnections+1, r)
	}
	mustContain(t, r.Error.Message, "too many connections")
	expectClosed(t, extra)
	conns[0].Close()
	testutil.WaitFor(t, "a freed slot to serve a new connection", 10*time.Second, func() bool {
		c, err := net.Dial("unix", ts.path)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, `{"jsonrpc":"2.0","id":2,"method":"node.info"}`+"\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.Contains(line, `"result"`)
	})
}
