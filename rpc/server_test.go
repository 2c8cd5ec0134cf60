package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

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
