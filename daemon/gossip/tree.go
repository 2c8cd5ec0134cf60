package gossip

import (
	"slices"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Plumtree broadcast, one tree per topic: a repository, for its
// repository and activity announcements, and one for all node
// announcements. Every link starts eager in every topic: a new message
// goes in full to every peer that wants it and is eager in its topic. A
// peer that sends us a message we already hold gets a Prune naming it,
// and the link becomes lazy in that message's topic on both ends: from
// then on that topic's messages cross it only as IHave notices (message
// ids, batched for LazyDelay). A node that hears of a message by notice
// alone waits GraftTimeout, then sends Graft to one of the peers that
// noticed it, which sends the message and makes the link eager in its
// topic again. Each topic's eager links converge to a spanning tree of
// the nodes that want it, so a message crosses each node about once, and
// loss on a tree link is repaired through the lazy ones. Peers that never
// sent a Subscribe speak an older version: they stay eager and get no
// notices.

// Plumtree limits.
const (
	// NodeAnnouncementTTL is the hop budget of a node announcement: the
	// origin's peers relay it once more, no further. TTLs are not signed,
	// so a receiver clamps what arrives. The routing table learns farther
	// nodes from snapshots (holders of followed repositories).
	NodeAnnouncementTTL = 1
	// cacheFor is how long a message is kept at least (at most twice
	// that) to answer Graft.
	cacheFor = 2 * time.Minute
	// maxWanted bounds the messages noticed but not yet received.
	maxWanted = 4096
	// maxGraftTries bounds the Grafts sent for one noticed message.
	maxGraftTries = 3
	// maxLinkTopics bounds the topics one link remembers a state for;
	// when it is full the link forgets them all (eager again: that costs
	// duplicates, never a loss).
	maxLinkTopics = 4096
)

// linkTree is one link's Plumtree state: the topics (repositories; the
// zero id for node announcements) it is lazy or eager in, and the state
// of the topics it holds none for (lazy only after a Prune without ids).
type linkTree struct {
	lazy     map[identity.RepoID]bool
	lazyRest bool
}

func (t *linkTree) isLazy(topic identity.RepoID) bool {
	if v, ok := t.lazy[topic]; ok {
		return v
	}
	return t.lazyRest
}

func (t *linkTree) set(topic identity.RepoID, lazy bool) {
	if _, ok := t.lazy[topic]; !ok && len(t.lazy) >= maxLinkTopics {
		t.setAll(false)
	}
	if t.lazy == nil {
		t.lazy = map[identity.RepoID]bool{}
	}
	t.lazy[topic] = lazy
}

// setAll puts every topic in one state.
func (t *linkTree) setAll(lazy bool) {
	t.lazy = nil
	t.lazyRest = lazy
}

// msgInfo is what forwarding decisions need to know about a message.
type msgInfo struct {
	id   wire.MessageID
	repo identity.RepoID // zero for node announcements and unknown types
}

func infoOf(id wire.MessageID, body wire.Body) msgInfo {
	m := msgInfo{id: id}
	m.repo, _ = repoOf(body)
	return m
}

// repoOf returns the repository a repository or activity announcement is about.
func repoOf(body wire.Body) (identity.RepoID, bool) {
	switch b := body.(type) {
	case *wire.RepoAnnouncement:
		return b.Repo, true
	case *wire.ActivityAnnouncement:
		return b.Repo, true
	}
	return identity.RepoID{}, false
}

type cached struct {
	raw  []byte
	info msgInfo
}

type wantedMsg struct {
	from  []identity.NodeID // peers that noticed it, in order
	tries int
}

// wants reports whether the peer should get m at all: repository messages
// go only to peers whose filter holds the repository or that relay.
func (ps *peerState) wants(m msgInfo) bool {
	if m.repo.IsZero() || ps.sub == nil || ps.sub.Relay {
		return true
	}
	return ps.sub.Has(m.repo)
}

// pushLocked forwards a message to every peer but except that wants it:
// in full to eager peers, as a notice to lazy ones. noticeOnly sends
// notices to every peer that understands them (retransmits of our own
// messages: the tree already carried them once).
func (e *Engine) pushLocked(m msgInfo, raw []byte, except identity.NodeID, noticeOnly bool) {
	now := e.cfg.Clock()
	e.cache.put(m.id, &cached{raw: raw, info: m})
	for _, p := range e.cfg.Net.Peers() {
		if p == except {
			continue
		}
		ps := e.peerLocked(p, now)
		if !ps.wants(m) {
			continue
		}
		if ps.sub != nil && (noticeOnly || ps.tree.isLazy(m.repo)) {
			e.noticeLocked(p, ps, m.id)
			continue
		}
		e.sendLocked(p, raw)
	}
}

// signLinkLocked encodes a link message (TTL 0): signed if it is a
// Subscribe, which peers of any version get, else unsigned (IHave, Graft
// and Prune go only to peers that sent a Subscribe).
func (e *Engine) signLinkLocked(body wire.Body) []byte {
	var env *wire.Envelope
	var err error
	if wire.MayBeUnsigned(body.Type()) {
		env, err = wire.Unsigned(e.cfg.Key.ID(), e.cfg.Clock(), body)
	} else if env, err = wire.Sign(e.cfg.Key, e.cfg.Clock(), body); err == nil {
		env.TTL = 0
	}
	if err == nil {
		var raw []byte
		if raw, err = env.Marshal(); err == nil {
			return raw
		}
	}
	e.log.Warn("encoding a link message failed", "type", body.Type(), "err", err)
	return nil
}

func (e *Engine) sendLinkLocked(p identity.NodeID, body wire.Body) bool {
	raw := e.signLinkLocked(body)
	return raw != nil && e.sendLocked(p, raw)
}

// noticeLocked queues an IHave for p, flushed after LazyDelay or when full.
func (e *Engine) noticeLocked(p identity.NodeID, ps *peerState, id wire.MessageID) {
	ps.ihave = append(ps.ihave, id)
	if len(ps.ihave) >= wire.MaxLinkIDs {
		e.flushLocked(p, ps)
		return
	}
	if ps.flushAt {
		return
	}
	ps.flushAt = true
	e.cfg.AfterFunc(e.cfg.LazyDelay, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if ps := e.peers[p]; ps != nil {
			ps.flushAt = false
			e.flushLocked(p, ps)
		}
	})
}

