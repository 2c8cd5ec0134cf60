package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTypedClientRoundTrip(t *testing.T) {
	ts := startServer(t, newFake())
	c := ts.client(t)
	ctx := ctxT(t)

	info, err := c.NodeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(info, fixtureInfo()) {
		t.Errorf("NodeInfo:\n got %+v\nwant %+v", info, fixtureInfo())
	}

	peers, err := c.NodePeers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(peers, fixturePeers()) {
		t.Errorf("NodePeers:\n got %+v\nwant %+v", peers, fixturePeers())
	}

	nodes, err := c.NodeList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fixtureNodes()
	want[3].Features = []string{} // the server sends [] for a nil slice
	if !reflect.DeepEqual(nodes, want) {
		t.Errorf("NodeList:\n got %+v\nwant %+v", nodes, want)
	}

	peer, err := c.NodeConnect(ctx, didCarol+"@192.0.2.44:9000")
	if err != nil {
		t.Fatal(err)
	}
	wantPeer := Peer{DID: didCarol, Alias: "carol", Addresses: []string{"192.0.2.44:9000"}, RemoteAddr: "192.0.2.44:9000",
		Direction: DirectionOutbound, Kind: KindNormal, ConnectedAt: at(10, 0, 6)}
	if !reflect.DeepEqual(peer, wantPeer) {
		t.Errorf("NodeConnect:\n got %+v\nwant %+v", peer, wantPeer)
	}

	// The generic Call reaches the same methods.
	var raw json.RawMessage
	if err := c.Call(ctx, MethodNodeInfo, nil, &raw, nil); err != nil {
		t.Fatal(err)
	}
	mustContain(t, string(raw), `"did":"`+didAlice+`"`)
}

// Lists are never null, nor are the lists inside their elements.
func TestEmptyListsAreArrays(t *testing.T) {
	f := newFake()
	f.empty = true
	ts := startServer(t, f)
	rc := ts.raw(t)
	for i, m := range []string{MethodNodePeers, MethodNodeList} {
		rc.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q}`+"\n", i, m))
		r := decodeResponse(t, rc.line())
		if string(r.Result) != "[]" {
			t.Errorf("%s: result %s, want []", m, r.Result)
		}
	}
	rc.send(`{"jsonrpc":"2.0","id":9,"method":"node.info"}` + "\n")
	r := decodeResponse(t, rc.line())
	mustContain(t, string(r.Result), `"listen_addresses":[]`)
	mustContain(t, string(r.Result), `"addresses":[]`)
	mustContain(t, string(r.Result), `"version":"`+Version+`"`) // filled in when the Service leaves it empty

	c := ts.client(t)
	peers, err := c.NodePeers(ctxT(t))
	if err != nil || peers == nil || len(peers) != 0 {
		t.Errorf("NodePeers = %#v, %v; want an empty non-nil slice", peers, err)
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

// expectClosed reads until the server's end closes.
func expectClosed(t *testing.T, rc *rawConn) {
	t.Helper()
	_, err := io.Copy(io.Discard, rc.r)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("want the connection closed, got %v", err)
	}
}

func TestInvalidParams(t *testing.T) {
	ts := startServer(t, newFake())
	c := ts.client(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name   string
		method string
		params any
		msg    string
	}{
		{"addr without did", MethodNodeConnect, ConnectParams{Addr: "192.0.2.44:9000"}, "want did:key:…@host:port"},
		{"addr with a bad did", MethodNodeConnect, ConnectParams{Addr: "did:key:z6Mkfoo@192.0.2.44:9000"}, "not an ed25519 did:key"},
		{"addr with a bad port", MethodNodeConnect, ConnectParams{Addr: didCarol + "@192.0.2.44:0"}, `port "0"`},
		{"addr missing", MethodNodeConnect, map[string]any{}, "addr is required"},
		{"unknown field", MethodNodeConnect, map[string]any{"adr": "x"}, `unknown field "adr"`},
		{"wrong type", MethodNodeConnect, map[string]any{"addr": 5}, "addr"},
		{"by position", MethodNodeConnect, []string{didCarol + "@192.0.2.44:9000"}, "params must be a JSON object"},
		{"params where none are taken", MethodNodeInfo, map[string]any{"verbose": true}, "node.info takes no params"},
		{"unknown event type", MethodEventsSubscribe, SubscribeParams{Types: []string{"peer.connect"}}, `unknown event type "peer.connect"`},
		{"events unknown field", MethodEventsSubscribe, map[string]any{"type": "peer.connected"}, `unknown field "type"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctx, tc.method, tc.params, nil, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Code != CodeInvalidParams {
				t.Errorf("code %d, want %d (%v)", e.Code, CodeInvalidParams, e)
			}
			mustContain(t, e.Message, tc.msg)
			mustContain(t, e.Message, tc.method)
		})
	}
	// The typed method gives the same error.
	_, err := c.NodeConnect(ctx, "nonsense")
	if !IsCode(err, CodeInvalidParams) {
		t.Errorf("NodeConnect(nonsense): %v", err)
	}
	// Null or empty params are fine for methods without any.
	for _, p := range []string{"null", "{}", "[]"} {
		if err := c.Call(ctx, MethodNodePeers, json.RawMessage(p), nil, nil); err != nil {
			t.Errorf("params %s: %v", p, err)
		}
	}
}

