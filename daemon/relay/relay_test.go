package relay

import (
	"context"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
)

// pair is a transport with its relay service, served until the test ends.
type pair struct {
	t *transport.Transport
	s *Service
}

func newPair(t *testing.T, isRelay bool, relays func(identity.NodeID) bool) *pair {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{}
	cfg := transport.DefaultConfig(k, "127.0.0.1:0")
	cfg.OnStream = func(peer *transport.Peer, kind byte, st *quic.Stream) {
		if !p.s.HandleStream(peer, kind, st) {
			st.CancelRead(0)
			st.CancelWrite(0)
		}
	}
	if p.t, err = transport.New(cfg); err != nil {
		t.Fatal(err)
	}
	p.s = New(Config{Transport: p.t, Relay: isRelay, IsRelay: relays})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { p.t.Serve(ctx); done <- struct{}{} }()
	go func() { p.s.Serve(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return p
}

// A node connected to a relay learns that it is reachable: the relay's
// probe from another socket arrives (on loopback nothing filters it).
func TestReachableThroughDialBack(t *testing.T) {
	r := newPair(t, true, nil)
	n := newPair(t, false, func(id identity.NodeID) bool { return id == r.t.ID() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.t.Dial(ctx, identity.Addr{ID: r.t.ID(), HostPort: r.t.LocalAddr().String()}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the node to be found reachable", 10*time.Second, func() bool { return n.s.Reachability() == Reachable })
}

// A node that is not a relay refuses dial-backs: the asker stays unknown.
func TestOnlyRelaysDialBack(t *testing.T) {
	r := newPair(t, false, nil)
	n := newPair(t, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := n.t.Dial(ctx, identity.Addr{ID: r.t.ID(), HostPort: r.t.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n.s.askDialBack(ctx, p); err == nil || got != Unknown {
		t.Fatalf("non-relay answered a dial-back: %v, %v", got, err)
	}
}
