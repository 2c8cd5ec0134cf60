package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Limits bound what connections that are not yet peers may cost: a
// stranger can open QUIC connections (or spoof Initial packets) and never
// finish the Noise handshake. Numbers are in spec/node.md §1.2.
type Limits struct {
	// MaxQUICHandshakes bounds inbound QUIC handshakes in flight; more are
	// refused at once. Default 256.
	MaxQUICHandshakes int
	// RetryAbove is the number of inbound QUIC handshakes in flight above
	// which a client must first prove its address with a Retry round trip,
	// so that spoofed Initial packets create no state. Default 16.
	RetryAbove int
	// MaxPending bounds inbound connections past QUIC that have not
	// finished the Noise handshake; MaxPendingPerIP and MaxPendingPerNet
	// bound those from one address and from one /24 (IPv4) or /48 (IPv6).
	// A new connection over a bound replaces the oldest one it competes
	// with: an honest handshake takes milliseconds, a stalled one is the
	// likely attacker. Defaults 32, 8, 16.
	MaxPending, MaxPendingPerIP, MaxPendingPerNet int
	// NoiseTimeout bounds the Noise handshake of an inbound connection.
	// Default 5 s.
	NoiseTimeout time.Duration
	// ReservedInbound of the MaxInbound slots are kept for peers ranked
	// above 0 (Config.Rank). Default a quarter of MaxInbound.
	ReservedInbound int
}

// DefaultLimits returns the default admission limits.
func DefaultLimits() Limits {
	return Limits{
		MaxQUICHandshakes: 256, RetryAbove: 16,
		MaxPending: 32, MaxPendingPerIP: 8, MaxPendingPerNet: 16,
		NoiseTimeout: 5 * time.Second,
	}
}

// fill replaces zero fields with the defaults.
func (l *Limits) fill(maxInbound int) {
	d := DefaultLimits()
	for _, f := range []struct{ v, d *int }{
		{&l.MaxQUICHandshakes, &d.MaxQUICHandshakes}, {&l.RetryAbove, &d.RetryAbove},
		{&l.MaxPending, &d.MaxPending}, {&l.MaxPendingPerIP, &d.MaxPendingPerIP},
		{&l.MaxPendingPerNet, &d.MaxPendingPerNet},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if l.NoiseTimeout <= 0 {
		l.NoiseTimeout = d.NoiseTimeout
	}
	if l.ReservedInbound <= 0 || l.ReservedInbound >= maxInbound {
		l.ReservedInbound = maxInbound / 4
	}
}

// ErrFull is returned when no inbound slot can be given to a peer.
var ErrFull = errors.New("inbound connection limit reached")

// ---- QUIC handshakes ----

// handshakeSlot is the context key of an inbound QUIC handshake's release.
type handshakeSlot struct{}

// quicAdmit is quic.Transport.ConnContext: it counts inbound QUIC
// handshakes and refuses one over MaxQUICHandshakes.
func (t *Transport) quicAdmit(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	if t.quicInFlight.Load() >= int64(t.cfg.Limits.MaxQUICHandshakes) {
		return nil, errors.New("too many handshakes in flight")
	}
	t.quicInFlight.Add(1)
	release := sync.OnceFunc(func() { t.quicInFlight.Add(-1) })
	context.AfterFunc(ctx, release) // a handshake that fails or times out
	return context.WithValue(ctx, handshakeSlot{}, release), nil
}

// quicAccepted ends the QUIC handshake's count for an accepted connection.
func quicAccepted(conn *quic.Conn) {
	if release, ok := conn.Context().Value(handshakeSlot{}).(func()); ok {
		release()
	}
}

// needRetry is quic.Transport.VerifySourceAddress.
func (t *Transport) needRetry(net.Addr) bool {
	return t.quicInFlight.Load() >= int64(t.cfg.Limits.RetryAbove)
}

// QUICHandshakes is the number of inbound QUIC handshakes in flight.
func (t *Transport) QUICHandshakes() int { return int(t.quicInFlight.Load()) }

// ---- Noise handshakes ----

// pendingConn is an inbound connection in the Noise handshake.
type pendingConn struct {
	conn  *quic.Conn
	ip    netip.Addr
	net   netip.Prefix
	since time.Time
}

// addrKeys are the address and network a connection is counted under.
func addrKeys(a net.Addr) (netip.Addr, netip.Prefix) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	pfx, _ := ip.Prefix(bits)
	return ip, pfx
}