func TestUnknownMethod(t *testing.T) {
	ts := startServer(t, newFake())
	c := ts.client(t)
	err := c.Call(ctxT(t), "node.reboot", nil, nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeMethodNotFound {
		t.Fatalf("got %v, want code %d", err, CodeMethodNotFound)
	}
	mustContain(t, e.Message, `"node.reboot"`)
}

func TestServiceErrorsMapToCodes(t *testing.T) {
	ts := startServer(t, newFake())
	c := ts.client(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		host string
		code int64
		msg  string
	}{
		{hostUnreachable, CodeUnavailable, "connecting to 192.0.2.99:9000: timeout: no recent network activity"},
		{hostTimeout, CodeTimeout, "handshake with 192.0.2.98:9000: context deadline exceeded"},
		{hostBroken, CodeInternalError, "routing table is corrupt"},
		{hostPanic, CodeInternalError, "internal error in node.connect: fake panic"},
		{hostWrapped, CodeConflict, "connecting: already connected to " + didCarol},
	} {
		_, err := c.NodeConnect(ctx, didCarol+"@"+tc.host)
		e, ok := errors.AsType[*Error](err)
		if !ok {
			t.Errorf("%s: %v is not an *Error", tc.host, err)
			continue
		}
		if e.Code != tc.code || e.Message != tc.msg {
			t.Errorf("%s: got %d %q, want %d %q", tc.host, e.Code, e.Message, tc.code, tc.msg)
		}
		if tc.host == hostWrapped {
			if raw, ok := e.Data.(json.RawMessage); !ok || string(raw) != `{"did":"`+didCarol+`"}` {
				t.Errorf("data %#v", e.Data)
			}
		}
	}
	// The server survived the panic.
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatal(err)
	}
}

