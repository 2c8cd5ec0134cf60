package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// The fixture: the data the fake service answers with, and that the
// examples in spec/rpc.md show (spec_test.go checks them against it).
const (
	didAlice = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw" // RFC 8032 test 1
	didBob   = "did:key:z6MkiaMbhXHNA4eJVCCj8dbzKzTgYDKf6crKgHVHid1F1WCT" // RFC 8032 test 2
	didRelay = "did:key:z6MkwSD8dBdqcXQzKJZQFPy2hh2izzxskndKCjdmC2dBpfME" // RFC 8032 test 3
	didCarol = "did:key:z6Mkh7U7jBwoMro3UeHmXes4tKtFbZhMRWejbtunbU4hhvjP" // RFC 8032 test 1024

	repoExample = "did:repo:zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp" // root commit 9fceb02d…, creator carol

	hostBlock       = "192.0.2.1:1"     // NodeConnect blocks until its context ends
	hostUnreachable = "192.0.2.99:9000" // NodeConnect fails with CodeUnavailable
	hostTimeout     = "192.0.2.98:9000" // NodeConnect fails with context.DeadlineExceeded
	hostBroken      = "192.0.2.97:9000" // NodeConnect fails with a plain error
	hostPanic       = "192.0.2.96:9000" // NodeConnect panics
	hostWrapped     = "192.0.2.95:9000" // NodeConnect fails with a wrapped *Error carrying data
)

func at(hh, mm, ss int) time.Time { return time.Date(2026, 11, 21, hh, mm, ss, 0, time.UTC) }

func fixtureInfo() NodeInfo {
	return NodeInfo{
		DID:             didAlice,
		Alias:           "alice-laptop",
		ListenAddresses: []string{"0.0.0.0:9000"},
		Addresses:       []string{"203.0.113.5:9000"},
		Kind:            KindNormal,
		Version:         "v0.1.0",
		ProtocolVersion: 1,
		StartedAt:       at(9, 0, 0),
		UptimeSeconds:   3600.5,
		Root:            "/home/alice/.megaengine",
		Socket:          "/home/alice/.megaengine/med.sock",
		Peers:           2,
		KnownNodes:      4,
	}
}

func fixturePeers() []Peer {
	return []Peer{
		{DID: didBob, Alias: "bob", Addresses: []string{"198.51.100.20:9000"}, RemoteAddr: "198.51.100.20:41822",
			Direction: DirectionInbound, Kind: KindNormal, ConnectedAt: at(9, 15, 2), Score: 3},
		{DID: didRelay, Alias: "relay-eu-1", Addresses: []string{"relay1.example.net:9000"}, RemoteAddr: "192.0.2.10:9000",
			Direction: DirectionOutbound, Kind: KindRelay, ConnectedAt: at(9, 0, 1), Score: 10},
	}
}

func fixtureNodes() []NodeEntry {
	return []NodeEntry{
		{DID: didAlice, Alias: "alice-laptop", Addresses: []string{"203.0.113.5:9000"}, Kind: KindNormal, Version: "v0.1.0",
			Features: []string{}, LastSeen: at(10, 0, 0), AnnouncedAt: at(9, 59, 50), Connected: false, Self: true},
		{DID: didBob, Alias: "bob", Addresses: []string{"198.51.100.20:9000"}, Kind: KindNormal, Version: "v0.1.0",
			Features: []string{}, LastSeen: at(9, 59, 58), AnnouncedAt: at(9, 59, 41), Connected: true},
		{DID: didRelay, Alias: "relay-eu-1", Addresses: []string{"relay1.example.net:9000"}, Kind: KindRelay, Version: "v0.1.0",
			Features: []string{"relay"}, LastSeen: at(9, 59, 59), AnnouncedAt: at(9, 59, 52), Connected: true},
		{DID: didCarol, Alias: "carol", Addresses: []string{"192.0.2.44:9000"}, Kind: KindNormal, Version: "v0.1.0",
			Features: nil, LastSeen: at(8, 12, 30), AnnouncedAt: at(8, 12, 29), Connected: false},
	}
}

// fixtureEvents is what the fake publishes when told to; the events.subscribe
// example in the spec filters it to peer.* events.
func fixtureEvents() []Event {
	return []Event{
		{Type: EventNodeDiscovered, Time: at(10, 0, 5), DID: didCarol, Alias: "carol", Addresses: []string{"192.0.2.44:9000"}},
		{Type: EventPeerConnected, Time: at(10, 0, 6), DID: didCarol, Alias: "carol", Addresses: []string{"192.0.2.44:9000"}},
		{Type: EventRepoAnnounced, Time: at(10, 0, 7), DID: didCarol, Repo: repoExample},
		{Type: EventPeerDisconnected, Time: at(10, 0, 9), DID: didBob, Alias: "bob", Reason: "idle timeout"},
	}
}

