package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/nat"
)

// Observed addresses (spec/nat.md §1): right after the handshake each side
// opens a StreamObserved stream and tells the other the UDP address its
// packets come from. Over a connection between two private addresses (the
// same private network) it adds its own private addresses, which never go
// to the public network.

// peerNAT is what a peer told us, guarded by its own lock.
type peerNAT struct {
	mu       sync.Mutex
	observed netip.AddrPort // our address as the peer sees it
	lan      []string       // the peer's private addresses
}

// Observed is the address the peer sees us at (invalid until it told us).
func (p *Peer) Observed() netip.AddrPort {
	p.nat.mu.Lock()
	defer p.nat.mu.Unlock()
	return p.nat.observed
}

// LAN are the private addresses the peer shared with us (spec/nat.md §1).
func (p *Peer) LAN() []string {
	p.nat.mu.Lock()
	defer p.nat.mu.Unlock()
	return slices.Clone(p.nat.lan)
}

// RemoteAddrPort is the peer's UDP address as this node sees it.
func (p *Peer) RemoteAddrPort() netip.AddrPort {
	if u, ok := p.Remote.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(p.Remote.String())
	return ap
}

// observedTimeout bounds sending or reading one Observed message.
const observedTimeout = 10 * time.Second

// sendObserved tells p where its packets come from.
func (t *Transport) sendObserved(p *Peer) {
	remote := p.RemoteAddrPort()
	if !remote.IsValid() {
		return
	}
	msg := &nat.Observed{Addr: remote.String()}
	if !nat.Public(remote.Addr()) {
		for _, a := range t.LocalAddrs() {
			if ap, err := netip.ParseAddrPort(a); err == nil && !nat.Public(ap.Addr()) && len(msg.LAN) < nat.MaxLAN {
				msg.LAN = append(msg.LAN, a)
			}
		}
	}
	ctx, cancel := context.WithTimeout(p.Context(), observedTimeout)
	defer cancel()
	s, err := p.OpenUni(ctx, StreamObserved)
	if err != nil {
		return
	}
	s.SetWriteDeadline(time.Now().Add(observedTimeout))
	if err := nat.Write(s, msg); err != nil {
		s.CancelWrite(0)
		return
	}
	s.Close()
}

// readObserved records what p says our address is.
func (t *Transport) readObserved(p *Peer, s io.Reader) {
	if d, ok := s.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(time.Now().Add(observedTimeout))
	}
	var msg nat.Observed
	if err := nat.Read(s, &msg); err != nil {
		t.log.Debug("ignored a malformed observed-address message", "peer", p.ID, "err", err)
		return
	}
	ap, _ := netip.ParseAddrPort(msg.Addr) // validated by Read
	p.nat.mu.Lock()
	p.nat.observed = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	p.nat.lan = msg.LAN
	p.nat.mu.Unlock()
	t.log.Debug("a peer told us the address it sees us from", "peer", p.ID, "addr", msg.Addr)
	if t.cfg.OnObserved != nil {
		t.cfg.OnObserved(p)
	}
}

// ObservedAddrs are the distinct addresses connected peers see us at,
// those reported by more peers first.
func (t *Transport) ObservedAddrs() []netip.AddrPort {
	count := map[netip.AddrPort]int{}
	for _, p := range t.Peers() {
		if a := p.Observed(); a.IsValid() {
			count[a]++
		}
	}
	out := make([]netip.AddrPort, 0, len(count))
	for a := range count {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int {
		if count[a] != count[b] {
			return count[b] - count[a]
		}
		return a.Compare(b)
	})
	return out
}

// LocalAddrs are the host:port addresses of the bound socket: the bound
// address, or — bound to an unspecified address — this machine's interface
// addresses (loopback last).
func (t *Transport) LocalAddrs() []string {
	bound := t.LocalAddr()
	port := bound.Port
	if !bound.IP.IsUnspecified() {
		return []string{netip.AddrPortFrom(bound.AddrPort().Addr().Unmap(), uint16(port)).String()}
	}
	var out, loopback []string
	ifaddrs, _ := net.InterfaceAddrs()
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsMulticast() {
			continue
		}
		if ipn.IP.To4() == nil && bound.IP.Equal(net.IPv4zero) {
			continue // bound to IPv4 only
		}
		hp := net.JoinHostPort(ipn.IP.String(), strconv.Itoa(port))
		if ipn.IP.IsLoopback() {
			loopback = append(loopback, hp)
		} else {
			out = append(out, hp)
		}
	}
	return append(out, loopback...)
}

// WriteTo sends a raw (non-QUIC) packet from the node's socket, as hole
// punching needs. The first byte of b must have the QUIC fixed bit clear.
func (t *Transport) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := t.tr.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// ExpectProbe registers nonce, before the dial-back that carries it is
// asked for (a probe that arrives before its waiter would be dropped).
// arrived is closed when a probe packet (nat.Probe) with nonce arrives on
// the node's socket; stop unregisters it.
func (t *Transport) ExpectProbe(nonce []byte) (arrived <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	t.mu.Lock()
	t.probes[string(nonce)] = ch
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		if t.probes[string(nonce)] == ch {
			delete(t.probes, string(nonce))
		}
		t.mu.Unlock()
	}
}

// readNonQUIC reads the socket's non-QUIC packets until ctx ends: probes
// wake their waiter; anything else (hole punches) is dropped.
func (t *Transport) readNonQUIC(ctx context.Context) {
	buf := make([]byte, 1500)
	for {
		n, _, err := t.tr.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return
			}
			select {
			case <-t.closing:
				return
			default:
				continue
			}
		}
		nonce, ok := nat.ParseProbe(buf[:n])
		if !ok {
			continue
		}
		t.mu.Lock()
		ch := t.probes[string(nonce)]
		delete(t.probes, string(nonce))
		t.mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}
}
