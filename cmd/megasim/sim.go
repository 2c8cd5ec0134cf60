package main

import (
	"container/heap"
	"crypto/sha256"
	"math/rand/v2"
	"time"

	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/protocol/identity"
)

// epoch is the virtual clock's zero: simulated time is epoch + elapsed.
var epoch = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// event is one thing that happens at a virtual time. Deliveries carry a
// message; everything else is a function. seq breaks ties in the order
// the events were scheduled, so a run is a pure function of its seed.
type event struct {
	at       time.Duration
	seq      uint64
	to, from int32
	raw      []byte
	snapshot bool
	fn       func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// simNet is a discrete-event network of gossip engines: one event loop,
// one virtual clock, no goroutines. Links have a fixed latency each and
// lose datagrams with probability loss; snapshots are reliable (they go
// on a stream).
type simNet struct {
	now   time.Duration
	seq   uint64
	queue eventQueue
	rng   *rand.Rand
	loss  float64
	lat   time.Duration // mean link latency; each link gets ±20 %
	seed  uint64

	nodes []*simNode
	index map[identity.NodeID]int32
	// onDeliver observes every message that reaches a live node, before
	// the engine sees it; onSend every message sent.
	onDeliver func(to, from int32, raw []byte, snapshot bool)
	onSend    func(from int32, raw []byte)
	// sigs memoises signature checks: the answer depends on the signed
	// bytes and the signature alone, so every distinct envelope is
	// checked by Ed25519 once for the whole network.
	sigs map[[sha256.Size + 64]byte]bool
}

type simNode struct {
	id     identity.NodeID
	i      int32
	net    *simNet
	engine *gossip.Engine
	up     bool
	since  time.Duration // when it last came up
	links  map[int32]bool
	peers  []identity.NodeID // cache of links, in link order; nil when stale
	order  []int32           // links in the order they were made
}

func newSimNet(seed uint64, loss float64, lat time.Duration) *simNet {
	return &simNet{
		rng:   rand.New(rand.NewPCG(seed, 0x6d65676173696d)),
		loss:  loss,
		lat:   lat,
		seed:  seed,
		index: map[identity.NodeID]int32{},
		sigs:  map[[sha256.Size + 64]byte]bool{},
	}
}

// Now is the virtual clock, for gossip.Config.Clock.
func (s *simNet) Now() time.Time { return epoch.Add(s.now) }

func (s *simNet) push(e *event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.queue, e)
}

// after runs fn at now+d on the event loop.
func (s *simNet) after(d time.Duration, fn func()) { s.push(&event{at: s.now + d, fn: fn}) }

// spawn runs fn on the event loop after the current event: the engine's
// Spawn hook, so nothing runs on another goroutine.
func (s *simNet) spawn(fn func()) { s.after(0, fn) }

// runUntil processes events up to and including virtual time end.
func (s *simNet) runUntil(end time.Duration) {
	for len(s.queue) > 0 && s.queue[0].at <= end {
		e := heap.Pop(&s.queue).(*event)
		s.now = e.at
		if e.fn != nil {
			e.fn()
			continue
		}
		dst := s.nodes[e.to]
		if !dst.up || !dst.links[e.from] {
			continue
		}
		if s.onDeliver != nil {
			s.onDeliver(e.to, e.from, e.raw, e.snapshot)
		}
		dst.engine.HandleMessage(s.nodes[e.from].id, e.raw, e.snapshot)
	}
	s.now = max(s.now, end)
}

// checkSignature is the engines' CheckSignature: Ed25519, memoised.
func (s *simNet) checkSignature(origin identity.NodeID, signed, sig []byte) bool {
	var k [sha256.Size + 64]byte
	h := sha256.Sum256(signed)
	copy(k[:], h[:])
	copy(k[sha256.Size:], sig)
	ok, hit := s.sigs[k]
	if !hit {
		ok = origin.Verify(signed, sig)
		s.sigs[k] = ok
	}
	return ok
}

// latency is the fixed one-way latency of the link a–b.
func (s *simNet) latency(a, b int32) time.Duration {
	if a > b {
		a, b = b, a
	}
	x := s.seed ^ uint64(a)<<32 ^ uint64(b)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	frac := float64(x%1000)/1000*0.4 + 0.8 // 0.8–1.2
	return time.Duration(float64(s.lat) * frac)
}

// link connects a and b; both engines learn of it (PeerConnected).
func (s *simNet) link(a, b int32) {
	na, nb := s.nodes[a], s.nodes[b]
	if a == b || na.links[b] {
		return
	}
	na.links[b], nb.links[a] = true, true
	na.order, nb.order = append(na.order, b), append(nb.order, a)
	na.peers, nb.peers = nil, nil
	if na.up && nb.up {
		na.engine.PeerConnected(nb.id)
		nb.engine.PeerConnected(na.id)
	}
}

// unlink drops the link a–b; live ends are told (PeerGone).
func (s *simNet) unlink(a, b int32) {
	na, nb := s.nodes[a], s.nodes[b]
	if !na.links[b] {
		return
	}
	delete(na.links, b)
	delete(nb.links, a)
	na.order, nb.order = without(na.order, b), without(nb.order, a)
	na.peers, nb.peers = nil, nil
	if na.up {
		na.engine.PeerGone(nb.id)
	}
	if nb.up {
		nb.engine.PeerGone(na.id)
	}
}

func without(list []int32, x int32) []int32 {
	for i, v := range list {
		if v == x {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

var _ gossip.Network = (*simNode)(nil)

// Peers lists the links in the order they were made (a map's order would
// make runs differ).
func (n *simNode) Peers() []identity.NodeID {
	if n.peers == nil {
		n.peers = make([]identity.NodeID, 0, len(n.order))
		for _, p := range n.order {
			n.peers = append(n.peers, n.net.nodes[p].id)
		}
	}
	return n.peers
}

func (n *simNode) Send(to identity.NodeID, raw []byte) error {
	j, ok := n.net.index[to]
	if !ok || !n.links[j] {
		return gossip.ErrNotLinked
	}
	s := n.net
	if s.onSend != nil {
		s.onSend(n.i, raw)
	}
	if s.loss > 0 && s.rng.Float64() < s.loss {
		return nil
	}
	s.push(&event{at: s.now + s.latency(n.i, j), to: j, from: n.i, raw: raw})
	return nil
}

func (n *simNode) SendSnapshot(to identity.NodeID, msgs [][]byte) error {
	j, ok := n.net.index[to]
	if !ok || !n.links[j] {
		return gossip.ErrNotLinked
	}
	s := n.net
	at := s.now + s.latency(n.i, j)
	for _, raw := range msgs {
		if s.onSend != nil {
			s.onSend(n.i, raw)
		}
		s.push(&event{at: at, to: j, from: n.i, raw: raw, snapshot: true})
	}
	return nil
}

// Disconnect is called with the engine's lock held (through Spawn it is
// not, but be safe): the link is dropped on the next event.
func (n *simNode) Disconnect(id identity.NodeID, _ string) {
	j, ok := n.net.index[id]
	if !ok {
		return
	}
	n.net.after(0, func() { n.net.unlink(n.i, j) })
}
