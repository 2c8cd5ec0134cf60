// Package gossip spreads signed announcements through the network: verify
// before anything else, drop what was seen, keep the newest per origin and
// subject, relay to every other peer with TTL−1, and penalise peers that
// send garbage. It talks to the network through the Network interface, so
// the same engine runs over QUIC in the daemon and over an in-memory
// network in tests and simulations.
package gossip

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Network is what the engine needs from the transport.
type Network interface {
	// Peers lists the connected peers.
	Peers() []identity.NodeID
	// Send delivers one encoded envelope to a peer, best effort: as a
	// datagram when it fits, else on a stream. It must not block for long.
	Send(to identity.NodeID, msg []byte) error
	// SendSnapshot delivers many envelopes reliably, in order.
	SendSnapshot(to identity.NodeID, msgs [][]byte) error
	// Disconnect drops a peer that misbehaved.
	Disconnect(id identity.NodeID, reason string)
}

// Announcement is one stored signed message: the newest per (type,
// subject, origin) is what a routing table holds.
type Announcement struct {
	Type      uint8
	Origin    identity.NodeID
	Subject   []byte // empty for node announcements; the repo id for repo ones
	Timestamp uint64 // the signed timestamp (unix ms)
	Raw       []byte // the envelope as received
}

// Store is the part of the routing store the engine uses. daemon/store
// implements it on Badger, MemStore in memory.
type Store interface {
	// Put keeps a if it is newer than what is stored for its (type,
	// subject, origin) and reports whether it did.
	Put(a Announcement) (bool, error)
	// Each calls fn for the stored announcements of typ (0: all) and, if
	// subject is non-nil, that subject.
	Each(typ uint8, subject []byte, fn func(Announcement) error) error
	Get(typ uint8, subject []byte, origin identity.NodeID) (Announcement, bool, error)
	// Touch records that a node was heard from at t.
	Touch(id identity.NodeID, t time.Time) error
}

// Config configures an Engine. Zero fields take the defaults documented on them.
type Config struct {
	Key   *identity.Key
	Store Store
	Net   Network
	Log   *slog.Logger
	Clock func() time.Time // default time.Now

	SeenWindow   time.Duration // how long message ids are remembered at least (at most twice that); default 5 min
	RefreshAfter time.Duration // re-sign own announcements older than this; default 1 h
	Retransmits  int           // extra sends of own new messages on the next ticks; default 2
	Rate         float64       // messages per second accepted from one peer; default 100
	Burst        float64       // bucket size of that rate; default 1000
	BanScore     int           // penalty at which a peer is dropped and banned; default 100
	BanFor       time.Duration // ban length; default 10 min
	MaxSnapshot  int           // envelopes accepted on one snapshot stream; default 2·SnapshotCap + SnapshotNodes + 16
	// OnAccept is called, outside the engine's lock, for every new
	// announcement from another node after it was stored.
	OnAccept func(from identity.NodeID, env *wire.Envelope, body wire.Body)
	// OnPenalty is called with the engine's lock held: it must not call the engine.
	OnPenalty    func(peer identity.NodeID, score int, reason string)
	DisableRelay bool // for tests of a single hop

	// Spawn runs f without the engine's lock, later; default `go f()`.
	// A single-threaded simulator queues f on its event loop instead.
	Spawn func(f func())
	// CheckSignature checks envelope signatures; default Ed25519
	// (wire.Envelope.Verify). A simulator may share a memo between engines.
	CheckSignature wire.SignatureCheck
	// AfterFunc runs f after d, without the engine's lock; default
	// time.AfterFunc. A simulator schedules f on its virtual clock.
	AfterFunc func(d time.Duration, f func())

	LazyDelay    time.Duration // how long IHave notices are batched; default 200 ms
	GraftTimeout time.Duration // wait for a noticed message before grafting; default 250 ms
	SnapshotCap  int           // announcements in one connect-time snapshot; default 256

	// Budgets (budget.go, spec/node.md §3.5).
	SnapshotBudget int           // snapshot envelopes accepted from one peer per SnapshotRefill; default 4·MaxSnapshot
	SnapshotRefill time.Duration // default 10 min
	SendRate       float64       // envelopes per second sent to one peer; default 0.8·Rate
	SendBurst      float64       // bucket size of that rate; default 0.8·Burst
	SendQueue      int           // envelopes queued for one peer beyond the burst; default 1024
	IntroNodes     int           // unknown nodes one peer may bring into the table per hour; default 256
	IntroRepos     int           // unknown repositories one peer may bring per hour; default 256
}

