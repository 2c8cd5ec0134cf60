package relay

import (
	"context"
	"io"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/nat"
)

// Relayed streams (spec/nat.md §5): the fallback when punching fails.

// Limits of a relay's relayed streams.
const (
	MaxRelayed      = 64               // relayed streams one relay carries at once
	RelayRate       = 1 << 20          // bytes per second, each direction of one stream
	RelayMaxTime    = 10 * time.Minute // a relayed stream is cut after this long
	relayChunk      = 16 << 10
	relayAcceptWait = 10 * time.Second
)

// Relayed asks relay r to join a stream to id, and runs the end-to-end
// authenticated connection to id inside it.
func (s *Service) Relayed(ctx context.Context, r *transport.Peer, id identity.NodeID) (*transport.Peer, error) {
	st, _, err := s.ask(ctx, r, transport.StreamRelay, &nat.Introduce{Node: id.PublicKey()})
	if err != nil {
		return nil, err
	}
	return s.t.DialOver(ctx, streamRW{st}, id)
}

// streamRW is a QUIC stream as an io.ReadWriteCloser that Close ends
// both ways.
type streamRW struct{ *quic.Stream }

func (s streamRW) Close() error {
	s.CancelRead(0)
	return s.Stream.Close()
}

// serveRelay serves kind 7: from a node, a request to join a stream to
// another node (this node being a relay); from a relay, the joined stream
// another node's connection arrives on.
func (s *Service) serveRelay(p *transport.Peer, st *quic.Stream) {
	st.SetDeadline(time.Now().Add(streamTimeout))
	var m nat.Introduce
	if err := nat.Read(st, &m); err != nil {
		streamRW{st}.Close()
		return
	}
	id, _ := m.NodeID()
	if s.cfg.Relay && !s.cfg.IsRelay(p.ID) {
		s.join(p, st, id)
		return
	}
	if !s.cfg.IsRelay(p.ID) {
		_ = nat.Write(st, &nat.Reply{Reason: "relayed streams are taken from relays only"})
		streamRW{st}.Close()
		return
	}
	if err := nat.Write(st, &nat.Reply{OK: true}); err != nil {
		streamRW{st}.Close()
		return
	}
	st.SetDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(p.Context(), relayAcceptWait)
	defer cancel()
	if _, err := s.t.AcceptOver(ctx, streamRW{st}, id); err != nil {
		s.log.Debug("accepting a connection relayed to us failed", "from", id, "err", err)
	}
}

// join connects the requester's stream to one opened to id, within the
// relay's limits, and copies between them until either ends.
func (s *Service) join(p *transport.Peer, st *quic.Stream, id identity.NodeID) {
	a := streamRW{st}
	defer a.Close()
	reply := func(r nat.Reply) { _ = nat.Write(st, &r) }
	target := s.t.Peer(id)
	if target == nil || target.Path() != transport.PathDirect {
		reply(nat.Reply{Reason: "the node is not connected to this relay"})
		return
	}
	s.mu.Lock()
	full := s.relayed >= MaxRelayed
	if !full {
		s.relayed++
	}
	s.mu.Unlock()
	if full {
		reply(nat.Reply{Reason: "too many relayed streams"})
		return
	}
	defer func() { s.mu.Lock(); s.relayed--; s.mu.Unlock() }()
	tst, _, err := s.ask(p.Context(), target, transport.StreamRelay, &nat.Introduce{Node: p.ID.PublicKey()})
	if err != nil {
		reply(nat.Reply{Reason: "the node declined"})
		return
	}
	b := streamRW{tst}
	defer b.Close()
	reply(nat.Reply{OK: true})
	end := time.Now().Add(RelayMaxTime)
	st.SetDeadline(end)
	tst.SetDeadline(end)
	done := make(chan struct{}, 2)
	go func() { copyLimited(b, a); done <- struct{}{} }()
	go func() { copyLimited(a, b); done <- struct{}{} }()
	<-done // one side ended: the deferred closes end the other
	s.log.Debug("relayed stream ended", "from", p.ID, "to", id)
}

// copyLimited copies src to dst at most RelayRate bytes per second.
func copyLimited(dst io.Writer, src io.Reader) {
	buf := make([]byte, relayChunk)
	start, total := time.Now(), 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			total += n
			if ahead := time.Duration(total)*time.Second/RelayRate - time.Since(start); ahead > 0 {
				time.Sleep(ahead) // rate limit, not synchronisation
			}
		}
		if err != nil {
			return
		}
	}
}