// addPending counts conn as in the Noise handshake, first closing the
// oldest pending connections it competes with while a bound is reached.
func (t *Transport) addPending(conn *quic.Conn) {
	ip, pfx := addrKeys(conn.RemoteAddr())
	l := t.cfg.Limits
	var victims []*pendingConn
	t.mu.Lock()
	for {
		var sameIP, sameNet, all []*pendingConn
		for _, p := range t.pending {
			all = append(all, p)
			if p.net == pfx {
				sameNet = append(sameNet, p)
				if p.ip == ip {
					sameIP = append(sameIP, p)
				}
			}
		}
		var pool []*pendingConn
		switch {
		case len(sameIP) >= l.MaxPendingPerIP:
			pool = sameIP
		case len(sameNet) >= l.MaxPendingPerNet:
			pool = sameNet
		case len(all) >= l.MaxPending:
			pool = all
		}
		if pool == nil {
			break
		}
		oldest := slices.MinFunc(pool, func(a, b *pendingConn) int { return a.since.Compare(b.since) })
		delete(t.pending, oldest.conn)
		victims = append(victims, oldest)
	}
	t.pending[conn] = &pendingConn{conn: conn, ip: ip, net: pfx, since: time.Now()}
	t.mu.Unlock()
	for _, v := range victims { // closing waits for the connection: not in the accept loop
		t.log.Debug("dropping a connection stalled in the handshake", "remote", v.conn.RemoteAddr(), "after", time.Since(v.since))
		t.wg.Go(func() { v.conn.CloseWithError(CodeBusy, "too many connections in the handshake") })
	}
}

func (t *Transport) dropPending(conn *quic.Conn) {
	t.mu.Lock()
	delete(t.pending, conn)
	t.mu.Unlock()
}

// Pending is the number of inbound connections in the Noise handshake.
func (t *Transport) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// ---- inbound slots ----

func (t *Transport) rank(id identity.NodeID) int {
	if t.cfg.Rank == nil {
		return 0
	}
	return t.cfg.Rank(id)
}

// admit decides on a peer that dials us once its first Noise message
// proved its key, before we answer: Config.Admit (a ban), then a slot.
func (t *Transport) admit(id identity.NodeID) error {
	if t.cfg.Admit != nil {
		if err := t.cfg.Admit(id); err != nil {
			return err
		}
	}
	return t.makeRoom(id)
}

// makeRoom finds an inbound slot for id: a free one it may take, else that
// of the lowest-ranked inbound peer if it ranks below id, which is closed.
func (t *Transport) makeRoom(id identity.NodeID) error {
	type ranked struct {
		p    *Peer
		rank int
	}
	var inbound []ranked
	for _, q := range t.Peers() { // ranks are asked outside the lock
		if !q.Outbound && q.ID != id {
			inbound = append(inbound, ranked{q, t.rank(q.ID)})
		}
	}
	mine := t.rank(id)
	strangers := 0
	for _, q := range inbound {
		if q.rank <= 0 {
			strangers++
		}
	}
	l := t.cfg.Limits
	if len(inbound) < t.cfg.MaxInbound && (mine > 0 || strangers < t.cfg.MaxInbound-l.ReservedInbound) {
		return nil
	}
	if len(inbound) == 0 {
		return ErrFull
	}
	// The least useful goes first; of equals, the newest (a flood of
	// throwaway keys arrives last).
	victim := slices.MinFunc(inbound, func(a, b ranked) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return b.p.ConnectedAt.Compare(a.p.ConnectedAt)
	})
	if victim.rank >= mine {
		return fmt.Errorf("%w (%d peers, %d of them strangers)", ErrFull, len(inbound), strangers)
	}
	t.log.Info("dropping a peer to make room for a more useful one", "dropped", victim.p.ID, "for", id)
	t.wg.Go(func() { victim.p.Close(CodeBusy, "replaced by a more useful peer") })
	return nil
}