// Penalties, added to a peer's score. A peer at BanScore is dropped.
const (
	PenaltyForged    = 100 // bad signature: an honest relay never forwards one
	PenaltyMalformed = 25  // undecodable or invalid message
	PenaltyFlood     = 1   // each message over the rate limit
)

// Engine is the gossip state of one node. Its methods are safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	seen   ageMap[wire.MessageID, struct{}] // ids of accepted messages, for SeenWindow or up to twice that
	peers  map[identity.NodeID]*peerState
	banned map[identity.NodeID]time.Time
	own    map[ownKey]*ownMsg // our latest announcement per (type, subject)
	// ownChanged says the next Tick must look at own; else it need not
	// before ownDue.
	ownChanged bool
	ownDue     time.Time
	stats      Stats

	// Subscriptions (see subscribe.go): nil follows means every
	// repository (the engine relays for others, as before version 2).
	follows map[identity.RepoID]bool
	relay   bool
	sub     *wire.Subscribe
	subRaw  []byte                        // sub signed with no Since, sent to new peers
	subAt   time.Time                     // when subRaw was signed
	gone    map[identity.NodeID]time.Time // when links to peers ended, for Since

	// Plumtree (see tree.go).
	cache  ageMap[wire.MessageID, *cached] // recent messages, to answer Graft
	wanted map[wire.MessageID]*wantedMsg   // noticed (IHave) but not received

	// Budgets (see budget.go).
	out   map[identity.NodeID]*outQueue    // paced sends per peer
	intro map[identity.NodeID]*introBudget // introductions per peer, this hour

	swept time.Time // when Tick last forgot what expired
}

type ownKey struct {
	typ     wire.MsgType
	subject string
}

// compareOwnKeys orders own announcements, so that Tick resends them in
// the same order every time (a simulation is a function of its seed).
func compareOwnKeys(a, b ownKey) int {
	return cmp.Or(cmp.Compare(a.typ, b.typ), cmp.Compare(a.subject, b.subject))
}

type ownMsg struct {
	body    wire.Body
	env     *wire.Envelope
	raw     []byte
	pending int // retransmits left
}

type peerState struct {
	score  int
	tokens float64
	last   time.Time

	snapTokens float64 // the snapshot bucket
	snapLast   time.Time

	sub     *wire.Subscribe  // the peer's subscription; nil until it sends one
	tree    linkTree         // Plumtree: the topics to send IHave in, not the message
	ihave   []wire.MessageID // notices waiting for the next flush
	flushAt bool             // a flush is scheduled
}

// Stats counts what the engine did, for tests, metrics and logs.
type Stats struct {
	Accepted, Duplicate, Stale, Forged, Malformed, Expired, Flooded, Relayed, Sent uint64
	// Unwanted counts repository messages for repositories this node
	// does not follow (Bloom false positives), dropped unstored.
	Unwanted uint64
	// Plumtree: notices, grafts and prunes sent.
	IHaves, Grafts, Prunes uint64
	// Capped counts announcements over a peer's introduction budget;
	// Dropped, envelopes a full send queue gave up.
	Capped, Dropped uint64
}

