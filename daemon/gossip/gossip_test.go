package gossip

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// fakeClock is a settable clock shared by a test's engines.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type node struct {
	key    *identity.Key
	store  *MemStore
	engine *Engine
}

func (n *node) id() identity.NodeID { return n.key.ID() }

func newNet(t *testing.T, clock *fakeClock, count int) (*MemNet, []*node) {
	t.Helper()
	net := NewMemNet()
	t.Cleanup(net.Close)
	nodes := make([]*node, count)
	for i := range nodes {
		k, err := identity.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		n := &node{key: k, store: NewMemStore()}
		n.engine = New(Config{Key: k, Store: n.store, Net: net.Endpoint(k.ID()), Clock: clock.Now})
		net.Attach(k.ID(), n.engine)
		nodes[i] = n
	}
	return net, nodes
}

// settle waits until no message is queued or being handled anywhere.
func settle(t *testing.T, net *MemNet, nodes []*node) {
	t.Helper()
	total := func() uint64 {
		var s uint64
		for _, n := range nodes {
			st := n.engine.Stats()
			s += st.Accepted + st.Duplicate + st.Stale + st.Forged + st.Malformed + st.Expired + st.Flooded
		}
		return s
	}
	prev := total()
	for stable := 0; stable < 20; {
		time.Sleep(time.Millisecond)
		if cur := total(); cur != prev || !net.Idle() {
			prev, stable = cur, 0
		} else {
			stable++
		}
	}
}

func nodeAnn(alias string) *wire.NodeAnnouncement {
	return &wire.NodeAnnouncement{Alias: alias, Addresses: []string{"127.0.0.1:9000"}, Version: "test"}
}

func knows(n *node, origin identity.NodeID) (string, bool) {
	a, ok, _ := n.store.Get(uint8(wire.TypeNodeAnnouncement), nil, origin)
	if !ok {
		return "", false
	}
	env, err := wire.Unmarshal(a.Raw)
	if err != nil {
		return "", false
	}
	body, err := env.DecodeBody()
	if err != nil {
		return "", false
	}
	return body.(*wire.NodeAnnouncement).Alias, true
}

