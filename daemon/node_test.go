package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/internal/hostile"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// shortRoot makes a root directory whose socket path fits the unix limit.
func shortRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "me")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type running struct {
	*Node
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned
	err    error         // Serve's result, once done is closed
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("node %s stopped with %v", r.cfg.Alias, r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("node %s did not stop", r.cfg.Alias)
	}
}

func start(t testing.TB, cfg Config) *running {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, n)
}

// serve runs n (made by New) until the test ends, and returns once it has
// announced itself. start is New then serve; a benchmark that changes the
// node before it runs (benchStart) calls serve itself.
func serve(t testing.TB, n *Node) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Node: n, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = n.Serve(ctx)
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	testutil.WaitFor(t, "node to announce itself", 5*time.Second, func() bool { return r.knowsNode(r.ID()) })
	return r
}

func (r *running) knowsNode(id identity.NodeID) bool {
	_, _, ok := r.store.Node(id)
	return ok
}

func (r *running) alias(id identity.NodeID) string {
	na, _, ok := r.store.Node(id)
	if !ok {
		return ""
	}
	return na.Alias
}

func cfg(root, alias string, boot ...identity.Addr) Config {
	c := DefaultConfig(root)
	c.Listen, c.Alias, c.Bootstrap, c.TargetPeers = "127.0.0.1:0", alias, boot, 0
	// MEGAENGINE_TEST_LOG=debug shows the nodes' logs while debugging a test.
	if lvl := os.Getenv("MEGAENGINE_TEST_LOG"); lvl != "" {
		var l slog.Level
		l.UnmarshalText([]byte(lvl))
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})).With("node", alias)
	}
	return c
}

// (1) A–B–C chain: C learns A and A learns C through B. (2) B restarted on
// the same root still knows both from its database.
func TestChainDiscoveryAndRestart(t *testing.T) {
	rootB := shortRoot(t)
	a := start(t, cfg(shortRoot(t), "alpha"))
	b := start(t, cfg(rootB, "beta", a.Addr()))
	c := start(t, cfg(shortRoot(t), "gamma", b.Addr()))
	testutil.WaitFor(t, "C to know A and A to know C", 10*time.Second, func() bool {
		return c.alias(a.ID()) == "alpha" && a.alias(c.ID()) == "gamma"
	})
	// The chain stayed a chain (TargetPeers 0): the knowledge travelled through B.
	if a.tr.Peer(c.ID()) != nil {
		t.Fatal("A and C connected directly; the test wants propagation through B")
	}
	bAddr := b.Addr()
	b.stop(t)
	testutil.WaitFor(t, "A to notice B left", 10*time.Second, func() bool { return a.tr.Peer(b.ID()) == nil })

	// Restart B on the same root, with no bootstrap: it knows A and C from disk.
	again := cfg(rootB, "beta")
	again.Listen = bAddr.HostPort
	b2 := start(t, again)
	if b2.ID() != b.ID() {
		t.Fatalf("restarted node has a new id %s", b2.ID())
	}
	list, err := b2.NodeList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, e := range list {
		seen[e.DID] = e.Alias
	}
	if seen[a.ID().String()] != "alpha" || seen[c.ID().String()] != "gamma" {
		t.Fatalf("after restart B's node list is %v", seen)
	}
}

// A raw peer: a transport with its own identity, used to send what an
// honest node never would.
func rawPeer(t testing.TB, target *running) (*identity.Key, *transport.Peer) {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, transport.DefaultConfig(k, "127.0.0.1:0"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := tr.Dial(ctx, target.Addr())
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "target to register the raw peer", 5*time.Second, func() bool { return target.tr.Peer(k.ID()) != nil })
	return k, p
}

// newTransport makes and serves a bare transport until the test ends.
func newTransport(t testing.TB, c transport.Config) *transport.Transport {
	t.Helper()
	tr, err := transport.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("transport: %v", err)
		}
	})
	return tr
}

