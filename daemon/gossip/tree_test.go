package gossip

import (
	"slices"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// stepNet is a single-threaded network for tests of the broadcast tree:
// sends queue up, timers wait for run, and a drop rule loses chosen
// messages.
type stepNet struct {
	clock   *fakeClock
	engines map[identity.NodeID]*Engine
	links   map[identity.NodeID][]identity.NodeID
	queue   []stepMsg
	timers  []stepTimer
	drop    func(from, to identity.NodeID, typ wire.MsgType) bool
	sent    []*wire.Envelope // every envelope sent, decoded
}

type stepMsg struct {
	from, to identity.NodeID
	raw      []byte
	snapshot bool
}

type stepTimer struct {
	at time.Time
	f  func()
}

type stepEnd struct {
	n  *stepNet
	id identity.NodeID
}

func (e stepEnd) Peers() []identity.NodeID { return e.n.links[e.id] }
func (e stepEnd) Send(to identity.NodeID, raw []byte) error {
	typ := wire.MsgType(0)
	if env, err := wire.Unmarshal(raw); err == nil {
		typ = env.Type
		e.n.sent = append(e.n.sent, env)
	}
	if e.n.drop == nil || !e.n.drop(e.id, to, typ) {
		e.n.queue = append(e.n.queue, stepMsg{e.id, to, raw, false})
	}
	return nil
}
func (e stepEnd) SendSnapshot(to identity.NodeID, msgs [][]byte) error {
	for _, raw := range msgs {
		if env, err := wire.Unmarshal(raw); err == nil {
			e.n.sent = append(e.n.sent, env)
		}
		e.n.queue = append(e.n.queue, stepMsg{e.id, to, raw, true})
	}
	return nil
}
func (e stepEnd) Disconnect(identity.NodeID, string) {}

func (n *stepNet) after(d time.Duration, f func()) {
	n.timers = append(n.timers, stepTimer{n.clock.Now().Add(d), f})
}

// run delivers everything, firing timers in time order when no message is queued.
func (n *stepNet) run() {
	for len(n.queue) > 0 || len(n.timers) > 0 {
		if len(n.queue) > 0 {
			m := n.queue[0]
			n.queue = n.queue[1:]
			n.engines[m.to].HandleMessage(m.from, m.raw, m.snapshot)
			continue
		}
		slices.SortStableFunc(n.timers, func(a, b stepTimer) int { return a.at.Compare(b.at) })
		t := n.timers[0]
		n.timers = n.timers[1:]
		if t.at.After(n.clock.Now()) {
			n.clock.Advance(t.at.Sub(n.clock.Now()))
		}
		t.f()
	}
}

// newTriangle connects three engines that each follow repo.
func newTriangle(t *testing.T, repo identity.RepoID) (*stepNet, []*Engine, []*MemStore) {
	t.Helper()
	n := &stepNet{clock: &fakeClock{t: time.Now()}, engines: map[identity.NodeID]*Engine{}, links: map[identity.NodeID][]identity.NodeID{}}
	var engines []*Engine
	var stores []*MemStore
	var ids []identity.NodeID
	for range 3 {
		k, err := identity.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		st := NewMemStore()
		e := New(Config{Key: k, Store: st, Net: stepEnd{n, k.ID()}, Clock: n.clock.Now, AfterFunc: n.after, Spawn: func(f func()) { n.after(0, f) }})
		e.SetSubscriptions([]identity.RepoID{repo}, false)
		n.engines[k.ID()] = e
		engines, stores, ids = append(engines, e), append(stores, st), append(ids, k.ID())
	}
	for i, id := range ids {
		for j, other := range ids {
			if i != j {
				n.links[id] = append(n.links[id], other)
			}
		}
	}
	for _, id := range ids {
		for _, other := range n.links[id] {
			n.engines[id].PeerConnected(other)
		}
	}
	n.run()
	return n, engines, stores
}

func testRepo(t *testing.T, seed byte) identity.RepoID {
	t.Helper()
	k, _ := identity.GenerateKey()
	r, err := identity.NewRepoID(make([]byte, 20), k.ID())
	if err != nil {
		t.Fatal(err)
	}
	r[0] = seed
	return r
}

func repoAnn(repo identity.RepoID, seq uint64) *wire.RepoAnnouncement {
	return &wire.RepoAnnouncement{Repo: repo, RefsSeq: seq, RefsDigest: [32]byte{byte(seq), 1}}
}

func TestTreePrunesDuplicatesAndGraftsOnLoss(t *testing.T) {
	repo := testRepo(t, 1)
	n, e, st := newTriangle(t, repo)
	a, b, c := e[0], e[1], e[2]
	if _, err := a.Publish(repoAnn(repo, 1)); err != nil {
		t.Fatal(err)
	}
	n.run()
	if b.Stats().Prunes+c.Stats().Prunes == 0 {
		t.Fatal("no Prune after duplicates: the links stay eager (flooding)")
	}
	// The b–c link is lazy now. Lose a's push to c: c hears of the
	// message by IHave from b, grafts, and gets it from b.
	cID := c.cfg.Key.ID()
	n.drop = func(from, to identity.NodeID, typ wire.MsgType) bool {
		return to == cID && from == a.cfg.Key.ID() && typ == wire.TypeRepoAnnouncement
	}
	env, err := a.Publish(repoAnn(repo, 2))
	if err != nil {
		t.Fatal(err)
	}
	n.run()
	got, ok, _ := st[2].Get(uint8(wire.TypeRepoAnnouncement), []byte(repo.String()), a.cfg.Key.ID())
	if !ok || got.Timestamp != env.Timestamp {
		t.Fatal("c did not get the announcement whose push was lost")
	}
	if c.Stats().Grafts == 0 {
		t.Fatalf("c got it without grafting: %+v", c.Stats())
	}
	if d := c.Stats().Duplicate; d > 1 {
		t.Fatalf("c received %d duplicates, want at most 1", d)
	}
}

// IHave, Graft and Prune travel unsigned (the peer's connection vouches
// for them), Subscribe signed; an unsigned link message whose origin is
// not the peer it came from is refused and costs that peer.
func TestLinkMessagesUnsignedFromThePeerOnly(t *testing.T) {
	repo := testRepo(t, 1)
	n, e, _ := newTriangle(t, repo)
	a, b, c := e[0], e[1], e[2]
	if _, err := a.Publish(repoAnn(repo, 1)); err != nil {
		t.Fatal(err)
	}
	n.run()
	kinds := map[wire.MsgType]bool{}
	for _, env := range n.sent {
		if !wire.IsLink(env.Type) {
			continue
		}
		kinds[env.Type] = true
		if env.Unsigned() != (env.Type != wire.TypeSubscribe) {
			t.Fatalf("%v sent unsigned=%v", env.Type, env.Unsigned())
		}
	}
	if !kinds[wire.TypeSubscribe] || !kinds[wire.TypePrune] {
		t.Fatalf("link messages sent: %v, want Subscribe and Prune at least", kinds)
	}

	before := c.Stats().Malformed
	aID, bID := a.cfg.Key.ID(), b.cfg.Key.ID()
	env, err := wire.Unsigned(aID, n.clock.Now(), &wire.Prune{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := env.Marshal()
	c.HandleMessage(bID, raw, false) // b passes off a Prune as a's
	if c.Stats().Malformed != before+1 || c.Score(bID) < PenaltyMalformed {
		t.Fatalf("an unsigned Prune of a's from b was not refused: %+v, b's score %d", c.Stats(), c.Score(bID))
	}
	if c.peers[aID].tree.lazyRest {
		t.Fatal("the Prune b passed off as a's made the a link lazy")
	}
}

func TestRepoMessagesOnlyToFollowers(t *testing.T) {
	repo, other := testRepo(t, 1), testRepo(t, 2)
	n, e, st := newTriangle(t, repo)
	e[2].SetSubscriptions([]identity.RepoID{other}, false)
	n.run()
	if _, err := e[0].Publish(repoAnn(repo, 1)); err != nil {
		t.Fatal(err)
	}
	n.run()
	if _, ok, _ := st[1].Get(uint8(wire.TypeRepoAnnouncement), []byte(repo.String()), e[0].cfg.Key.ID()); !ok {
		t.Fatal("the follower did not get the announcement")
	}
	if s := e[2].Stats(); s.Accepted+s.Duplicate+s.Unwanted != 0 {
		t.Fatalf("a node that does not follow the repository received it: %+v", s)
	}
}

// Each topic has its own tree: a link that joins the tree of node
// announcements (here by a Graft, after a lost push) stays out of a
// repository's tree, so the repository's next message reaches every
// follower once.
func TestTreesArePerTopic(t *testing.T) {
	repo := testRepo(t, 1)
	n, e, _ := newTriangle(t, repo)
	a, b, c := e[0], e[1], e[2]
	if _, err := a.Publish(repoAnn(repo, 1)); err != nil {
		t.Fatal(err)
	}
	n.run()
	if b.Stats().Prunes+c.Stats().Prunes == 0 {
		t.Fatal("no Prune after duplicates")
	}
	// c's node announcement to a is lost: b gets it from c alone.
	aID, cID := a.cfg.Key.ID(), c.cfg.Key.ID()
	n.drop = func(from, to identity.NodeID, typ wire.MsgType) bool {
		return from == cID && to == aID && typ == wire.TypeNodeAnnouncement
	}
	if _, err := c.Publish(nodeAnn("c")); err != nil {
		t.Fatal(err)
	}
	n.run()
	n.drop = nil
	before := b.Stats().Duplicate + c.Stats().Duplicate
	if _, err := a.Publish(repoAnn(repo, 2)); err != nil {
		t.Fatal(err)
	}
	n.run()
	if d := b.Stats().Duplicate + c.Stats().Duplicate - before; d != 0 {
		t.Fatalf("the repository's second message cost %d duplicates: a node announcement put the b–c link back in its tree", d)
	}
	if b.Stats().Accepted < 3 || c.Stats().Accepted < 2 {
		t.Fatalf("not delivered: b %+v, c %+v", b.Stats(), c.Stats())
	}
}

// A link's topic states are bounded: past maxLinkTopics it forgets them
// and is eager again, also after a Prune without ids.
func TestLinkTreeIsBounded(t *testing.T) {
	var lt linkTree
	lt.setAll(true)
	for i := range maxLinkTopics {
		var r identity.RepoID
		r[0], r[1] = byte(i), byte(i>>8)
		lt.set(r, true)
	}
	if len(lt.lazy) != maxLinkTopics || !lt.isLazy(identity.RepoID{0xff, 0xff, 0xff}) {
		t.Fatalf("%d topics held before the bound", len(lt.lazy))
	}
	last := identity.RepoID{0xff, 0xff, 0xff}
	lt.set(last, true)
	if len(lt.lazy) != 1 || !lt.isLazy(last) || lt.isLazy(identity.RepoID{1}) {
		t.Fatalf("past the bound: %d topics, the rest lazy %v", len(lt.lazy), lt.lazyRest)
	}
}
