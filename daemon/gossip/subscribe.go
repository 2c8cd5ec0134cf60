package gossip

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Subscriptions and the connect-time snapshot. On connect each side sends
// a Subscribe (its Bloom filter, and Since: when the link to this peer
// last ended) followed by a few node announcements, on the reliable
// snapshot stream. A Subscribe is answered with the repository and
// activity announcements the filter holds, signed at or after Since,
// newest first, at most SnapshotCap, each followed by its origin's node
// announcement (the holders of followed repositories). Repository
// messages are relayed only by nodes that follow the repository or relay
// for others, and only to peers that want them.

// Snapshot limits.
const (
	// SnapshotNodes bounds the node announcements sent on connect, before
	// the peer's Subscribe says what else it wants.
	SnapshotNodes = 32
	// sinceSlack is subtracted from the time a link ended, for clock skew
	// and messages in flight then.
	sinceSlack = 5 * time.Minute
	// maxGone bounds the remembered ends of links.
	maxGone = 4096
)

// SetSubscriptions sets the repositories this node follows (and holds);
// relay makes it want and relay every repository message, for others. It
// sends the new Subscribe to every peer. Until it is first called the
// engine follows everything (relay), as versions before subscriptions did.
func (e *Engine) SetSubscriptions(repos []identity.RepoID, relay bool) {
	e.mu.Lock()
	e.follows = make(map[identity.RepoID]bool, len(repos))
	for _, r := range repos {
		e.follows[r] = true
	}
	e.relay = relay
	e.sub = wire.NewSubscribe(repos, relay, 0)
	e.subRaw = nil
	raw := e.subscribeRawLocked(0)
	peers := e.cfg.Net.Peers()
	e.mu.Unlock()
	if raw == nil {
		return
	}
	for _, p := range peers {
		if err := e.cfg.Net.SendSnapshot(p, [][]byte{raw}); err != nil {
			e.log.Debug("sending our subscription failed", "peer", p, "err", err)
		}
	}
}

// Follows reports whether this node wants messages about repo.
func (e *Engine) Follows(repo identity.RepoID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.followsLocked(repo)
}

func (e *Engine) followsLocked(repo identity.RepoID) bool {
	return e.follows == nil || e.relay || e.follows[repo]
}

// subscribeLocked is our Subscribe with the given Since.
func (e *Engine) subscribeLocked(since uint64) *wire.Subscribe {
	s := wire.Subscribe{Filter: []byte{}, Relay: true}
	if e.sub != nil {
		s = *e.sub
	}
	s.Since = since
	return &s
}

// subscribeReuse is how long our signed Subscribe without Since is sent
// again as it is to new peers, instead of signing one per connection.
const subscribeReuse = 10 * time.Minute

// subscribeRawLocked is our Subscribe with the given Since, signed: the
// one without Since is signed once per subscribeReuse.
func (e *Engine) subscribeRawLocked(since uint64) []byte {
	if since != 0 {
		return e.signLinkLocked(e.subscribeLocked(since))
	}
	now := e.cfg.Clock()
	if e.subRaw == nil || now.Sub(e.subAt) > subscribeReuse {
		e.subRaw, e.subAt = e.signLinkLocked(e.subscribeLocked(0)), now
	}
	return e.subRaw
}

// PeerConnected sends the new peer our Subscribe and a few node
// announcements; the rest of the snapshot answers the peer's Subscribe.
func (e *Engine) PeerConnected(id identity.NodeID) {
	e.mu.Lock()
	var since uint64
	if t, ok := e.gone[id]; ok {
		since = uint64(max(0, t.Add(-sinceSlack).UnixMilli()))
	}
	msgs := [][]byte{}
	if raw := e.subscribeRawLocked(since); raw != nil {
		msgs = append(msgs, raw)
	}
	e.mu.Unlock()
	nodes := []wire.MsgType{wire.TypeNodeAnnouncement}
	msgs = append(msgs, e.collect(SnapshotNodes, nodes, nil, func(Announcement) bool { return true }, nil)...)
	if err := e.cfg.Net.SendSnapshot(id, msgs); err != nil {
		e.log.Debug("sending the node snapshot failed", "peer", id, "err", err)
	}
}