func signed(t testing.TB, k *identity.Key, ts time.Time, alias string) []byte {
	t.Helper()
	env, err := wire.Sign(k, ts, &wire.NodeAnnouncement{Alias: alias, Addresses: []string{}, Features: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// (3) A forged announcement is dropped, not relayed, and its sender is
// penalised (dropped and banned).
func TestForgedAnnouncementOverQUIC(t *testing.T) {
	b := start(t, cfg(shortRoot(t), "beta"))
	c := start(t, cfg(shortRoot(t), "gamma", b.Addr()))
	// Once each holds the other's announcement, nothing honest is in
	// flight that B would accept and relay while the forgery is judged.
	testutil.WaitFor(t, "B and C to know each other", 10*time.Second, func() bool { return b.knowsNode(c.ID()) && c.knowsNode(b.ID()) })
	victim, _ := identity.GenerateKey()
	forger, p := rawPeer(t, b)

	before := b.gossip.Stats()
	raw := signed(t, victim, time.Now(), "forged")
	raw[len(raw)-5] ^= 0xff // inside the signature (TTL is the last field)
	if err := p.SendDatagram(transport.DatagramGossip, raw); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "B to drop the forger", 10*time.Second, func() bool { return b.tr.Peer(forger.ID()) == nil })
	if st := b.gossip.Stats(); st.Forged != before.Forged+1 || st.Relayed != before.Relayed {
		t.Fatalf("B's stats after the forgery: %+v (before %+v)", st, before)
	}
	if b.knowsNode(victim.ID()) || c.knowsNode(victim.ID()) {
		t.Fatal("forged announcement was stored")
	}
	if b.gossip.Banned(forger.ID()) == nil {
		t.Fatal("forger not banned")
	}
	// And it cannot come back while banned.
	tr2 := newTransport(t, transport.DefaultConfig(forger, "127.0.0.1:0"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr2.Dial(ctx, b.Addr())
	testutil.WaitFor(t, "banned peer to be refused", 5*time.Second, func() bool { return b.tr.Peer(forger.ID()) == nil && tr2.Peer(b.ID()) == nil })
}

// (4) A replayed older announcement does not replace a newer one.
func TestReplayDoesNotReplaceNewer(t *testing.T) {
	b := start(t, cfg(shortRoot(t), "beta"))
	origin, p := rawPeer(t, b)
	now := time.Now()
	older := signed(t, origin, now.Add(-time.Minute), "old")
	newer := signed(t, origin, now, "new")
	if err := p.SendDatagram(transport.DatagramGossip, newer); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "B to learn the new alias", 5*time.Second, func() bool { return b.alias(origin.ID()) == "new" })
	if err := p.SendDatagram(transport.DatagramGossip, older); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "B to count the stale message", 5*time.Second, func() bool { return b.gossip.Stats().Stale == 1 })
	if got := b.alias(origin.ID()); got != "new" {
		t.Fatalf("replay replaced the announcement: %q", got)
	}
}

// (6) Malformed and oversize datagrams and streams are dropped without a
// crash or a leak, and the node keeps working.
func TestGarbageIsDroppedWithoutLeaks(t *testing.T) {
	b := start(t, cfg(shortRoot(t), "beta"))
	k, p := rawPeer(t, b)
	// The raw peer's own transport runs until the test ends: count from here.
	baseline := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p.SendDatagram(transport.DatagramGossip, []byte("not cbor at all"))
	p.SendDatagram(99, []byte{1, 2, 3}) // unknown datagram kind
	// An oversize gossip stream: more than MaxEnvelopeSize.
	if s, err := p.OpenUni(ctx, transport.StreamGossip); err == nil {
		s.Write(make([]byte, wire.MaxEnvelopeSize+100))
		s.Close()
	}
	// A snapshot frame claiming 4 GiB.
	if s, err := p.OpenUni(ctx, transport.StreamSnapshot); err == nil {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], 0xffffffff)
		s.Write(hdr[:])
		s.Close()
	}
	testutil.WaitFor(t, "B to penalise four times", 10*time.Second, func() bool {
		return b.gossip.Score(k.ID()) >= 4*25 || b.tr.Peer(k.ID()) == nil
	})
	testutil.WaitFor(t, "B to drop the garbage sender", 10*time.Second, func() bool { return b.tr.Peer(k.ID()) == nil })

	// B still works: a good peer gets through and is announced.
	c := start(t, cfg(shortRoot(t), "gamma", b.Addr()))
	testutil.WaitFor(t, "B to learn C", 10*time.Second, func() bool { return b.alias(c.ID()) == "gamma" })
	c.stop(t)
	testutil.WaitFor(t, "goroutines back near the baseline", 20*time.Second, func() bool {
		return runtime.NumGoroutine() <= baseline+5
	})
}

// (7) An announcement larger than a datagram arrives over a stream.
func TestLargeAnnouncementTravelsOnStream(t *testing.T) {
	var addrs []string
	for i := range wire.MaxAddresses {
		host := strings.Repeat("x", wire.MaxAddressLen)
		addrs = append(addrs, host[:wire.MaxAddressLen-10]+string(rune('a'+i))+".org:9000")
	}
	ac := cfg(shortRoot(t), strings.Repeat("a", wire.MaxAliasLen))
	ac.Announce = addrs
	a := start(t, ac)
	if _, raw, _ := a.store.Node(a.ID()); len(raw.Raw) <= wire.DatagramBudget {
		t.Fatalf("announcement is %d bytes; the test needs more than %d", len(raw.Raw), wire.DatagramBudget)
	}
	b := start(t, cfg(shortRoot(t), "beta", a.Addr()))
	c := start(t, cfg(shortRoot(t), "gamma", b.Addr()))
	testutil.WaitFor(t, "C to receive A's large announcement", 10*time.Second, func() bool {
		na, _, ok := c.store.Node(a.ID())
		return ok && len(na.Addresses) == wire.MaxAddresses
	})
}