// New makes an engine.
func New(cfg Config) *Engine {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Spawn == nil {
		cfg.Spawn = func(f func()) { go f() }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.SeenWindow, 5*time.Minute)
	setDefault(&cfg.RefreshAfter, time.Hour)
	setDefault(&cfg.Retransmits, 2)
	setDefault(&cfg.Rate, 100)
	setDefault(&cfg.Burst, 1000)
	setDefault(&cfg.BanScore, 100)
	setDefault(&cfg.BanFor, 10*time.Minute)
	setDefault(&cfg.LazyDelay, 200*time.Millisecond)
	setDefault(&cfg.GraftTimeout, 250*time.Millisecond)
	setDefault(&cfg.SnapshotCap, 256)
	setDefault(&cfg.MaxSnapshot, 2*cfg.SnapshotCap+SnapshotNodes+16)
	setDefault(&cfg.SnapshotBudget, 4*cfg.MaxSnapshot)
	setDefault(&cfg.SnapshotRefill, 10*time.Minute)
	setDefault(&cfg.SendRate, 0.8*cfg.Rate)
	setDefault(&cfg.SendBurst, 0.8*cfg.Burst)
	setDefault(&cfg.SendQueue, 1024)
	setDefault(&cfg.IntroNodes, 256)
	setDefault(&cfg.IntroRepos, 256)
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	return &Engine{
		cfg:    cfg,
		log:    cfg.Log,
		seen:   newAgeMap[wire.MessageID, struct{}](cfg.SeenWindow, cfg.Clock()),
		peers:  map[identity.NodeID]*peerState{},
		banned: map[identity.NodeID]time.Time{},
		own:    map[ownKey]*ownMsg{},
		cache:  newAgeMap[wire.MessageID, *cached](cacheFor, cfg.Clock()),
		wanted: map[wire.MessageID]*wantedMsg{},
		out:    map[identity.NodeID]*outQueue{},
		intro:  map[identity.NodeID]*introBudget{},
		gone:   map[identity.NodeID]time.Time{},
	}
}

func setDefault[T int | float64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Stats returns a copy of the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Score returns a peer's penalty score.
func (e *Engine) Score(id identity.NodeID) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.peers[id]; p != nil {
		return p.score
	}
	return 0
}

// Banned reports whether id is banned now; the transport refuses it.
func (e *Engine) Banned(id identity.NodeID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if until, ok := e.banned[id]; ok && e.cfg.Clock().Before(until) {
		return ErrBanned
	}
	return nil
}

// ErrBanned is returned by Banned for a peer that misbehaved recently.
var ErrBanned = errors.New("peer is banned for misbehaviour")

// Publish signs body as this node's newest announcement of its kind,
// stores it and sends it to every peer at once; it is sent again on the
// next Retransmits ticks, because datagrams get lost.
func (e *Engine) Publish(body wire.Body) (*wire.Envelope, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.publishLocked(body)
}

func (e *Engine) publishLocked(body wire.Body) (*wire.Envelope, error) {
	k := ownKey{body.Type(), body.Subject()}
	ts := e.cfg.Clock()
	// Timestamps order announcements: make each strictly newer than the last
	// one we made, in this run or (from the store) an earlier one.
	var last uint64
	if prev := e.own[k]; prev != nil {
		last = prev.env.Timestamp
	} else if a, ok, err := e.cfg.Store.Get(uint8(body.Type()), []byte(body.Subject()), e.cfg.Key.ID()); err == nil && ok {
		last = a.Timestamp
	}
	if uint64(ts.UnixMilli()) <= last {
		ts = time.UnixMilli(int64(last) + 1)
	}
	env, err := wire.Sign(e.cfg.Key, ts, body)
	if err != nil {
		return nil, err
	}
	if env.Type == wire.TypeNodeAnnouncement {
		env.TTL = NodeAnnouncementTTL
	}
	raw, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := e.cfg.Store.Put(announcement(env, body.Subject(), raw)); err != nil {
		return nil, err
	}
	e.seen.put(env.ID(), struct{}{})
	e.own[k] = &ownMsg{body: body, env: env, raw: raw, pending: e.cfg.Retransmits}
	e.ownChanged = true
	e.pushLocked(infoOf(env.ID(), body), raw, identity.NodeID{}, false)
	return env, nil
}

