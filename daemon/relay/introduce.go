package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/nat"
)

// Introductions and hole punching (spec/nat.md §4).

// Punching: a probe every punchEvery from each side for at most punchFor.
const (
	punchEvery = 50 * time.Millisecond
	punchFor   = 6 * time.Second
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// ErrNoRelay means no connected relay could introduce the two nodes.
var ErrNoRelay = errors.New("no connected relay knows the node")

// Punch asks relay r to introduce this node to id, then punches a hole
// to id's observed address and dials it there.
func (s *Service) Punch(ctx context.Context, r *transport.Peer, id identity.NodeID) (*transport.Peer, error) {
	nonce := make([]byte, nat.NonceSize)
	rand.Read(nonce)
	st, rep, err := s.ask(ctx, r, transport.StreamIntroduce, &nat.Introduce{Node: id.PublicKey(), Nonce: nonce})
	if err != nil {
		return nil, err
	}
	st.Close()
	to, _ := netip.ParseAddrPort(rep.Addr)
	if !to.IsValid() {
		return nil, errorf("relay %s gave no address for %s", r.ID.Short(), id.Short())
	}
	pctx, stop := context.WithTimeout(ctx, punchFor)
	defer stop()
	go s.punch(pctx, to, nonce, id)
	return s.t.Dial(pctx, identity.Addr{ID: id, HostPort: to.String()})
}

// ask opens a stream of kind to p, sends m and reads the reply.
func (s *Service) ask(ctx context.Context, p *transport.Peer, kind byte, m nat.Message) (*quic.Stream, nat.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := p.OpenStream(ctx, kind)
	if err != nil {
		return nil, nat.Reply{}, err
	}
	st.SetDeadline(time.Now().Add(streamTimeout))
	var rep nat.Reply
	if err = nat.Write(st, m); err == nil {
		err = nat.Read(st, &rep)
	}
	if err == nil && !rep.OK {
		err = errorf("%s refused: %s", p.ID.Short(), rep.Reason)
	}
	if err != nil {
		st.CancelRead(0)
		st.CancelWrite(0)
		return nil, rep, err
	}
	st.SetDeadline(time.Time{})
	return st, rep, nil
}

// punch sends probes to to until ctx ends or id is connected.
func (s *Service) punch(ctx context.Context, to netip.AddrPort, nonce []byte, id identity.NodeID) {
	tick := time.NewTicker(punchEvery)
	defer tick.Stop()
	for s.t.Peer(id) == nil {
		_ = s.t.WriteTo(nat.Probe(nonce), to)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// serveIntroduce serves kind 6: an Introduce without an address asks this
// relay to introduce the sender to a node; one with an address is a
// relay telling this node to punch towards the named node.
func (s *Service) serveIntroduce(p *transport.Peer, st *quic.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	var m nat.Introduce
	if err := nat.Read(st, &m); err != nil {
		st.CancelRead(0)
		return
	}
	id, _ := m.NodeID() // validated by Read
	if m.Addr != "" {
		s.punched(p, st, id, m)
		return
	}
	reply := func(r nat.Reply) { _ = nat.Write(st, &r) }
	target := s.t.Peer(id)
	switch {
	case !s.cfg.Relay:
		reply(nat.Reply{Reason: "not a relay"})
		return
	case target == nil || target.Path() != transport.PathDirect:
		reply(nat.Reply{Reason: "the node is not connected to this relay"})
		return
	}
	ctx, cancel := context.WithTimeout(p.Context(), streamTimeout)
	defer cancel()
	fwd := &nat.Introduce{Node: p.ID.PublicKey(), Addr: p.RemoteAddrPort().String(), Nonce: m.Nonce}
	tst, _, err := s.ask(ctx, target, transport.StreamIntroduce, fwd)
	if err != nil {
		reply(nat.Reply{Reason: "the node declined"})
		return
	}
	tst.Close()
	reply(nat.Reply{OK: true, Addr: target.RemoteAddrPort().String()})
}

// punched answers a relay's punch request and punches towards the node.
func (s *Service) punched(p *transport.Peer, st *quic.Stream, id identity.NodeID, m nat.Introduce) {
	if !s.cfg.IsRelay(p.ID) {
		_ = nat.Write(st, &nat.Reply{Reason: "introductions are taken from relays only"})
		return
	}
	_ = nat.Write(st, &nat.Reply{OK: true})
	to, _ := netip.ParseAddrPort(m.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), punchFor)
	go func() {
		defer cancel()
		s.punch(ctx, to, m.Nonce, id)
	}()
}