// onSubscribeLocked records a peer's subscription and, if it is new or
// changed, sends the snapshot it asks for.
func (e *Engine) onSubscribeLocked(from identity.NodeID, ps *peerState, s *wire.Subscribe) {
	old := ps.sub
	ps.sub = s
	if old != nil && old.Relay == s.Relay && old.Since == s.Since && bytes.Equal(old.Filter, s.Filter) {
		return
	}
	e.cfg.Spawn(func() { e.sendSnapshot(from, s) })
}

func (e *Engine) sendSnapshot(to identity.NodeID, s *wire.Subscribe) {
	var holders []identity.NodeID
	repoTypes := []wire.MsgType{wire.TypeRepoAnnouncement, wire.TypeActivityAnnouncement}
	msgs := e.collect(e.cfg.SnapshotCap, repoTypes, e.snapshotSubjects(s), func(a Announcement) bool {
		if a.Timestamp < s.Since {
			return false
		}
		repo, err := identity.ParseRepoID(string(a.Subject))
		return err == nil && (s.Relay || s.Has(repo))
	}, &holders)
	if len(msgs) == 0 {
		return
	}
	for _, id := range holders {
		if a, ok, err := e.cfg.Store.Get(uint8(wire.TypeNodeAnnouncement), nil, id); err == nil && ok && len(msgs) < 2*e.cfg.SnapshotCap {
			msgs = append(msgs, a.Raw)
		}
	}
	if err := e.cfg.Net.SendSnapshot(to, msgs); err != nil {
		e.log.Debug("sending the repository snapshot failed", "peer", to, "err", err)
	}
}

// snapshotSubjects are the repositories whose announcements may go in
// the snapshot for a peer's Subscribe s: those we follow that its filter
// holds, so the walk costs what we follow, not what the table holds; nil
// (walk them all) when we follow everything.
func (e *Engine) snapshotSubjects(s *wire.Subscribe) [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.follows == nil || e.relay {
		return nil
	}
	subjects := [][]byte{}
	for _, r := range slices.SortedFunc(maps.Keys(e.follows), compareRepos) {
		if s.Relay || s.Has(r) {
			subjects = append(subjects, []byte(r.String()))
		}
	}
	return subjects
}

// collect returns the newest (at most limit) stored announcements of the
// given types and subjects (nil: any) that keep accepts, newest first;
// origins collects their origins, once each, if non-nil.
func (e *Engine) collect(limit int, types []wire.MsgType, subjects [][]byte, keep func(Announcement) bool, origins *[]identity.NodeID) [][]byte {
	var list []Announcement
	add := func(a Announcement) error {
		if keep(a) {
			list = append(list, a)
		}
		return nil
	}
	for _, typ := range types {
		if subjects == nil {
			subjects = [][]byte{nil}
		}
		for _, subject := range subjects {
			if err := e.cfg.Store.Each(uint8(typ), subject, add); err != nil {
				e.log.Warn("reading announcements for a snapshot failed; sending what was read", "err", err)
			}
		}
	}
	slices.SortFunc(list, func(a, b Announcement) int {
		return cmp.Or(cmp.Compare(b.Timestamp, a.Timestamp), bytes.Compare(a.Origin[:], b.Origin[:]),
			cmp.Compare(a.Type, b.Type), bytes.Compare(a.Subject, b.Subject))
	})
	out := make([][]byte, 0, min(limit, len(list)))
	seen := map[identity.NodeID]bool{}
	for _, a := range list[:min(limit, len(list))] {
		out = append(out, a.Raw)
		if origins != nil && !seen[a.Origin] {
			seen[a.Origin] = true
			*origins = append(*origins, a.Origin)
		}
	}
	return out
}

func compareRepos(a, b identity.RepoID) int { return bytes.Compare(a[:], b[:]) }