func announcement(env *wire.Envelope, subject string, raw []byte) Announcement {
	return Announcement{Type: uint8(env.Type), Origin: env.Origin, Subject: []byte(subject), Timestamp: env.Timestamp, Raw: raw}
}

// HandleMessage processes one envelope received from a peer. snapshot marks
// envelopes from the connect-time snapshot, which bypass the rate limit.
func (e *Engine) HandleMessage(from identity.NodeID, raw []byte, snapshot bool) {
	now := e.cfg.Clock()
	env, err := wire.Unmarshal(raw)
	if err != nil {
		e.reject(from, PenaltyMalformed, "malformed envelope", err, &e.stats.Malformed)
		return
	}
	var signed []byte
	if !env.Unsigned() {
		if signed, err = env.SignedBytes(); err != nil {
			e.reject(from, PenaltyMalformed, "invalid envelope", err, &e.stats.Malformed)
			return
		}
	}
	// Link messages are never entered in the seen set: no id to look up.
	var id wire.MessageID
	if !wire.IsLink(env.Type) {
		id = sha256.Sum256(signed)
	}
	e.mu.Lock()
	if !e.allowRecvLocked(from, now, snapshot) {
		e.overBudgetLocked(from, env)
		e.mu.Unlock()
		return
	}
	dup := !wire.IsLink(env.Type) && e.seen.has(id)
	if dup {
		e.stats.Duplicate++
		if !snapshot {
			e.pruneLocked(from, id)
		}
	}
	e.mu.Unlock()
	if dup || !e.verify(from, env, signed, now) {
		return
	}
	body, err := env.DecodeBody()
	if err != nil && !errors.Is(err, wire.ErrUnknownType) {
		e.reject(from, PenaltyMalformed, "invalid message body", err, &e.stats.Malformed)
		return
	}

	if e.applyAndRelay(from, env, id, body, raw, now, snapshot) && e.cfg.OnAccept != nil {
		e.cfg.OnAccept(from, env, body)
	}
}

// verify checks a received envelope's version, signature and time,
// penalising the peer as the failure deserves. An unsigned link message
// has no signature to check: it came over the peer's authenticated
// connection, and handleLinkLocked checks that the peer is its origin.
func (e *Engine) verify(from identity.NodeID, env *wire.Envelope, signed []byte, now time.Time) bool {
	var err error
	if env.Unsigned() {
		err = env.VerifyUnsigned(now)
	} else {
		err = env.VerifySigned(now, signed, e.cfg.CheckSignature)
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, wire.ErrBadSignature):
		e.reject(from, PenaltyForged, "forged message", err, &e.stats.Forged)
	case errors.Is(err, wire.ErrExpired), errors.Is(err, wire.ErrFutureTimestamp), errors.Is(err, wire.ErrBadVersion):
		// Authentic but out of its time or version: clocks and versions
		// differ between honest nodes. Drop without penalty.
		e.mu.Lock()
		e.stats.Expired++
		e.mu.Unlock()
		e.log.Debug("dropped an expired or unsupported message", "from", from, "err", err)
	default:
		e.reject(from, PenaltyMalformed, "invalid envelope", err, &e.stats.Malformed)
	}
	return false
}

