package gossip

import (
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Budgets that keep one stranger from costing the network more than a
// bounded share (spec/node.md §3.5):
//
//   - Receiving: every envelope takes a token from the sender's bucket
//     (Rate, Burst); snapshot envelopes from a bucket of their own
//     (SnapshotBudget per SnapshotRefill). Over the budget an envelope is
//     dropped; only if the sender signed it itself is that a penalty — a
//     peer that merely relays what others made is not punished for it.
//   - Sending: each peer's envelopes leave at SendRate (burst SendBurst),
//     below the receivers' Rate, queued beyond that (SendQueue, the oldest
//     dropped), so an honest node never exceeds a neighbour's limit because
//     of what a stranger sent it.
//   - Introductions: a peer may bring at most IntroNodes unknown nodes and
//     IntroRepos unknown repositories into the tables per hour; beyond
//     that, announcements of more are dropped (not stored, not relayed).

// introWindow is the period of the introduction budget.
const introWindow = time.Hour

// introBudget counts what one peer brought into the tables this window.
type introBudget struct {
	since        time.Time
	nodes, repos int
}

// outQueue is a peer's paced outgoing traffic.
type outQueue struct {
	tokens   float64
	last     time.Time
	queue    [][]byte
	draining bool // a drain is scheduled
}

// allowRecvLocked takes a token for an envelope from peer: from the
// snapshot bucket for snapshot envelopes, else from the peer's bucket.
func (e *Engine) allowRecvLocked(from identity.NodeID, now time.Time, snapshot bool) bool {
	p := e.peerLocked(from, now)
	if !snapshot {
		return e.allowLocked(from, now)
	}
	refill := float64(e.cfg.SnapshotBudget) / e.cfg.SnapshotRefill.Seconds()
	p.snapTokens = min(float64(e.cfg.SnapshotBudget), p.snapTokens+now.Sub(p.snapLast).Seconds()*refill)
	p.snapLast = now
	if p.snapTokens < 1 {
		return false
	}
	p.snapTokens--
	return true
}

// overBudgetLocked handles an envelope over the receive budget: dropped,
// and a penalty only if the sender made it itself.
func (e *Engine) overBudgetLocked(from identity.NodeID, env *wire.Envelope) {
	e.stats.Flooded++
	if env.Origin == from {
		e.penaliseLocked(from, PenaltyFlood, "rate limit exceeded")
	}
}

// introducesLocked reports whether storing a (type, subject, origin) would
// bring a node or repository the tables do not hold, and if so charges it
// to from's budget: false means over the budget, drop it.
func (e *Engine) introducesLocked(from identity.NodeID, a Announcement, now time.Time) bool {
	if _, ok, err := e.cfg.Store.Get(a.Type, a.Subject, a.Origin); err != nil || ok {
		return true // known (or unknowable): nothing new is introduced
	}
	b := e.intro[from]
	if b == nil || now.Sub(b.since) > introWindow {
		b = &introBudget{since: now}
		e.intro[from] = b
	}
	switch wire.MsgType(a.Type) {
	case wire.TypeNodeAnnouncement:
		if b.nodes >= e.cfg.IntroNodes {
			return false
		}
		b.nodes++
	case wire.TypeRepoAnnouncement:
		if b.repos >= e.cfg.IntroRepos {
			return false
		}
		b.repos++
	}
	return true
}

// sendLocked sends raw to peer p within p's send budget, queueing it
// behind what waits; it reports whether raw left or was queued.
func (e *Engine) sendLocked(p identity.NodeID, raw []byte) bool {
	now := e.cfg.Clock()
	q := e.outLocked(p, now)
	if len(q.queue) == 0 && q.tokens >= 1 {
		q.tokens--
		return e.transmitLocked(p, raw)
	}
	if len(q.queue) >= e.cfg.SendQueue {
		q.queue = q.queue[1:] // newer messages replace older ones
		e.stats.Dropped++
	}
	q.queue = append(q.queue, raw)
	e.scheduleDrainLocked(p, q)
	return true
}

func (e *Engine) outLocked(p identity.NodeID, now time.Time) *outQueue {
	q := e.out[p]
	if q == nil {
		q = &outQueue{tokens: e.cfg.SendBurst, last: now}
		e.out[p] = q
	}
	q.tokens = min(e.cfg.SendBurst, q.tokens+now.Sub(q.last).Seconds()*e.cfg.SendRate)
	q.last = now
	return q
}

// scheduleDrainLocked arranges for q to be sent on as tokens come back.
func (e *Engine) scheduleDrainLocked(p identity.NodeID, q *outQueue) {
	if q.draining {
		return
	}
	q.draining = true
	wait := time.Duration(float64(time.Second) * max(0, 1-q.tokens) / e.cfg.SendRate)
	e.cfg.AfterFunc(max(wait, time.Millisecond), func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		q := e.out[p]
		if q == nil {
			return // the peer left
		}
		q.draining = false
		q = e.outLocked(p, e.cfg.Clock())
		for len(q.queue) > 0 && q.tokens >= 1 {
			q.tokens--
			raw := q.queue[0]
			q.queue = q.queue[1:]
			e.transmitLocked(p, raw)
		}
		if len(q.queue) > 0 {
			e.scheduleDrainLocked(p, q)
		}
	})
}

func (e *Engine) transmitLocked(p identity.NodeID, raw []byte) bool {
	if err := e.cfg.Net.Send(p, raw); err != nil {
		e.log.Debug("sending a message failed", "peer", p, "err", err)
		return false
	}
	e.stats.Sent++
	return true
}

// forgetBudgetsLocked drops budgets that no longer matter.
func (e *Engine) forgetBudgetsLocked(now time.Time) {
	for id, b := range e.intro {
		if now.Sub(b.since) > introWindow {
			delete(e.intro, id)
		}
	}
}