func TestSecondDaemonOnSameRootRefused(t *testing.T) {
	root := shortRoot(t)
	start(t, cfg(root, "one"))
	_, err := New(cfg(root, "two"))
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second daemon on the same root: %v", err)
	}
	st, err := os.Stat(filepath.Join(root, "med.sock"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", st, err)
	}
}

func TestRPCEventsAndConnect(t *testing.T) {
	a := start(t, cfg(shortRoot(t), "alpha"))
	b := start(t, cfg(shortRoot(t), "beta"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client, err := rpc.Dial(ctx, a.cfg.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	events := make(chan rpc.Event, 16)
	subCtx, subCancel := context.WithCancel(ctx)
	defer subCancel()
	go client.Subscribe(subCtx, nil, func(e rpc.Event) { events <- e })

	c2, err := rpc.Dial(ctx, a.cfg.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	// Wait until the subscription is live: retry connecting until an event arrives.
	peer, err := c2.NodeConnect(ctx, b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if peer.DID != b.ID().String() || peer.Direction != "outbound" {
		t.Fatalf("connect returned %+v", peer)
	}
	got := map[string]bool{}
	for !got[rpc.EventPeerConnected] || !got[rpc.EventNodeDiscovered] {
		select {
		case e := <-events:
			if e.DID == b.ID().String() {
				got[e.Type] = true
			}
		case <-ctx.Done():
			t.Fatalf("events seen: %v", got)
		}
	}
	if _, err := c2.NodeConnect(ctx, "did:key:zbad@127.0.0.1:1"); !rpc.IsCode(err, rpc.CodeInvalidParams) {
		t.Fatalf("bad address: %v", err)
	}
	// B's address with another node's id: the error names the likely cause.
	other, _ := identity.GenerateKey()
	wrong := identity.Addr{ID: other.ID(), HostPort: b.Addr().HostPort}
	_, err = c2.NodeConnect(ctx, wrong.String())
	if !rpc.IsCode(err, rpc.CodeUnavailable) || !strings.Contains(err.Error(), "it is most likely another node than") {
		t.Fatalf("connecting with the wrong id: %v", err)
	}
}

// A stranger floods honest B with one snapshot of 5,000 valid node
// announcements. B keeps at most what one peer may introduce, relays that
// to honest C within C's limits, and C neither drops nor bans B; C's table
// grows by no more than the introduction cap.
func TestSnapshotFloodDoesNotCostHonestLinks(t *testing.T) {
	b := start(t, cfg(shortRoot(t), "beta"))
	c := start(t, cfg(shortRoot(t), "gamma", b.Addr()))
	testutil.WaitFor(t, "B–C connected", 10*time.Second, func() bool { return c.tr.Peer(b.ID()) != nil })
	testutil.WaitFor(t, "C to know B", 10*time.Second, func() bool { return c.knowsNode(b.ID()) })
	c.mu.Lock()
	cBefore := len(c.known)
	c.mu.Unlock()
	_, p := rawPeer(t, b)
	fakes, err := hostile.FakeNodes(5000, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := p.OpenUni(ctx, transport.StreamSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	hostile.WriteSnapshot(s, fakes) // B cuts the stream past its cap
	s.Close()
	capped := b.gossip.Stats
	testutil.WaitForState(t, "B to take what it allows of the flood", 20*time.Second, func() (bool, string) {
		st := capped()
		return st.Accepted >= gossipIntroCap, fmt.Sprintf("%+v", st)
	})
	// Datagrams may be lost on the way (no retransmission of relayed
	// ones): wait until B relayed all it accepted and most of it arrived.
	testutil.WaitForState(t, "C to get what B relays", 20*time.Second, func() (bool, string) {
		c.mu.Lock()
		n := len(c.known) - cBefore
		c.mu.Unlock()
		st := b.gossip.Stats()
		return st.Relayed >= st.Accepted && n >= gossipIntroCap/2, fmt.Sprintf("%d new nodes at C; B %+v", n, st)
	})
	c.mu.Lock()
	grew := len(c.known) - cBefore
	c.mu.Unlock()
	if grew > gossipIntroCap+1 { // + the stranger itself
		t.Fatalf("C's table grew by %d nodes, over the cap of %d", grew, gossipIntroCap)
	}
	if c.tr.Peer(b.ID()) == nil || c.gossip.Banned(b.ID()) != nil || c.gossip.Score(b.ID()) != 0 {
		t.Fatalf("C penalised honest B for relaying: connected %v, banned %v, score %d",
			c.tr.Peer(b.ID()) != nil, c.gossip.Banned(b.ID()), c.gossip.Score(b.ID()))
	}
	t.Logf("B: %+v; C's table grew by %d", b.gossip.Stats(), grew)
}

// gossipIntroCap is the gossip engine's default IntroNodes.
const gossipIntroCap = 256
