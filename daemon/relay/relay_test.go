package relay

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/nat"
)

// pair is a transport with its relay service, served until the test ends.
type pair struct {
	t *transport.Transport
	s *Service
}

func newPair(t *testing.T, isRelay bool, relays func(identity.NodeID) bool) *pair {
	t.Helper()
	return newPairServing(t, isRelay, relays, nil)
}

// newPairServing is newPair with serve handling the streams instead of
// the service, where it returns true.
func newPairServing(t *testing.T, isRelay bool, relays func(identity.NodeID) bool, serve func(*transport.Peer, byte, *quic.Stream) bool) *pair {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{}
	cfg := transport.DefaultConfig(k, "127.0.0.1:0")
	cfg.OnStream = func(peer *transport.Peer, kind byte, st *quic.Stream) {
		if serve != nil && serve(peer, kind, st) {
			return
		}
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
// probe from another socket arrives (on loopback nothing filters it). The
// check starts when the node is told a relay may have connected.
func TestReachableThroughDialBack(t *testing.T) {
	r := newPair(t, true, nil)
	n := newPair(t, false, func(id identity.NodeID) bool { return id == r.t.ID() })
	// The first check, at the start, finds no relay: the next waits for Kick.
	testutil.WaitFor(t, "the first check to find no relay", 10*time.Second, func() bool {
		n.s.mu.Lock()
		defer n.s.mu.Unlock()
		return n.s.noRelay
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.t.Dial(ctx, identity.Addr{ID: r.t.ID(), HostPort: r.t.LocalAddr().String()}); err != nil {
		t.Fatal(err)
	}
	n.s.Kick() // as the node does when a peer connects
	// The deadline only bounds a loaded machine: the kick starts a check
	// at once, and a probe slower than probeWait still counts.
	testutil.WaitFor(t, "the node to be found reachable", 30*time.Second, func() bool { return n.s.Reachability() == Reachable })
}

// A probe slower than probeWait first makes the node unreachable, with a
// retry due after retryFirst, not recheckEvery; when it arrives after all,
// before that retry, the node is reachable at once.
func TestLateProbeProvesReachable(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	slow := func(p *transport.Peer, kind byte, st *quic.Stream) bool {
		if kind != transport.StreamDialBack {
			return false
		}
		defer st.Close()
		var req nat.DialBack
		if err := nat.Read(st, &req); err != nil {
			return true
		}
		_ = nat.Write(st, &nat.Reply{OK: true})
		<-release
		_ = sendProbe(p.RemoteAddrPort(), req.Nonce)
		return true
	}
	r := newPairServing(t, true, nil, slow)
	n := newPair(t, false, func(id identity.NodeID) bool { return id == r.t.ID() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.t.Dial(ctx, identity.Addr{ID: r.t.ID(), HostPort: r.t.LocalAddr().String()}); err != nil {
		t.Fatal(err)
	}
	n.s.Kick()
	testutil.WaitFor(t, "the slow probe to make the node unreachable", 30*time.Second, func() bool { return n.s.Reachability() == Unreachable })
	n.s.mu.Lock()
	wait := time.Until(n.s.next)
	n.s.mu.Unlock()
	if wait <= 0 || wait > retryFirst {
		t.Fatalf("after a probe that did not arrive the next check is due in %v, want at most %v", wait, retryFirst)
	}
	once.Do(func() { close(release) })
	// Well before the retry at retryFirst: only the late probe can do it.
	testutil.WaitFor(t, "the late probe to make the node reachable", retryFirst/2, func() bool { return n.s.Reachability() == Reachable })
}

// Checks whose probe does not arrive are retried sooner than the periodic
// recheck, backing off: 15 s, 30 s, 60 s … up to recheckEvery.
func TestRetryBacksOff(t *testing.T) {
	want := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, recheckEvery, recheckEvery}
	for i, w := range want {
		if got := retryAfter(i + 1); got != w {
			t.Errorf("retry after %d failures: %v, want %v", i+1, got, w)
		}
	}
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
	if got, _, err := n.s.askDialBack(ctx, p); err == nil || got != Unknown {
		t.Fatalf("non-relay answered a dial-back: %v, %v", got, err)
	}
}

// A check no relay answered keeps the state: a known one backs off like a
// failed probe, an unknown one is retried after checkEvery.
func TestUnansweredCheckBacksOff(t *testing.T) {
	s := New(Config{})
	s.unanswered()
	if wait := time.Until(s.next); wait <= 0 || wait > checkEvery || s.Reachability() != Unknown {
		t.Fatalf("unknown: next check in %v, state %v; want at most %v, unknown", wait, s.Reachability(), checkEvery)
	}
	s.result(Reachable)
	s.unanswered()
	if wait := time.Until(s.next); wait <= 0 || wait > retryFirst || s.Reachability() != Reachable {
		t.Fatalf("reachable, no answer: next check in %v, state %v; want at most %v, reachable", wait, s.Reachability(), retryFirst)
	}
}