func TestChainPropagationBothWays(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net, n := newNet(t, clock, 3)
	a, b, c := n[0], n[1], n[2]
	net.Connect(a.id(), b.id())
	net.Connect(b.id(), c.id())
	if _, err := a.engine.Publish(nodeAnn("alpha")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.engine.Publish(nodeAnn("gamma")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "c to know a and a to know c", 5*time.Second, func() bool {
		x, ok1 := knows(c, a.id())
		y, ok2 := knows(a, c.id())
		return ok1 && ok2 && x == "alpha" && y == "gamma"
	})
	// A change is announced at once and replaces the old one everywhere.
	clock.Advance(time.Second)
	if _, err := a.engine.Publish(nodeAnn("alpha-2")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "c to see a's new alias", 5*time.Second, func() bool { x, _ := knows(c, a.id()); return x == "alpha-2" })
}

func TestSnapshotTeachesNewcomer(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net, n := newNet(t, clock, 3)
	a, b, d := n[0], n[1], n[2]
	net.Connect(a.id(), b.id())
	a.engine.Publish(nodeAnn("alpha"))
	b.engine.Publish(nodeAnn("beta"))
	testutil.WaitFor(t, "b to know a", 5*time.Second, func() bool { _, ok := knows(b, a.id()); return ok })
	// d publishes before it has peers: nobody hears it until it connects.
	d.engine.Publish(nodeAnn("delta"))
	net.Connect(d.id(), b.id())
	testutil.WaitFor(t, "d to learn a and b from b's snapshot, and a to learn d", 5*time.Second, func() bool {
		_, ok1 := knows(d, a.id())
		_, ok2 := knows(d, b.id())
		_, ok3 := knows(a, d.id())
		return ok1 && ok2 && ok3
	})
}

func TestForgedMessageDroppedNotRelayedAndSenderPenalised(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net, n := newNet(t, clock, 3)
	a, b, c := n[0], n[1], n[2]
	net.Connect(b.id(), c.id())
	forger, _ := identity.GenerateKey()
	net.Connect(forger.ID(), b.id())

	env, err := wire.Sign(a.key, clock.Now(), nodeAnn("evil"))
	if err != nil {
		t.Fatal(err)
	}
	env.Signature[0] ^= 1
	raw, _ := env.Marshal()
	net.Inject(forger.ID(), b.id(), raw)
	testutil.WaitFor(t, "b to count the forgery", 5*time.Second, func() bool { return b.engine.Stats().Forged == 1 })
	settle(t, net, n)
	if _, ok := knows(b, a.id()); ok {
		t.Fatal("b stored a forged announcement")
	}
	if st := b.engine.Stats(); st.Relayed != 0 {
		t.Fatalf("b relayed %d messages after a forgery", st.Relayed)
	}
	if st := c.engine.Stats(); st.Accepted+st.Forged+st.Duplicate != 0 {
		t.Fatalf("c received something: %+v", st)
	}
	if b.engine.Score(forger.ID()) < PenaltyForged {
		t.Fatalf("forger's score %d", b.engine.Score(forger.ID()))
	}
	testutil.WaitFor(t, "b to drop the forger", 5*time.Second, func() bool {
		d := net.Disconnected(b.id())
		return len(d) == 1 && d[0] == forger.ID()
	})
	if err := b.engine.Banned(forger.ID()); err == nil {
		t.Fatal("forger not banned")
	}
	clock.Advance(11 * time.Minute)
	b.engine.Tick()
	if err := b.engine.Banned(forger.ID()); err != nil {
		t.Fatal("ban did not expire")
	}
	// The authentic message with the same signed bytes still gets through:
	// the forgery did not poison the seen-set.
	env.Signature[0] ^= 1
	good, _ := env.Marshal()
	net.Inject(forger.ID(), b.id(), good)
	testutil.WaitFor(t, "b to accept the authentic copy", 5*time.Second, func() bool { _, ok := knows(b, a.id()); return ok })
}

func TestReplayedOlderAnnouncementDoesNotReplaceNewer(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net, n := newNet(t, clock, 2)
	a, b := n[0], n[1]
	net.Connect(a.id(), b.id())
	old, _ := a.engine.Publish(nodeAnn("old"))
	clock.Advance(time.Second)
	a.engine.Publish(nodeAnn("new"))
	testutil.WaitFor(t, "b to see the new alias", 5*time.Second, func() bool { x, _ := knows(b, a.id()); return x == "new" })
	// After the seen-window has passed (ids are kept up to twice it), a
	// replay of the old one arrives.
	for range 2 {
		clock.Advance(6 * time.Minute)
		b.engine.Tick()
	}
	raw, _ := old.Marshal()
	replayer, _ := identity.GenerateKey()
	net.Connect(replayer.ID(), b.id())
	net.Inject(replayer.ID(), b.id(), raw)
	testutil.WaitFor(t, "b to count a stale message", 5*time.Second, func() bool { return b.engine.Stats().Stale >= 1 })
	if x, _ := knows(b, a.id()); x != "new" {
		t.Fatalf("replay replaced the newer announcement: alias %q", x)
	}
}

func TestMalformedAndTTL(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net, n := newNet(t, clock, 3)
	a, b, c := n[0], n[1], n[2]
	net.Connect(b.id(), c.id())
	peer, _ := identity.GenerateKey()
	net.Connect(peer.ID(), b.id())

	net.Inject(peer.ID(), b.id(), []byte{0xa1, 0x01}) // a CBOR map, not an envelope
	testutil.WaitFor(t, "malformed counted", 5*time.Second, func() bool { return b.engine.Stats().Malformed == 1 })
	if s := b.engine.Score(peer.ID()); s != PenaltyMalformed {
		t.Fatalf("score after garbage: %d", s)
	}

	// TTL 0 arrives and is applied, but not relayed further.
	env, _ := wire.Sign(a.key, clock.Now(), nodeAnn("ttl0"))
	env.TTL = 0
	raw, _ := env.Marshal()
	net.Inject(peer.ID(), b.id(), raw)
	testutil.WaitFor(t, "b to accept", 5*time.Second, func() bool { _, ok := knows(b, a.id()); return ok })
	settle(t, net, n)
	if _, ok := knows(c, a.id()); ok {
		t.Fatal("a TTL-0 message was relayed")
	}

	// Far-future timestamps are dropped without penalty.
	future, _ := wire.Sign(a.key, clock.Now().Add(time.Hour), nodeAnn("future"))
	raw, _ = future.Marshal()
	net.Inject(peer.ID(), b.id(), raw)
	testutil.WaitFor(t, "future dropped", 5*time.Second, func() bool { return b.engine.Stats().Expired == 1 })
	if x, _ := knows(b, a.id()); x != "ttl0" {
		t.Fatalf("future message applied: %q", x)
	}
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net := NewMemNet()
	defer net.Close()
	k, _ := identity.GenerateKey()
	e := New(Config{Key: k, Store: NewMemStore(), Net: net.Endpoint(k.ID()), Clock: clock.Now, Rate: 1, Burst: 5, BanScore: 1000, DisableRelay: true})
	flooder, _ := identity.GenerateKey()
	signed := func(key *identity.Key, i int) []byte {
		env, _ := wire.Sign(key, clock.Now().Add(time.Duration(i)*time.Millisecond), nodeAnn(fmt.Sprint("n", i)))
		raw, _ := env.Marshal()
		return raw
	}
	for i := range 10 {
		e.HandleMessage(flooder.ID(), signed(flooder, i), false)
	}
	st := e.Stats()
	if st.Accepted+st.Stale != 5 || st.Flooded != 5 || e.Score(flooder.ID()) != 5*PenaltyFlood {
		t.Fatalf("with burst 5: %+v, score %d", st, e.Score(flooder.ID()))
	}
	clock.Advance(2 * time.Second) // two tokens back
	for i := range 3 {
		e.HandleMessage(flooder.ID(), signed(flooder, 100+i), false)
	}
	if st := e.Stats(); st.Flooded != 6 {
		t.Fatalf("after refill: %+v", st)
	}
	// Over the rate with what others signed: a relay's excess is dropped,
	// not punished.
	relay, _ := identity.GenerateKey()
	before := e.Stats().Flooded
	for i := range 10 {
		other, _ := identity.GenerateKey()
		e.HandleMessage(relay.ID(), signed(other, i), false)
	}
	if got := e.Stats().Flooded - before; got != 5 || e.Score(relay.ID()) != 0 {
		t.Fatalf("a relay over the rate: %d dropped, score %d; want 5 dropped and no penalty", got, e.Score(relay.ID()))
	}
}

func TestRetransmitAndRefresh(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net, n := newNet(t, clock, 2)
	a, b := n[0], n[1]
	net.Connect(a.id(), b.id())
	first, _ := a.engine.Publish(nodeAnn("alpha"))
	testutil.WaitFor(t, "b to know a", 5*time.Second, func() bool { _, ok := knows(b, a.id()); return ok })
	testutil.WaitFor(t, "a to have b's subscription", 5*time.Second, func() bool {
		a.engine.mu.Lock()
		defer a.engine.mu.Unlock()
		ps := a.engine.peers[b.id()]
		return ps != nil && ps.sub != nil
	})
	// The next two ticks resend it as an IHave notice (b speaks the
	// protocol, so it gets no duplicate copy), the third does not.
	for i := 1; i <= 3; i++ {
		a.engine.Tick()
		want := uint64(min(i, 2))
		testutil.WaitForState(t, "a's notices", 5*time.Second, func() (bool, string) { st := a.engine.Stats(); return st.IHaves == want, fmt.Sprintf("%+v", st) })
		settle(t, net, n)
		if got := b.engine.Stats(); got.Duplicate != 0 || got.Accepted != 1 {
			t.Fatalf("after tick %d: b got %d duplicates, accepted %d", i, got.Duplicate, got.Accepted)
		}
	}
	if a.engine.Stats().IHaves != 2 {
		t.Fatalf("%d notices after three ticks, want 2", a.engine.Stats().IHaves)
	}
	// An hour later the announcement is re-signed with a newer timestamp.
	clock.Advance(61 * time.Minute)
	a.engine.Tick()
	testutil.WaitFor(t, "b to store the refreshed announcement", 5*time.Second, func() bool {
		got, _, _ := b.store.Get(uint8(wire.TypeNodeAnnouncement), nil, a.id())
		return got.Timestamp > first.Timestamp
	})
}

func TestPublishAfterRestartIsNewerThanStored(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	net := NewMemNet()
	defer net.Close()
	k, _ := identity.GenerateKey()
	st := NewMemStore()
	e1 := New(Config{Key: k, Store: st, Net: net.Endpoint(k.ID()), Clock: clock.Now})
	first, _ := e1.Publish(nodeAnn("one"))
	// A new engine on the same store, with a clock that went backwards.
	back := &fakeClock{t: clock.Now().Add(-time.Minute)}
	e2 := New(Config{Key: k, Store: st, Net: net.Endpoint(k.ID()), Clock: back.Now})
	second, err := e2.Publish(nodeAnn("two"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Timestamp <= first.Timestamp {
		t.Fatalf("restart published ts %d, not after stored %d", second.Timestamp, first.Timestamp)
	}
}