// Malformed messages get an error answer (id null when it cannot be read)
// and the connection goes on; the server keeps serving others.
func TestMalformedRequests(t *testing.T) {
	ts := startServer(t, newFake())
	rc := ts.raw(t)
	for _, tc := range []struct {
		in   string
		code int64
		id   string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":`, CodeParseError, "null"},
		{`this is not json`, CodeParseError, "null"},
		{`[{"jsonrpc":"2.0","id":1,"method":"node.info"}]`, CodeInvalidRequest, "null"},
		{`"node.info"`, CodeInvalidRequest, "null"},
		{`{"id":2,"method":"node.info"}`, CodeInvalidRequest, "2"},
		{`{"jsonrpc":"1.0","id":"x","method":"node.info"}`, CodeInvalidRequest, `"x"`},
		{`{"jsonrpc":"2.0","id":3}`, CodeInvalidRequest, "3"},
		{`{"jsonrpc":"2.0","id":null,"method":"node.info"}`, CodeInvalidRequest, "null"},
		{`{"jsonrpc":"2.0","id":-1,"method":"node.info"}`, CodeInvalidRequest, "null"},
		{`{"jsonrpc":"2.0","id":1.5,"method":"node.info"}`, CodeInvalidRequest, "null"},
		{`{"jsonrpc":"2.0","id":{},"method":"node.info"}`, CodeInvalidRequest, "null"},
		{`{"jsonrpc":"2.0","id":4,"method":7}`, CodeInvalidRequest, "null"},
		{`{"jsonrpc":"2.0","id":5,"method":"node.info","result":1}`, CodeInvalidRequest, "5"},
	} {
		rc.send(tc.in + "\n")
		line := rc.line()
		r := decodeResponse(t, line)
		if r.errCode(t) != tc.code || string(r.ID) != tc.id {
			t.Errorf("%s\n  answer %s\n  want code %d id %s", tc.in, strings.TrimSpace(line), tc.code, tc.id)
		}
	}
	// A response from the client and a notification get no answer; the next
	// answer read is the call's.
	rc.send(`{"jsonrpc":"2.0","id":99,"result":{}}` + "\n" +
		`{"jsonrpc":"2.0","method":"node.nothing"}` + "\n" +
		`{"jsonrpc":"2.0","method":"node.info"}` + "\n" +
		`{"jsonrpc":"2.0","id":6,"method":"node.info"}` + "\n")
	if r := decodeResponse(t, rc.line()); string(r.ID) != "6" || r.Error != nil {
		t.Fatalf("got %+v, want the answer to id 6", r)
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

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
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

func TestSubscribeEventsInOrder(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	got := make(chan Event, 1000)
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ctx, nil, func(ev Event) { got <- ev }) }()
	testutil.WaitFor(t, "the subscription", 10*time.Second, func() bool { return f.subscribers() == 1 })

	var sent []Event
	for i := range 500 {
		ev := Event{Type: eventTypes[i%len(eventTypes)], Time: at(10, 0, 0).Add(time.Duration(i) * time.Millisecond),
			DID: didBob, Reason: strconv.Itoa(i)}
		sent = append(sent, ev)
	}
	f.publish(sent...)
	for i, want := range sent {
		select {
		case ev := <-got:
			if !reflect.DeepEqual(ev, want) {
				t.Fatalf("event %d: got %+v, want %+v", i, ev, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d never came", i)
		}
	}
	// Calls on the same Client go on while it is subscribed.
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Subscribe after cancel: %v", err)
	}
	testutil.WaitFor(t, "the daemon to drop the subscription", 10*time.Second, func() bool { return f.subscribers() == 0 })
}

func TestSubscribeFiltersTypes(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	got := make(chan Event, 100)
	go c.Subscribe(ctx, []string{EventPeerConnected, EventRepoAnnounced}, func(ev Event) { got <- ev })
	testutil.WaitFor(t, "the subscription", 10*time.Second, func() bool { return f.subscribers() == 1 })
	f.mu.Lock()
	passed := f.types[0]
	f.mu.Unlock()
	if !reflect.DeepEqual(passed, []string{EventPeerConnected, EventRepoAnnounced}) {
		t.Errorf("Service.Subscribe got types %v", passed)
	}

	// The fake ignores types: the server must filter.
	f.publish(fixtureEvents()...)
	f.publish(Event{Type: EventNodeDiscovered, DID: didBob}, Event{Type: EventPeerConnected, DID: didBob, Reason: "last"})
	var types []string
	for {
		ev := <-got
		types = append(types, ev.Type)
		if ev.Reason == "last" {
			break
		}
	}
	want := []string{EventPeerConnected, EventRepoAnnounced, EventPeerConnected}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("received %v, want %v", types, want)
	}
}

