package transport

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/hostile"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
)

// dialWithin dials target from a fresh node and fails unless it connects
// within d.
func dialWithin(t *testing.T, target *Transport, d time.Duration) time.Duration {
	t.Helper()
	honest, _ := newNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	began := time.Now()
	if _, err := honest.Dial(ctx, addrOf(target)); err != nil {
		t.Fatalf("an honest dial under attack failed: %v", err)
	}
	return time.Since(began)
}

// 200 QUIC connections that never start Noise take no peer slot, stay
// within the pending bound, and do not keep an honest node out.
func TestHalfOpenConnectionsDoNotLockOut(t *testing.T) {
	target, _ := newNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opened, closeAll, err := hostile.HalfOpen(ctx, target.LocalAddr().String(), 200)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	t.Logf("%d half-open connections opened", opened)
	if p := target.Pending(); p > target.cfg.Limits.MaxPending {
		t.Fatalf("%d connections pending, over the bound of %d", p, target.cfg.Limits.MaxPending)
	}
	took := dialWithin(t, target, 5*time.Second)
	t.Logf("honest dial under attack: %v", took)
	testutil.WaitFor(t, "the target to register the honest peer", 5*time.Second, func() bool { return len(target.Peers()) == 1 })
}

// A flood of forged Initial packets turns on address validation (Retry):
// the handshakes in flight stay bounded, an honest node still connects,
// and the memory it cost is given back.
func TestInitialFloodIsBounded(t *testing.T) {
	// The few forged handshakes admitted before Retry starts are given up
	// after the QUIC handshake timeout: shortened here.
	target, _ := newNode(t, func(c *Config) { c.HandshakeTimeout = 2 * time.Second })
	baseline := heapInUse()
	flood := make(chan error, 1)
	go func() { flood <- hostile.InitialFlood(target.LocalAddr().String(), 20000) }()
	peak := 0
	for done := false; !done; {
		select {
		case err := <-flood:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
			peak = max(peak, target.QUICHandshakes())
			runtime.Gosched()
		}
	}
	if lim := target.cfg.Limits.MaxQUICHandshakes; peak > lim {
		t.Fatalf("%d QUIC handshakes in flight, over the cap of %d", peak, lim)
	}
	took := dialWithin(t, target, 5*time.Second)
	testutil.WaitFor(t, "the forged handshakes to be forgotten", 15*time.Second, func() bool { return target.QUICHandshakes() == 0 })
	after := heapInUse()
	t.Logf("peak handshakes in flight %d; honest dial %v; heap %d MB before, %d MB after", peak, took, baseline>>20, after>>20)
	if after > baseline+50<<20 {
		t.Fatalf("heap grew from %d MB to %d MB after the flood", baseline>>20, after>>20)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// 63 throwaway keys fill only the strangers' share of the inbound slots
// (64 minus 16 reserved, the defaults); a known peer still gets in, and
// takes a stranger's slot once every slot is used.
func TestKnownPeersAreNotStarvedByStrangers(t *testing.T) {
	var known sync.Map // identity.NodeID → true
	isKnown := func(id identity.NodeID) bool { _, ok := known.Load(id); return ok }
	target, _ := newNode(t, func(c *Config) {
		c.Rank = func(id identity.NodeID) int {
			if isKnown(id) {
				return 100
			}
			return 0
		}
	})
	slots, reserved := target.cfg.MaxInbound, target.cfg.Limits.ReservedInbound
	dial := func(k bool) (*Transport, error) {
		n, _ := newNode(t, nil)
		if k {
			known.Store(n.ID(), true)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := n.Dial(ctx, addrOf(target))
		if err == nil {
			testutil.WaitFor(t, "the target to register the peer", 5*time.Second, func() bool { return target.Peer(n.ID()) != nil })
		}
		return n, err
	}
	in := 0
	for range 63 {
		if _, err := dial(false); err == nil {
			in++
		}
	}
	if in != slots-reserved {
		t.Fatalf("%d of 63 strangers got in, want %d (the unreserved slots)", in, slots-reserved)
	}
	for i := range reserved {
		if _, err := dial(true); err != nil {
			t.Fatalf("known peer %d kept out by strangers: %v", i, err)
		}
	}
	// Every slot is used; one more known peer replaces a stranger.
	k, err := dial(true)
	if err != nil {
		t.Fatalf("a known peer kept out of a full node: %v", err)
	}
	testutil.WaitFor(t, "one stranger to make room", 5*time.Second, func() bool { return len(target.Peers()) == slots })
	knownIn := 0
	for _, p := range target.Peers() {
		if isKnown(p.ID) {
			knownIn++
		}
	}
	if knownIn != reserved+1 || target.Peer(k.ID()) == nil {
		t.Fatalf("%d known peers connected, want %d", knownIn, reserved+1)
	}
}