func (e *Engine) flushLocked(p identity.NodeID, ps *peerState) {
	if len(ps.ihave) == 0 {
		return
	}
	ids := ps.ihave
	ps.ihave = nil
	if e.sendLinkLocked(p, &wire.IHave{IDs: ids}) {
		e.stats.IHaves++
	}
}

// pruneLocked answers a duplicate of message id from a peer: stop
// pushing its topic to us.
func (e *Engine) pruneLocked(from identity.NodeID, id wire.MessageID) {
	ps := e.peers[from]
	if ps == nil || ps.sub == nil {
		return
	}
	if c, _ := e.cache.get(id); c != nil {
		ps.tree.set(c.info.repo, true)
	}
	if e.sendLinkLocked(from, &wire.Prune{IDs: []wire.MessageID{id}}) {
		e.stats.Prunes++
	}
}

// handleLinkLocked applies a verified link message from a peer.
func (e *Engine) handleLinkLocked(from identity.NodeID, env *wire.Envelope, body wire.Body) {
	if env.Origin != from {
		e.stats.Malformed++
		e.penaliseLocked(from, PenaltyMalformed, "link message from another node")
		return
	}
	ps := e.peerLocked(from, e.cfg.Clock())
	switch b := body.(type) {
	case *wire.Subscribe:
		e.onSubscribeLocked(from, ps, b)
	case *wire.IHave:
		for _, id := range b.IDs {
			e.wantLocked(from, id)
		}
	case *wire.Graft:
		for _, id := range b.IDs {
			if c, _ := e.cache.get(id); c != nil && ps.wants(c.info) {
				ps.tree.set(c.info.repo, false)
				e.sendLocked(from, c.raw)
			}
		}
	case *wire.Prune:
		if len(b.IDs) == 0 {
			ps.tree.setAll(true)
		}
		for _, id := range b.IDs {
			if c, _ := e.cache.get(id); c != nil {
				ps.tree.set(c.info.repo, true)
			}
		}
	}
}

// wantLocked records a notice of id from a peer; if id does not arrive
// within GraftTimeout, graftLocked asks for it.
func (e *Engine) wantLocked(from identity.NodeID, id wire.MessageID) {
	if e.seen.has(id) {
		return
	}
	w := e.wanted[id]
	if w == nil {
		if len(e.wanted) >= maxWanted {
			return
		}
		w = &wantedMsg{}
		e.wanted[id] = w
		e.cfg.AfterFunc(e.cfg.GraftTimeout, func() { e.graft(id) })
	}
	if !slices.Contains(w.from, from) {
		w.from = append(w.from, from)
	}
}

// graft asks the next peer that noticed id for it, and tries again later.
func (e *Engine) graft(id wire.MessageID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.wanted[id]
	if w == nil {
		return
	}
	if e.seen.has(id) || len(w.from) == 0 || w.tries >= maxGraftTries {
		delete(e.wanted, id)
		return
	}
	w.tries++
	p := w.from[0]
	w.from = append(w.from[1:], p)
	if e.sendLinkLocked(p, &wire.Graft{IDs: []wire.MessageID{id}}) {
		e.stats.Grafts++
	}
	e.cfg.AfterFunc(e.cfg.GraftTimeout, func() { e.graft(id) })
}
