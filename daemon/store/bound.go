package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// The node table is bounded (DESIGN.md D12, spec/node.md §3.7): it holds
// at most MaxNodes node announcements. A new node that takes it past the
// bound makes it forget the least useful nodes, with everything they
// originated, down to MaxNodes − MaxNodes/evictShare. Most useful first:
//
//  1. recent peers: nodes this one was linked to (Peered), which a flood
//     of announcements cannot fake;
//  2. holders of stored repositories (the store keeps announcements of
//     followed repositories only, unless the node relays for others);
//  3. relays (node announcements of kind relay);
//  4. every other node;
//
// and within each rank the node heard from most recently.

const (
	// MaxNodes bounds the node table. A node stores its peers, their
	// peers (node announcements travel two hops), the holders of what it
	// follows and relays: a few hundred at any network size.
	MaxNodes = 16384
	// evictShare: one eviction frees MaxNodes/evictShare entries, so the
	// scan it costs is paid once per that many new nodes.
	evictShare = 16
)

// Node ranks, least useful first.
const (
	rankOther = iota
	rankRelay
	rankHolder
	rankPeer
)

// LimitNodes sets the node table's bound (default MaxNodes) and a
// function told of the nodes an eviction forgot. Call it before the
// store is used concurrently.
func (s *Store) LimitNodes(max int, onEvict func([]identity.NodeID)) {
	s.maxNodes = max
	s.onEvict = onEvict
}

// NodeCount returns the number of node announcements stored.
func (s *Store) NodeCount() int { return int(s.nodes.Load()) }

func peerKey(id identity.NodeID) []byte { return append([]byte{prefixPeer}, id[:]...) }

// Peered records that this node was linked to id at t; it counts as
// hearing from id too.
func (s *Store) Peered(id identity.NodeID, t time.Time) error {
	if err := s.setNewer(peerKey(id), t); err != nil {
		return err
	}
	return s.Touch(id, t)
}

// countNodes counts the stored node announcements (at Open).
func (s *Store) countNodes() error {
	var n int64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixAnnouncement, byte(wire.TypeNodeAnnouncement)}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	s.nodes.Store(n)
	return err
}

// addedNode counts a new node and evicts if the table is over its bound.
func (s *Store) addedNode() {
	if s.nodes.Add(1) <= int64(s.maxNodes) {
		return
	}
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	if s.nodes.Load() <= int64(s.maxNodes) {
		return // another Put evicted meanwhile
	}
	gone, err := s.evictOver(s.maxNodes - s.maxNodes/evictShare)
	if err != nil {
		s.log.Warn("store: evicting nodes", "err", err)
	}
	if len(gone) > 0 && s.onEvict != nil {
		s.onEvict(gone)
	}
}

type rankedNode struct {
	id   identity.NodeID
	rank int
	seen uint64 // unix ms
}

// evictOver forgets the least useful nodes until keep are left.
func (s *Store) evictOver(keep int) ([]identity.NodeID, error) {
	nodes, err := s.rankNodes()
	if err != nil || len(nodes) <= keep {
		return nil, err
	}
	slices.SortFunc(nodes, func(a, b rankedNode) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.seen, b.seen), bytes.Compare(a.id[:], b.id[:]))
	})
	gone := make([]identity.NodeID, 0, len(nodes)-keep)
	for _, n := range nodes[:len(nodes)-keep] {
		gone = append(gone, n.id)
	}
	return gone, s.forget(gone...)
}

// rankNodes lists the nodes of the node table with their rank.
func (s *Store) rankNodes() ([]rankedNode, error) {
	peers, err := s.times(prefixPeer)
	if err != nil {
		return nil, err
	}
	seen, err := s.times(prefixLastSeen)
	if err != nil {
		return nil, err
	}
	holders := map[identity.NodeID]bool{}
	if err := s.Each(uint8(wire.TypeRepoAnnouncement), nil, func(a Announcement) error {
		holders[a.Origin] = true
		return nil
	}); err != nil {
		return nil, err
	}
	var nodes []rankedNode
	err = s.Each(uint8(wire.TypeNodeAnnouncement), nil, func(a Announcement) error {
		n := rankedNode{id: a.Origin, seen: max(a.Timestamp, seen[a.Origin])}
		na, _ := decode[*wire.NodeAnnouncement](a)
		switch _, peer := peers[a.Origin]; {
		case peer:
			n.rank = rankPeer
		case holders[a.Origin]:
			n.rank = rankHolder
		case na != nil && na.Kind == wire.KindRelay:
			n.rank = rankRelay
		}
		nodes = append(nodes, n)
		return nil
	})
	return nodes, err
}

// times reads the id → unix ms records under prefix.
func (s *Store) times(prefix byte) (map[identity.NodeID]uint64, error) {
	out := map[identity.NodeID]uint64{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var id identity.NodeID
			if len(it.Item().Key()) != 1+len(id) {
				continue
			}
			copy(id[:], it.Item().Key()[1:])
			if err := it.Item().Value(func(v []byte) error {
				if len(v) == 8 {
					out[id] = binary.BigEndian.Uint64(v)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