// applyAndRelay stores a verified envelope and relays it, or applies a
// link message. It reports whether it was a new announcement of another
// node.
func (e *Engine) applyAndRelay(from identity.NodeID, env *wire.Envelope, id wire.MessageID, body wire.Body, raw []byte, now time.Time, snapshot bool) (accepted bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if wire.IsLink(env.Type) {
		e.handleLinkLocked(from, env, body)
		return false
	}
	if e.seen.has(id) { // a concurrent copy won the race
		e.stats.Duplicate++
		return false
	}
	e.seen.put(id, struct{}{})
	delete(e.wanted, id)
	m := infoOf(id, body)
	if !snapshot { // it pushed to us: the link is in the topic's tree
		e.peerLocked(from, now).tree.set(m.repo, false)
	}
	if body != nil {
		if env.Origin == e.cfg.Key.ID() {
			e.handleOwnLocked(env, body)
			return false
		}
		if !m.repo.IsZero() && !e.followsLocked(m.repo) {
			e.stats.Unwanted++ // a Bloom false positive: neither kept nor relayed
			return false
		}
		a := announcement(env, body.Subject(), raw)
		if !e.introducesLocked(from, a, now) {
			e.stats.Capped++ // over what one peer may bring in: dropped
			e.seen.remove(id)
			return false
		}
		stored, err := e.cfg.Store.Put(a)
		if err != nil {
			e.log.Warn("storing an announcement failed; dropped it", "origin", env.Origin, "type", env.Type, "err", err)
			return false
		}
		if !stored { // older than what we hold: a replay or a late copy
			e.stats.Stale++
			return false
		}
		if err := e.cfg.Store.Touch(env.Origin, now); err != nil {
			e.log.Warn("recording when a node was last heard of failed", "node", env.Origin, "err", err)
		}
		e.stats.Accepted++
		accepted = true
	}
	if !e.cfg.DisableRelay {
		if env.Type == wire.TypeNodeAnnouncement {
			env.TTL = min(env.TTL, NodeAnnouncementTTL) // the relay budget
		}
		if fwd, ok := env.Relayed(); ok {
			if out, err := fwd.Marshal(); err == nil {
				e.stats.Relayed++
				e.pushLocked(m, out, from, false)
			}
		}
	}
	return accepted
}

// handleOwnLocked deals with one of our own announcements coming back. One
// newer than what we hold means a previous run of this node (same key)
// announced later than our clock says: move past it so ours win again.
func (e *Engine) handleOwnLocked(env *wire.Envelope, body wire.Body) {
	k := ownKey{body.Type(), body.Subject()}
	cur := e.own[k]
	if cur == nil || env.Timestamp < cur.env.Timestamp {
		return
	}
	e.log.Debug("saw a newer announcement of our own; re-announcing", "type", env.Type)
	cur.env = env // publishLocked signs strictly after this timestamp
	if _, err := e.publishLocked(cur.body); err != nil {
		e.log.Warn("re-announcing failed", "type", env.Type, "err", err)
	}
}

func (e *Engine) reject(from identity.NodeID, penalty int, what string, err error, counter *uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	*counter++
	e.log.Debug("rejected a message", "from", from, "why", what, "err", err)
	e.penaliseLocked(from, penalty, what)
}

// Penalise adds to a peer's score, for misbehaviour seen outside the engine
// (an oversize stream, a garbage datagram).
func (e *Engine) Penalise(peer identity.NodeID, penalty int, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.penaliseLocked(peer, penalty, reason)
}

func (e *Engine) penaliseLocked(peer identity.NodeID, penalty int, reason string) {
	p := e.peerLocked(peer, e.cfg.Clock())
	p.score += penalty
	if e.cfg.OnPenalty != nil {
		e.cfg.OnPenalty(peer, p.score, reason)
	}
	if p.score >= e.cfg.BanScore {
		e.log.Warn("banned a misbehaving peer", "peer", peer, "score", p.score, "reason", reason, "for", e.cfg.BanFor)
		e.banned[peer] = e.cfg.Clock().Add(e.cfg.BanFor)
		e.cfg.Spawn(func() { e.cfg.Net.Disconnect(peer, reason) })
	}
}

func (e *Engine) peerLocked(id identity.NodeID, now time.Time) *peerState {
	p := e.peers[id]
	if p == nil {
		p = &peerState{tokens: e.cfg.Burst, last: now, snapTokens: float64(e.cfg.SnapshotBudget), snapLast: now}
		e.peers[id] = p
	}
	return p
}

