package daemon

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// BenchmarkHandshakeQUIC measures one connection set-up between two
// transports on 127.0.0.1: the QUIC handshake (TLS 1.3), the Noise IK
// handshake bound to it and the registration of the peer — Transport.Dial
// from call to return. Tearing each connection down (and waiting until both
// ends have forgotten it, so every Dial is a fresh handshake) is excluded
// from the timing.
func BenchmarkHandshakeQUIC(b *testing.B) {
	ka, err := identity.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	kb, err := identity.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	gone := make(chan struct{}, 16)
	cb := transport.DefaultConfig(kb, "127.0.0.1:0")
	cb.OnPeerGone = func(*transport.Peer, error) { gone <- struct{}{} }
	trB := newTransport(b, cb)
	trA := newTransport(b, transport.DefaultConfig(ka, "127.0.0.1:0"))
	addr := identity.Addr{ID: kb.ID(), HostPort: trB.LocalAddr().String()}

	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p, err := trA.Dial(ctx, addr)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p.Close(transport.CodeClosed, "benchmark")
		<-p.Done()
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
			b.Fatal("the responder did not see the connection close")
		}
		b.StartTimer()
	}
}

// BenchmarkChainPropagation measures gossip latency over two hops of real
// QUIC: A–B–C on loopback (C bootstraps to B, B to A, no other dialling);
// each iteration A publishes a new NodeAnnouncement and the clock stops
// when C's store holds it. ns/op is that latency: A signs and stores, the
// datagram reaches B, B verifies, stores and relays, C verifies and stores.
// It also reports the median and the 99th percentile.
//
// Each iteration's announcement must arrive: a datagram lost on loopback
// would otherwise wait for the 10 s retransmit tick, so a loss fails the
// benchmark rather than skewing it.
func BenchmarkChainPropagation(b *testing.B) {
	a := benchStart(b, cfg(shortRoot(b), "alpha"), nil)
	mid := benchStart(b, cfg(shortRoot(b), "beta", a.Addr()), nil)
	// C says when it has stored an announcement of A: gossip calls OnAccept
	// right after the store took it. Waiting on that instead of polling the
	// store keeps a busy poller from competing for the CPU with the three
	// nodes it measures (on a two-core machine polling doubled the tail).
	stored := make(chan string, 1)
	aID := a.ID()
	c := benchStart(b, cfg(shortRoot(b), "gamma", mid.Addr()), func(env *wire.Envelope, body wire.Body) {
		if na, ok := body.(*wire.NodeAnnouncement); ok && env.Origin == aID {
			select {
			case stored <- na.Alias:
			default:
			}
		}
	})
	testutil.WaitFor(b, "C to know A and A to know C", 10*time.Second, func() bool {
		return c.alias(a.ID()) == "alpha" && a.alias(c.ID()) == "gamma"
	})
	if a.tr.Peer(c.ID()) != nil {
		b.Fatal("A and C connected directly; the benchmark wants two hops through B")
	}
	addrs := a.announceAddrs()
	lat := make([]time.Duration, 0, b.N)

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		alias := fmt.Sprintf("alpha-%d", i)
		select { // an older alias (the set-up's) must not fill the slot
		case <-stored:
		default:
		}
		t0 := time.Now()
		if _, err := a.gossip.Publish(&wire.NodeAnnouncement{
			Alias: alias, Addresses: addrs, Kind: wire.KindNormal, Version: versionForWire(), Features: []string{},
		}); err != nil {
			b.Fatal(err)
		}
		timeout := time.NewTimer(5 * time.Second)
		for got := ""; got != alias; {
			select {
			case got = <-stored:
			case <-timeout.C:
				b.Fatalf("iteration %d: C did not receive A's announcement within 5 s (B %+v, C %+v)",
					i, mid.gossip.Stats(), c.gossip.Stats())
			}
		}
		timeout.Stop()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	if last := fmt.Sprintf("alpha-%d", b.N-1); c.alias(a.ID()) != last {
		b.Fatalf("C's store holds alias %q for A, want %q", c.alias(a.ID()), last)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// benchStart is start (node_test.go) for benchmarks, with one change: the
// node's gossip accepts any message rate. The benchmark sends one
// announcement after another for as long as the framework wants (thousands
// per second), far past the default per-peer limit (100/s, burst 1000),
// which would count A as a flooder and ban it; the path measured (verify,
// store, relay) is unchanged.
//
// onAccept, if not nil, is called after the node's own handler for every
// announcement it accepts (stored) from another node.
func benchStart(b *testing.B, c Config, onAccept func(*wire.Envelope, wire.Body)) *running {
	b.Helper()
	c.GossipRate, c.GossipBurst, c.onAccepted = 1e9, 1e9, onAccept
	return start(b, c)
}
