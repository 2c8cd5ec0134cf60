package main

import (
	"container/heap"
	"crypto/sha256"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/protocol/identity"
)

// epoch is the virtual clock's zero: simulated time is epoch + elapsed.
var epoch = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// global is the source and owner of the scenario's own events.
const global = -1

// event is one thing that happens at a virtual time: a delivery to node
// to, or a function. node is whose event it is (global for the
// scenario's). src and seq (seq counts per source) break ties, so the
// order of events does not depend on the order worker goroutines ran in
// and a run is a pure function of its seed.
type event struct {
	at       time.Duration
	src      int32
	seq      uint64
	node     int32
	to, from int32
	raw      []byte
	snapshot bool
	fn       func()
}

// before orders events: by time, then source, then the source's count.
func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.src != b.src {
		return a.src < b.src
	}
	return a.seq < b.seq
}

// eventQueue is a heap of one node's events in a window.
type eventQueue []*event

func (q eventQueue) Len() int           { return len(q) }
func (q eventQueue) Less(i, j int) bool { return q[i].before(q[j]) }
func (q eventQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)        { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// simNet is a discrete-event network of gossip engines with one virtual
// clock. Links have a fixed latency each, at least lookahead, and lose
// datagrams with probability loss; snapshots are reliable (they go on a
// stream).
//
// It runs in windows of lookahead, [k·lookahead, (k+1)·lookahead):
// nothing a node does inside a window reaches another node before the
// window ends, so the nodes' events of one window run in parallel, each
// node's in order on its own clock. Then, on one goroutine, what they
// sent is queued and the scenario's events of the window run (links made
// and dropped, crashes), in order. Future events wait in one bucket per
// window, unordered: a node orders its own when their window comes.
type simNet struct {
	now       time.Duration // the scenario's clock
	seq       uint64        // the scenario's events
	buckets   map[int64][]*event
	windows   windowHeap // the windows that have a bucket
	loss      float64
	lat       time.Duration // mean link latency; each link gets ±20 %
	lookahead time.Duration // the shortest link latency
	seed      uint64
	workers   int

	nodes []*simNode
	index map[identity.NodeID]int32
	dirty []*simNode // nodes that queued events outside a window
	// onDeliver observes every message that reaches a live node, before
	// the engine sees it; onSend every message sent. Both are called from
	// worker goroutines.
	onDeliver func(to, from int32, at time.Duration, raw []byte, snapshot bool)
	onSend    func(from int32, raw []byte)

	// sigs memoises signature checks: the answer depends on the signed
	// bytes and the signature alone, so every distinct envelope is
	// checked by Ed25519 once for the whole network.
	sigMu sync.Mutex
	sigs  map[[sha256.Size + 64]byte]bool
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

	// Owned by whoever runs the node: a worker inside a window, else the
	// scenario.
	now       time.Duration // the node's clock
	seq       uint64        // events it scheduled
	rng       *rand.Rand    // its losses
	local     eventQueue    // its events before windowEnd
	out       []*event      // its events for later, and for other nodes
	inWindow  bool
	dirty     bool
	windowEnd time.Duration
}

func newSimNet(seed uint64, loss float64, lat time.Duration, workers int) *simNet {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &simNet{
		loss:      loss,
		lat:       lat,
		lookahead: time.Duration(float64(lat) * 0.8),
		seed:      seed,
		workers:   workers,
		index:     map[identity.NodeID]int32{},
		buckets:   map[int64][]*event{},
		sigs:      map[[sha256.Size + 64]byte]bool{},
	}
}

func (s *simNet) addNode(n *simNode) {
	n.net = s
	n.rng = rand.New(rand.NewPCG(s.seed, 0x6d65676173696d^uint64(n.i)))
	s.nodes = append(s.nodes, n)
	s.index[n.id] = n.i
}

// push queues a scenario event: a function of the scenario (node global)
// or of one node.
func (s *simNet) push(e *event) {
	s.seq++
	e.src, e.seq = global, s.seq
	s.enqueue(e)
}

// enqueue puts an event in its window's bucket.
func (s *simNet) enqueue(e *event) {
	k := int64(e.at / s.lookahead)
	b, ok := s.buckets[k]
	if !ok {
		heap.Push(&s.windows, k)
	}
	s.buckets[k] = append(b, e)
}

// after runs fn, a scenario function, at now+d.
func (s *simNet) after(d time.Duration, fn func()) {
	s.push(&event{at: s.now + d, node: global, fn: fn})
}

// atNode runs fn as node i's own event at virtual time at.
func (s *simNet) atNode(i int32, at time.Duration, fn func()) {
	s.push(&event{at: at, node: i, fn: fn})
}

// runUntil processes events up to and including virtual time end.
func (s *simNet) runUntil(end time.Duration) {
	for len(s.windows) > 0 {
		k := s.windows[0]
		start := time.Duration(k) * s.lookahead
		if start > end {
			break
		}
		w := min(start+s.lookahead, end+1)
		heap.Pop(&s.windows)
		events := s.buckets[k]
		delete(s.buckets, k)
		ran := s.runWindow(events, w)
		if !ran {
			break // what is left comes after end
		}
	}
	s.now = max(s.now, end)
}

// runWindow runs the events of one window before w (the rest go back to
// their bucket) and reports whether there were any.
func (s *simNet) runWindow(events []*event, w time.Duration) bool {
	var active []*simNode
	var scenario []*event
	ran := false
	for _, e := range events {
		switch {
		case e.at >= w:
			s.enqueue(e)
			continue
		case e.node == global:
			scenario = append(scenario, e)
		default:
			n := s.nodes[e.node]
			if len(n.local) == 0 {
				active = append(active, n)
			}
			heap.Push(&n.local, e)
		}
		ran = true
	}
	s.runNodes(active, w)
	s.collect(active)
	slices.SortFunc(scenario, func(a, b *event) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	for _, e := range scenario {
		s.now = max(s.now, e.at)
		e.fn()
	}
	s.collect(s.dirty)
	s.dirty = s.dirty[:0]
	s.now = max(s.now, w-1)
	return ran
}

// runNodes runs the active nodes' events before w on the workers.
func (s *simNet) runNodes(active []*simNode, w time.Duration) {
	if len(active) < 2*s.workers {
		for _, n := range active {
			n.runWindow(w)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := next.Add(1) - 1; k < int64(len(active)); k = next.Add(1) - 1 {
				active[k].runWindow(w)
			}
		}()
	}
	wg.Wait()
}

// collect queues what the nodes scheduled for later or for others.
func (s *simNet) collect(nodes []*simNode) {
	for _, n := range nodes {
		for k, e := range n.out {
			s.enqueue(e)
			n.out[k] = nil
		}
		n.out = n.out[:0]
		n.dirty = false
	}
}

// runWindow runs the node's events before w, in order, on its clock.
func (n *simNode) runWindow(w time.Duration) {
	n.inWindow, n.windowEnd = true, w
	defer func() { n.inWindow = false }()
	for len(n.local) > 0 {
		e := heap.Pop(&n.local).(*event)
		n.now = max(n.now, e.at)
		if e.fn != nil {
			e.fn()
			continue
		}
		if !n.up || !n.links[e.from] {
			continue
		}
		if h := n.net.onDeliver; h != nil {
			h(n.i, e.from, n.now, e.raw, e.snapshot)
		}
		n.engine.HandleMessage(n.net.nodes[e.from].id, e.raw, e.snapshot)
	}
}

// schedule queues an event the node makes: its own before the window
// ends runs in this window, everything else waits for collect.
func (n *simNode) schedule(e *event) {
	n.seq++
	e.src, e.seq = n.i, n.seq
	if n.inWindow && e.node == n.i && e.at < n.windowEnd {
		heap.Push(&n.local, e)
		return
	}
	n.out = append(n.out, e)
	if !n.inWindow && !n.dirty {
		n.dirty = true
		n.net.dirty = append(n.net.dirty, n)
	}
}

// catchUp moves the node's clock to the scenario's before the scenario
// acts on the node's engine.
func (n *simNode) catchUp() { n.now = max(n.now, n.net.now) }

// Now is the node's clock, for gossip.Config.Clock.
func (n *simNode) Now() time.Time { return epoch.Add(n.now) }

// after runs fn as the node's event at its now+d (gossip.Config.AfterFunc).
func (n *simNode) after(d time.Duration, fn func()) {
	n.schedule(&event{at: n.now + d, node: n.i, fn: fn})
}

// spawn runs fn on the node after its current event: the engine's Spawn
// hook, so nothing of a node runs outside its turn.
func (n *simNode) spawn(fn func()) { n.after(0, fn) }

// checkSignature is the engines' CheckSignature: Ed25519, memoised.
func (s *simNet) checkSignature(origin identity.NodeID, signed, sig []byte) bool {
	var k [sha256.Size + 64]byte
	h := sha256.Sum256(signed)
	copy(k[:], h[:])
	copy(k[sha256.Size:], sig)
	s.sigMu.Lock()
	ok, hit := s.sigs[k]
	s.sigMu.Unlock()
	if !hit {
		ok = origin.Verify(signed, sig)
		s.sigMu.Lock()
		s.sigs[k] = ok
		s.sigMu.Unlock()
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
		na.catchUp()
		nb.catchUp()
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
		na.catchUp()
		na.engine.PeerGone(nb.id)
	}
	if nb.up {
		nb.catchUp()
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
	if s.loss > 0 && n.rng.Float64() < s.loss {
		return nil
	}
	n.schedule(&event{at: n.now + s.latency(n.i, j), node: j, to: j, from: n.i, raw: raw})
	return nil
}

func (n *simNode) SendSnapshot(to identity.NodeID, msgs [][]byte) error {
	j, ok := n.net.index[to]
	if !ok || !n.links[j] {
		return gossip.ErrNotLinked
	}
	s := n.net
	at := n.now + s.latency(n.i, j)
	for _, raw := range msgs {
		if s.onSend != nil {
			s.onSend(n.i, raw)
		}
		n.schedule(&event{at: at, node: j, to: j, from: n.i, raw: raw, snapshot: true})
	}
	return nil
}

// Disconnect drops the link as a scenario event right after the node's
// current one (links belong to the scenario).
func (n *simNode) Disconnect(id identity.NodeID, _ string) {
	j, ok := n.net.index[id]
	if !ok {
		return
	}
	n.schedule(&event{at: n.now, node: global, fn: func() { n.net.unlink(n.i, j) }})
}

// windowHeap is a min-heap of window numbers.
type windowHeap []int64

func (h windowHeap) Len() int           { return len(h) }
func (h windowHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h windowHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *windowHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *windowHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
