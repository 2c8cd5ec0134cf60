package transport

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// DialerConfig configures a Dialer.
type DialerConfig struct {
	// Bootstrap nodes are kept connected: redialled whenever they are not.
	Bootstrap []identity.Addr
	// Target is how many peers to reach by dialling learned nodes (0: only
	// bootstrap nodes are dialled).
	Target int
	// Candidates returns up to max learned nodes to dial, leaving out those
	// skip reports true for.
	Candidates func(max int, skip func(identity.NodeID) bool) []identity.Addr
	// RelayTarget is how many relays to keep connected (0: none beyond
	// the bootstrap nodes); a node behind NAT is reached through them.
	// Bootstrap relays count first; Relays supplies learned ones.
	RelayTarget int
	// Relays returns up to max learned relays to dial, as Candidates.
	Relays func(max int, skip func(identity.NodeID) bool) []identity.Addr
	// IsRelay reports whether a peer is a relay.
	IsRelay func(identity.NodeID) bool
	// Mesh returns up to max learned nodes to dial beyond Target, as
	// Candidates: those that keep each repository the node follows linked
	// to other nodes that hold it (spec/scale.md §2.4). Nil: none.
	Mesh func(max int, skip func(identity.NodeID) bool) []identity.Addr
	Log  *slog.Logger
}

// Redial back-off: 1 s doubling to 1 min per node; a check every second;
// at most maxMeshDials dials a look for the mesh.
const (
	maxMeshDials = 8
	minBackoff   = time.Second
	maxBackoff   = time.Minute
	dialEvery    = time.Second
	dialTimeout  = 10 * time.Second
)

// Dialer keeps a node connected: bootstrap nodes always, learned nodes up
// to a target number of peers, each node redialled with back-off.
type Dialer struct {
	t   *Transport
	cfg DialerConfig
	log *slog.Logger

	kick chan struct{} // something changed: look again now

	mu      sync.Mutex
	backoff map[identity.NodeID]*backoff
}

// idleEvery bounds how long a dialer with nothing to do waits before it
// looks again by itself (Kick wakes it at once).
const idleEvery = 16 * time.Second

// Kick makes the dialer look at once: a peer left, a node was learned.
func (d *Dialer) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// settled reports whether every bootstrap node is connected.
func (d *Dialer) settled() bool {
	for _, b := range d.cfg.Bootstrap {
		if d.t.Peer(b.ID) == nil {
			return false
		}
	}
	return true
}

type backoff struct {
	next  time.Time
	delay time.Duration
}

// NewDialer makes a dialer for t; Serve runs it.
func NewDialer(t *Transport, cfg DialerConfig) *Dialer {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	none := func(int, func(identity.NodeID) bool) []identity.Addr { return nil }
	if cfg.Candidates == nil {
		cfg.Candidates = none
	}
	if cfg.Relays == nil {
		cfg.Relays = none
	}
	if cfg.Mesh == nil {
		cfg.Mesh = none
	}
	if cfg.IsRelay == nil {
		cfg.IsRelay = func(identity.NodeID) bool { return false }
	}
	return &Dialer{t: t, cfg: cfg, log: cfg.Log, kick: make(chan struct{}, 1), backoff: map[identity.NodeID]*backoff{}}
}

// Serve dials what is needed (every second while there is work, up to
// idleEvery apart when settled) until ctx is done, and waits
// for the dials it started.
func (d *Dialer) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wait := dialEvery
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		want := d.needed(time.Now())
		for _, a := range want {
			wg.Go(func() {
				dctx, cancel := context.WithTimeout(ctx, dialTimeout)
				defer cancel()
				if _, err := d.t.Dial(dctx, a); err != nil {
					d.log.Debug("dialling a node failed; backing off", "node", a.ID, "addr", a.HostPort, "err", err)
					d.failed(a.ID)
					return
				}
				d.Forget(a.ID) // connected: the next loss starts from the shortest delay
			})
		}
		// Nothing to do: look less and less often (an idle node should not
		// scan its tables every second), until kicked.
		if len(want) == 0 && d.settled() {
			wait = min(2*wait, idleEvery)
		} else {
			wait = dialEvery
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-d.kick:
			wait = dialEvery
		}
	}
}

// needed lists bootstrap nodes that are not connected, and learned nodes
// while there are fewer than Target peers, each at most once per back-off.
func (d *Dialer) needed(now time.Time) []identity.Addr {
	var want []identity.Addr
	for _, b := range d.cfg.Bootstrap {
		if d.t.Peer(b.ID) == nil && d.due(b.ID, now) {
			want = append(want, b)
		}
	}
	skip := func(id identity.NodeID) bool {
		return d.t.Peer(id) != nil || slices.ContainsFunc(want, func(a identity.Addr) bool { return a.ID == id }) || !d.due(id, now)
	}
	if missing := d.cfg.RelayTarget - d.connectedRelays() - d.relaysIn(want); missing > 0 {
		want = append(want, d.cfg.Relays(missing, skip)...)
	}
	if missing := d.cfg.Target - len(d.t.Peers()) - len(want); missing > 0 {
		want = append(want, d.cfg.Candidates(missing, skip)...)
	}
	want = append(want, d.cfg.Mesh(maxMeshDials, skip)...)
	return want
}

// connectedRelays counts the peers that are relays.
func (d *Dialer) connectedRelays() int {
	n := 0
	for _, p := range d.t.Peers() {
		if d.cfg.IsRelay(p.ID) {
			n++
		}
	}
	return n
}

// relaysIn counts the relays among addrs.
func (d *Dialer) relaysIn(addrs []identity.Addr) int {
	n := 0
	for _, a := range addrs {
		if d.cfg.IsRelay(a.ID) {
			n++
		}
	}
	return n
}

// due reports whether id may be dialled now, and if so books the attempt.
func (d *Dialer) due(id identity.NodeID, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.backoff[id]
	if b == nil {
		b = &backoff{delay: minBackoff}
		d.backoff[id] = b
	}
	if now.Before(b.next) {
		return false
	}
	b.next = now.Add(b.delay) // no second attempt while this one runs
	return true
}

// failed doubles id's redial delay.
func (d *Dialer) failed(id identity.NodeID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if b := d.backoff[id]; b != nil {
		b.next = time.Now().Add(b.delay)
		b.delay = min(2*b.delay, maxBackoff)
	}
}

// Forget drops id's back-off state (it connected, or left the table).
func (d *Dialer) Forget(id identity.NodeID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.backoff, id)
}