// When the daemon ends the stream, the subscriber learns it.
func TestSubscribeStreamEnded(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ctxT(t), nil, func(Event) {}) }()
	testutil.WaitFor(t, "the subscription", 10*time.Second, func() bool { return f.subscribers() == 1 })
	f.endStreams()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return after the stream ended")
	}
}

// The subscription answer comes before the first event, over raw newline JSON.
func TestSubscribeRaw(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	rc := ts.raw(t)
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"types":["peer.disconnected"]}}` + "\n")
	if r := decodeResponse(t, rc.line()); string(r.Result) != `{"subscribed":true}` {
		t.Fatalf("answer %+v", r)
	}
	f.publish(fixtureEvents()...)
	r := decodeResponse(t, rc.line())
	if r.Method != NotifyEvent || r.ID != nil {
		t.Fatalf("notification %+v", r)
	}
	var ev Event
	if err := json.Unmarshal(r.Params, &ev); err != nil || ev.Type != EventPeerDisconnected || ev.Reason != "idle timeout" {
		t.Fatalf("event %s: %v", r.Params, err)
	}
}

// A long call does not hold up other calls on the same connection.
func TestLongCallDoesNotBlockConnection(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() {
		_, err := c.NodeConnect(ctx, didCarol+"@"+hostBlock)
		done <- err
	}()
	<-f.blocked
	if _, err := c.NodeInfo(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call returned %v", err)
	}
}

func progressHandler(ctx context.Context, svc Service, c *call) (any, error) {
	for i := range int64(50) {
		if err := c.Progress(i+1, 50, "step "+strconv.FormatInt(i+1, 10)); err != nil {
			return nil, err
		}
	}
	return "done", nil
}

// Progress notifications reach the caller's onNotify, in order, before the
// answer, with the call's id as token.
func TestProgressNotifications(t *testing.T) {
	ts := startServer(t, newFake(), func(s *Server) {
		s.methods["test.progress"] = method{MethodInfo{Name: "test.progress"}, progressHandler}
	})
	c := ts.client(t)
	var mu sync.Mutex
	var seen []Progress
	var result string
	err := c.Call(ctxT(t), "test.progress", nil, &result, func(method string, params json.RawMessage) {
		if method != NotifyProgress {
			t.Errorf("notification %s", method)
		}
		var p Progress
		if err := json.Unmarshal(params, &p); err != nil {
			t.Error(err)
		}
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	})
	if err != nil || result != "done" {
		t.Fatalf("result %q, %v", result, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 50 {
		t.Fatalf("got %d progress notifications before the answer, want 50", len(seen))
	}
	for i, p := range seen {
		if p.Done != int64(i+1) || p.Total != 50 || string(p.Token) != "1" {
			t.Fatalf("progress %d: %+v (token %s)", i, p, p.Token)
		}
	}
}

// Serve returns nil after cancellation, having closed the listener and every
// connection, and leaves no goroutine behind.
func TestServeShutdownNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		f := newFake()
		root := shortDir(t)
		ln, err := Listen(SocketPath(root))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- NewServer(f, nil).Serve(ctx, ln) }()

		c, err := Dial(ctxT(t), root)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// An idle raw connection, a subscription and a call in progress.
		idle, err := net.Dial("unix", SocketPath(root))
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		subDone := make(chan error, 1)
		go func() { subDone <- c.Subscribe(context.Background(), nil, func(Event) {}) }()
		callDone := make(chan error, 1)
		go func() {
			_, err := c.NodeConnect(context.Background(), didCarol+"@"+hostBlock)
			callDone <- err
		}()
		<-f.blocked
		testutil.WaitFor(t, "the subscription", 10*time.Second, func() bool { return f.subscribers() == 1 })

		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
		if err := <-subDone; !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe at shutdown: %v", err)
		}
		if err := <-callDone; err == nil {
			t.Error("a call in progress at shutdown succeeded")
		}
		if f.subscribers() != 0 {
			t.Error("the subscription was not cancelled")
		}
		if _, err := os.Lstat(SocketPath(root)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file after shutdown: %v", err)
		}
		idle.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("idle connection after shutdown: read %v, want EOF", err)
		}
	}()
	testutil.WaitForState(t, "the server's goroutines to end", 10*time.Second, func() (bool, string) {
		n := runtime.NumGoroutine()
		if n <= before {
			return true, ""
		}
		buf := make([]byte, 1<<20)
		return false, fmt.Sprintf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	})
}

// Serve reports a listener that fails for another reason than shutdown.
func TestServeReturnsAcceptError(t *testing.T) {
	root := shortDir(t)
	ln, err := Listen(SocketPath(root))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- NewServer(newFake(), nil).Serve(context.Background(), ln) }()
	c, err := Dial(ctxT(t), root) // Serve is accepting
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.NodeInfo(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve returned %v, want the accept error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestMethodTable(t *testing.T) {
	srv := NewServer(newFake(), nil)
	names := map[string]bool{}
	for _, m := range Methods() {
		if names[m.Name] {
			t.Errorf("%s listed twice", m.Name)
		}
		names[m.Name] = true
		if _, ok := srv.methods[m.Name]; !ok {
			t.Errorf("%s is in the table but not dispatched", m.Name)
		}
		if m.Summary == "" {
			t.Errorf("%s has no summary", m.Name)
		}
	}
	for _, name := range []string{MethodNodeInfo, MethodNodePeers, MethodNodeList, MethodNodeConnect, MethodEventsSubscribe} {
		if !names[name] {
			t.Errorf("%s is missing from the table", name)
		}
	}
	if m, _ := LookupMethod(MethodNodeConnect); !m.Mutating {
		t.Error("node.connect must be marked as a write")
	}
	if m, _ := LookupMethod(MethodNodeInfo); m.Mutating {
		t.Error("node.info must be marked as a read")
	}
}

// A client that sends its requests and closes its writing side (as
// `echo … | socat - UNIX-CONNECT:…` does) still gets every answer, then EOF.
func TestHalfCloseGetsAnswers(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, newFake(), func(s *Server) {
		s.methods["test.slow"] = method{MethodInfo{Name: "test.slow"}, func(ctx context.Context, svc Service, c *call) (any, error) {
			select {
			case <-release:
				return "late", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}
	})
	draining := make(chan struct{}, 1)
	testHookDrain = func() { draining <- struct{}{} }
	defer func() { testHookDrain = nil }()

	rc := ts.raw(t)
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"test.slow"}` + "\n" + `{"jsonrpc":"2.0","id":2,"method":"node.info"}`)
	if err := rc.Conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select { // the server has read EOF and waits for the answers
	case <-draining:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not drain on EOF")
	}
	close(release)
	ids := map[string]bool{}
	for range 2 {
		r := decodeResponse(t, rc.line())
		if r.Error != nil {
			t.Fatalf("answer %+v", r)
		}
		ids[string(r.ID)] = true
	}
	if !ids["1"] || !ids["2"] {
		t.Fatalf("answered %v", ids)
	}
	expectClosed(t, rc)
}

// A subscriber that stops reading is disconnected after the write timeout,
// and its subscription is cancelled.
func TestStuckSubscriberDisconnected(t *testing.T) {
	f := newFake()
	ts := startServer(t, f, func(s *Server) { s.writeTimeout = 50 * time.Millisecond })
	rc := ts.raw(t)
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"events.subscribe"}` + "\n")
	if r := decodeResponse(t, rc.line()); r.Error != nil {
		t.Fatal(r.Error)
	}
	// Never read again: the socket buffers fill, a write times out.
	ev := Event{Type: EventPeerDisconnected, DID: didBob, Reason: strings.Repeat("x", 4096)}
	testutil.WaitFor(t, "the stuck subscriber to be dropped", 10*time.Second, func() bool {
		for range 64 {
			f.tryPublish(ev)
		}
		return f.subscribers() == 0
	})
	// The connection is closed: reading drains what was sent, then ends.
	expectClosed(t, rc)
	if _, err := ts.client(t).NodeInfo(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}
