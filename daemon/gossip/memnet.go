package gossip

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// MemNet is an in-memory network of engines, for tests and simulations.
// Each node has an inbox drained by its own goroutine, so delivery is
// asynchronous like a real network and engines never call each other with
// their locks held.
type MemNet struct {
	mu     sync.Mutex
	nodes  map[identity.NodeID]*memNode
	closed bool
	wg     sync.WaitGroup
}

type memNode struct {
	id      identity.NodeID
	net     *MemNet
	engine  *Engine
	inbox   chan memMsg
	links   map[identity.NodeID]bool // guarded by net.mu
	dropped []identity.NodeID        // Disconnect calls, guarded by net.mu
}

type memMsg struct {
	from     identity.NodeID
	raw      []byte
	snapshot bool
}

// NewMemNet makes an empty network.
func NewMemNet() *MemNet { return &MemNet{nodes: map[identity.NodeID]*memNode{}} }

// Endpoint returns the Network of node id, registering the node.
func (n *MemNet) Endpoint(id identity.NodeID) Network {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodeLocked(id)
}

func (n *MemNet) nodeLocked(id identity.NodeID) *memNode {
	m := n.nodes[id]
	if m == nil {
		m = &memNode{id: id, net: n, inbox: make(chan memMsg, 4096), links: map[identity.NodeID]bool{}}
		n.nodes[id] = m
	}
	return m
}

// Attach starts delivering id's inbox to e.
func (n *MemNet) Attach(id identity.NodeID, e *Engine) {
	n.mu.Lock()
	m := n.nodeLocked(id)
	m.engine = e
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for msg := range m.inbox {
			e.HandleMessage(msg.from, msg.raw, msg.snapshot)
		}
	}()
}

// Connect links a and b and lets both engines send their snapshots.
func (n *MemNet) Connect(a, b identity.NodeID) {
	n.mu.Lock()
	na, nb := n.nodeLocked(a), n.nodeLocked(b)
	na.links[b], nb.links[a] = true, true
	n.mu.Unlock()
	if na.engine != nil {
		na.engine.PeerConnected(b)
	}
	if nb.engine != nil {
		nb.engine.PeerConnected(a)
	}
}

// Inject delivers raw to node to as if sent by from, which need not be a
// node of the network (a forger, say).
func (n *MemNet) Inject(from, to identity.NodeID, raw []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.nodes[to].inbox <- memMsg{from: from, raw: raw}
	}
}

// Disconnected returns the peers id dropped for misbehaviour.
func (n *MemNet) Disconnected(id identity.NodeID) []identity.NodeID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]identity.NodeID(nil), n.nodes[id].dropped...)
}

// Idle reports whether the inbox of every attached node is empty (messages
// may still be in flight inside a handler; nobody reads the inbox of a
// node without an engine).
func (n *MemNet) Idle() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.nodes {
		if m.engine != nil && len(m.inbox) > 0 {
			return false
		}
	}
	return true
}

// Close stops delivery and waits for the node goroutines.
func (n *MemNet) Close() {
	n.mu.Lock()
	n.closed = true
	for _, m := range n.nodes {
		if m.engine != nil {
			close(m.inbox)
		}
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// ErrNotLinked is returned when sending to a node that is not a peer.
var ErrNotLinked = errors.New("memnet: not linked")

func (m *memNode) Peers() []identity.NodeID {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	out := make([]identity.NodeID, 0, len(m.links))
	for id := range m.links {
		out = append(out, id)
	}
	return out
}

func (m *memNode) deliver(to identity.NodeID, msg memMsg) error {
	// The send happens under the lock (it never blocks), so Close cannot
	// close the inbox in between.
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	dst := m.net.nodes[to]
	if !m.links[to] || dst == nil || m.net.closed {
		return ErrNotLinked
	}
	select {
	case dst.inbox <- msg:
		return nil
	default:
		return errors.New("memnet: inbox full (dropped, like a lost datagram)")
	}
}

func (m *memNode) Send(to identity.NodeID, raw []byte) error {
	return m.deliver(to, memMsg{from: m.id, raw: bytes.Clone(raw)})
}

func (m *memNode) SendSnapshot(to identity.NodeID, msgs [][]byte) error {
	for _, raw := range msgs {
		if err := m.deliver(to, memMsg{from: m.id, raw: bytes.Clone(raw), snapshot: true}); err != nil {
			return err
		}
	}
	return nil
}

func (m *memNode) Disconnect(id identity.NodeID, _ string) {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	m.dropped = append(m.dropped, id)
	delete(m.links, id)
	if other := m.net.nodes[id]; other != nil {
		delete(other.links, m.id)
	}
}

// MemStore is an in-memory Store with the same semantics as daemon/store.
type MemStore struct {
	mu   sync.Mutex
	anns map[memGroup]map[identity.NodeID]Announcement
}

// memGroup is a (type, subject) pair: the announcements of one kind about
// one thing, one per origin.
type memGroup struct {
	typ     uint8
	subject string
}

// NewMemStore makes an empty store.
func NewMemStore() *MemStore {
	return &MemStore{anns: map[memGroup]map[identity.NodeID]Announcement{}}
}

// Put keeps a if it is newer than the stored one.
func (s *MemStore) Put(a Announcement) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := memGroup{a.Type, string(a.Subject)}
	byOrigin := s.anns[g]
	if old, ok := byOrigin[a.Origin]; ok && old.Timestamp >= a.Timestamp {
		return false, nil
	}
	if byOrigin == nil {
		byOrigin = map[identity.NodeID]Announcement{}
		s.anns[g] = byOrigin
	}
	byOrigin[a.Origin] = a
	return true, nil
}

// Get returns one announcement.
func (s *MemStore) Get(typ uint8, subject []byte, origin identity.NodeID) (Announcement, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.anns[memGroup{typ, string(subject)}][origin]
	return a, ok, nil
}

// Each calls fn for the matching announcements (typ 0: all; subject nil:
// any), in no particular order.
func (s *MemStore) Each(typ uint8, subject []byte, fn func(Announcement) error) error {
	s.mu.Lock()
	var list []Announcement
	if typ != 0 && subject != nil {
		list = slices.AppendSeq(list, maps.Values(s.anns[memGroup{typ, string(subject)}]))
	} else {
		for g, byOrigin := range s.anns {
			if (typ == 0 || g.typ == typ) && (subject == nil || g.subject == string(subject)) {
				list = slices.AppendSeq(list, maps.Values(byOrigin))
			}
		}
	}
	s.mu.Unlock()
	for _, a := range list {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// Touch does nothing: the store keeps no last-heard times, since nothing
// reads them here (daemon/store ranks nodes by them when its table is full).
func (s *MemStore) Touch(identity.NodeID, time.Time) error { return nil }