// allowLocked takes a token from the peer's bucket.
func (e *Engine) allowLocked(id identity.NodeID, now time.Time) bool {
	p := e.peerLocked(id, now)
	p.tokens = min(e.cfg.Burst, p.tokens+now.Sub(p.last).Seconds()*e.cfg.Rate)
	p.last = now
	if p.tokens < 1 {
		return false
	}
	p.tokens--
	return true
}

// PeerGone forgets a disconnected peer's rate state (its score stays while
// a ban lasts).
func (e *Engine) PeerGone(id identity.NodeID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.peers[id]; p != nil && p.score < e.cfg.BanScore {
		delete(e.peers, id)
	}
	delete(e.out, id)
	if len(e.gone) >= maxGone {
		clear(e.gone)
	}
	e.gone[id] = e.cfg.Clock()
}

// MaxSnapshot is how many envelopes one snapshot may carry.
func (e *Engine) MaxSnapshot() int { return e.cfg.MaxSnapshot }

// Serve runs the engine's clock until ctx is done: Tick every
// RefreshInterval.
func (e *Engine) Serve(ctx context.Context) error {
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			e.Tick()
		}
	}
}

// Tick does the periodic work: resend fresh own messages, re-sign own
// announcements that are getting old and, once per sweepEvery, forget
// old message ids, bans and budgets. Serve calls it every
// RefreshInterval (10 s); simulations call it on their own clock.
func (e *Engine) Tick() {
	now := e.cfg.Clock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ownChanged || !now.Before(e.ownDue) {
		e.tickOwnLocked(now)
	}
	e.seen.age(now)
	e.cache.age(now)
	if now.Sub(e.swept) >= sweepEvery {
		e.swept = now
		e.sweepLocked(now)
	}
}

// tickOwnLocked re-signs own announcements older than RefreshAfter and
// resends those with retransmits left, in a fixed order, then notes when
// it next has work: at once if retransmits are left, else at the oldest
// announcement's refresh.
func (e *Engine) tickOwnLocked(now time.Time) {
	refreshAt := func(m *ownMsg) time.Time {
		return time.UnixMilli(int64(m.env.Timestamp)).Add(e.cfg.RefreshAfter)
	}
	var due []ownKey
	for k, m := range e.own {
		if m.pending > 0 || now.After(refreshAt(m)) {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, compareOwnKeys)
	for _, k := range due {
		m := e.own[k]
		switch {
		case now.After(refreshAt(m)):
			if _, err := e.publishLocked(m.body); err != nil {
				e.log.Warn("refreshing our announcement failed; retrying on the next tick", "type", m.body.Type(), "err", err)
			}
		case m.pending > 0:
			m.pending--
			e.pushLocked(infoOf(m.env.ID(), m.body), m.raw, identity.NodeID{}, true)
		}
	}
	e.ownChanged, e.ownDue = false, now.Add(e.cfg.RefreshAfter)
	for _, m := range e.own {
		e.ownChanged = e.ownChanged || m.pending > 0
		if at := refreshAt(m); at.Before(e.ownDue) {
			e.ownDue = at
		}
	}
}

// sweepEvery is how often Tick forgets what has expired: every map it
// walks grows with the traffic, so walking them on every tick would cost
// more than the tick's real work. Ids and budgets live up to this much
// longer than their windows, which only makes duplicates rarer.
const sweepEvery = time.Minute

// sweepLocked forgets ended bans, old budgets and links ended long ago.
func (e *Engine) sweepLocked(now time.Time) {
	for id, until := range e.banned {
		if now.After(until) {
			delete(e.banned, id)
			delete(e.peers, id)
		}
	}
	e.forgetBudgetsLocked(now)
	for id, t := range e.gone {
		if now.Sub(t) > wire.MaxAge {
			delete(e.gone, id)
		}
	}
}

// RefreshInterval is how often the daemon calls Tick.
const RefreshInterval = 10 * time.Second