// fakeService implements Service from the fixture, with hooks for tests.
type fakeService struct {
	empty bool // answer with nothing: nil slices, zero info

	mu      sync.Mutex
	subs    map[int]chan Event
	nextSub int
	types   [][]string // the types each Subscribe was called with

	blocked chan struct{} // receives when a NodeConnect starts blocking
}

func newFake() *fakeService {
	return &fakeService{subs: map[int]chan Event{}, blocked: make(chan struct{}, 16)}
}

func (f *fakeService) NodeInfo(ctx context.Context) (NodeInfo, error) {
	if f.empty {
		return NodeInfo{DID: didAlice}, nil
	}
	return fixtureInfo(), nil
}

func (f *fakeService) NodePeers(ctx context.Context) ([]Peer, error) {
	if f.empty {
		return nil, nil
	}
	return fixturePeers(), nil
}

func (f *fakeService) NodeList(ctx context.Context) ([]NodeEntry, error) {
	if f.empty {
		return nil, nil
	}
	return fixtureNodes(), nil
}

func (f *fakeService) NodeConnect(ctx context.Context, p ConnectParams) (Peer, error) {
	addr, err := identity.ParseAddr(p.Addr)
	if err != nil {
		panic("the server let an invalid address through: " + err.Error())
	}
	switch addr.HostPort {
	case hostBlock:
		f.blocked <- struct{}{}
		<-ctx.Done()
		return Peer{}, ctx.Err()
	case hostUnreachable:
		return Peer{}, Errorf(CodeUnavailable, "connecting to %s: timeout: no recent network activity", addr.HostPort)
	case hostTimeout:
		return Peer{}, fmt.Errorf("handshake with %s: %w", addr.HostPort, context.DeadlineExceeded)
	case hostBroken:
		return Peer{}, errors.New("routing table is corrupt")
	case hostPanic:
		panic("fake panic")
	case hostWrapped:
		e := Errorf(CodeConflict, "already connected to %s", addr.ID)
		e.Data = map[string]any{"did": addr.ID.String()}
		return Peer{}, fmt.Errorf("connecting: %w", e)
	}
	return Peer{DID: addr.ID.String(), Alias: "carol", Addresses: []string{addr.HostPort}, RemoteAddr: addr.HostPort,
		Direction: DirectionOutbound, Kind: KindNormal, ConnectedAt: at(10, 0, 6)}, nil
}

// Subscribe ignores types on purpose: the server must filter anyway.
func (f *fakeService) Subscribe(types []string) (<-chan Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextSub
	f.nextSub++
	ch := make(chan Event, 1024)
	f.subs[id] = ch
	f.types = append(f.types, slices.Clone(types))
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if c, ok := f.subs[id]; ok {
			close(c)
			delete(f.subs, id)
		}
	}
}

func (f *fakeService) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeService) publish(evs ...Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range evs {
		for _, ch := range f.subs {
			ch <- ev
		}
	}
}

// tryPublish sends ev to every subscriber whose channel has room.
func (f *fakeService) tryPublish(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// endStreams closes every subscriber's channel, as the daemon does at
// shutdown or to drop a slow subscriber.
func (f *fakeService) endStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, ch := range f.subs {
		close(ch)
		delete(f.subs, id)
	}
}

// shortDir returns a new temporary directory with a path short enough for a
// unix socket (t.TempDir's can exceed 108 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition, not standing in for one
	}
}

// testServer is a Server running on a socket in a short temp dir.
type testServer struct {
	root   string
	path   string
	srv    *Server
	cancel context.CancelFunc
	done   chan error
}

// startServer serves svc on a new socket; configure runs before Serve.
func startServer(t *testing.T, svc Service, configure ...func(*Server)) *testServer {
	t.Helper()
	root := shortDir(t)
	path := SocketPath(root)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{root: root, path: path, srv: NewServer(svc, nil), cancel: cancel, done: make(chan error, 1)}
	for _, f := range configure {
		f(ts.srv)
	}
	go func() { ts.done <- ts.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop cancels Serve and waits for it to return; it returns Serve's error.
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of cancellation")
		return nil
	}
}

func (ts *testServer) client(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a plain socket connection for writing bytes by hand.
type rawConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func (ts *testServer) raw(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// line reads one newline-terminated message.
func (c *rawConn) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading an answer: %v (got %q)", err, s)
	}
	return s
}

// response is a decoded answer or notification.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeResponse(t *testing.T, s string) response {
	t.Helper()
	var r response
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("answer %q is not JSON: %v", s, err)
	}
	if r.JSONRPC != "2.0" {
		t.Fatalf("answer %q lacks jsonrpc 2.0", s)
	}
	return r
}

// errCode returns the code of an error answer, failing if it is not one.
func (r response) errCode(t *testing.T) int64 {
	t.Helper()
	if r.Error == nil {
		t.Fatalf("want an error answer, got result %s", r.Result)
	}
	return r.Error.Code
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}
