package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

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
