package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
)

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
		Direction: DirectionOutbound, Path: "direct", Address: "192.0.2.44:9000", Kind: KindNormal, ConnectedAt: at(10, 0, 6)}
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

// node.stop answers with the daemon's pid and only then asks the Service
// to stop; a call with params stops nothing.
func TestNodeStopAnswersThenStops(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	var raw json.RawMessage
	if err := c.Call(ctxT(t), MethodNodeStop, map[string]int{"after": 1}, &raw, nil); !IsCode(err, CodeInvalidParams) {
		t.Fatalf("node.stop with params: %v", err)
	}
	select {
	case <-f.stops:
		t.Fatal("node.stop with invalid params stopped the node")
	default:
	}
	r, err := c.NodeStop(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.PID != os.Getpid() {
		t.Errorf("node.stop answered pid %d, want the server's %d", r.PID, os.Getpid())
	}
	select {
	case <-f.stops:
	case <-ctxT(t).Done():
		t.Fatal("node.stop answered but never called NodeStop")
	}
}
