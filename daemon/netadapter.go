package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// streamSendTimeout bounds writing one gossip stream or snapshot.
const streamSendTimeout = 30 * time.Second

// gossipNet adapts the QUIC transport to gossip.Network: an envelope that
// fits wire.DatagramBudget goes as one datagram, a larger one on its own
// unidirectional stream; snapshots go on one stream as length-prefixed
// envelopes (4-byte big-endian length each).
type gossipNet struct{ n *Node }

var _ gossip.Network = gossipNet{}

func (g gossipNet) Peers() []identity.NodeID {
	peers := g.n.tr.Peers()
	out := make([]identity.NodeID, len(peers))
	for i, p := range peers {
		out[i] = p.ID
	}
	return out
}

func (g gossipNet) Send(to identity.NodeID, msg []byte) error {
	p := g.n.tr.Peer(to)
	if p == nil {
		return errors.New("not connected")
	}
	if len(msg) <= wire.DatagramBudget {
		err := p.SendDatagram(transport.DatagramGossip, msg)
		var tooLarge *quic.DatagramTooLargeError
		if !errors.As(err, &tooLarge) {
			return err
		}
	}
	go func() {
		ctx, cancel := context.WithTimeout(p.Context(), streamSendTimeout)
		defer cancel()
		s, err := p.OpenUni(ctx, transport.StreamGossip)
		if err != nil {
			return
		}
		s.SetWriteDeadline(time.Now().Add(streamSendTimeout))
		if _, err := s.Write(msg); err != nil {
			s.CancelWrite(0)
			return
		}
		s.Close()
	}()
	return nil
}

func (g gossipNet) SendSnapshot(to identity.NodeID, msgs [][]byte) error {
	p := g.n.tr.Peer(to)
	if p == nil {
		return errors.New("not connected")
	}
	ctx, cancel := context.WithTimeout(p.Context(), streamSendTimeout)
	defer cancel()
	s, err := p.OpenUni(ctx, transport.StreamSnapshot)
	if err != nil {
		return err
	}
	s.SetWriteDeadline(time.Now().Add(streamSendTimeout))
	var hdr [4]byte
	for _, m := range msgs {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(m)))
		if _, err := s.Write(hdr[:]); err != nil {
			s.CancelWrite(0)
			return err
		}
		if _, err := s.Write(m); err != nil {
			s.CancelWrite(0)
			return err
		}
	}
	return s.Close()
}

func (g gossipNet) Disconnect(id identity.NodeID, reason string) {
	if p := g.n.tr.Peer(id); p != nil {
		p.Close(transport.CodeViolation, reason)
	}
}

// onDatagram handles one datagram from a peer.
func (n *Node) onDatagram(p *transport.Peer, data []byte) {
	if len(data) == 0 || data[0] != transport.DatagramGossip {
		n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, "unknown datagram kind")
		return
	}
	n.gossip.HandleMessage(p.ID, data[1:], false)
}

// replicaNet adapts the transport to replica.Network: holders are dialled
// at their announced addresses, fetch streams are QUIC streams.
type replicaNet struct{ n *Node }

var _ replica.Network = replicaNet{}

func (r replicaNet) Connected(id identity.NodeID) bool { return r.n.tr.Peer(id) != nil }

// fetchDialTimeout bounds dialling one address of a holder.
const fetchDialTimeout = 5 * time.Second

func (r replicaNet) OpenFetch(ctx context.Context, id identity.NodeID) (replica.Stream, error) {
	p, err := r.peer(ctx, id)
	if err != nil {
		return nil, err
	}
	s, err := p.OpenStream(ctx, transport.StreamFetch)
	if err != nil {
		return nil, err
	}
	return quicStream{s}, nil
}

// OpenSeed opens a seed-request stream to id, a connected peer.
func (r replicaNet) OpenSeed(ctx context.Context, id identity.NodeID) (replica.Stream, error) {
	p := r.n.tr.Peer(id)
	if p == nil {
		return nil, fmt.Errorf("%s is not connected", id.Short())
	}
	s, err := p.OpenStream(ctx, transport.StreamSeed)
	if err != nil {
		return nil, err
	}
	return quicStream{s}, nil
}

// peer returns a connection to id, dialling its announced addresses.
func (r replicaNet) peer(ctx context.Context, id identity.NodeID) (*transport.Peer, error) {
	if p := r.n.tr.Peer(id); p != nil {
		return p, nil
	}
	addrs := r.n.dialAddrs(id)
	if len(addrs) == 0 {
		return nil, errors.New("no known address")
	}
	var last error
	for _, a := range addrs {
		dctx, cancel := context.WithTimeout(ctx, fetchDialTimeout)
		p, err := r.n.tr.Dial(dctx, identity.Addr{ID: id, HostPort: a})
		cancel()
		if err == nil {
			return p, nil
		}
		last = err
	}
	return nil, last
}

// quicStream is a QUIC stream as a replica.Stream: Close sends what was
// written (FIN) and stops reading.
type quicStream struct{ *quic.Stream }

func (s quicStream) Close() error {
	s.CancelRead(0)
	return s.Stream.Close()
}

// onStream handles bidirectional streams: repository fetches.
func (n *Node) onStream(p *transport.Peer, kind byte, s *quic.Stream) {
	switch kind {
	case transport.StreamFetch:
		n.replica.ServeFetch(p.Context(), p.ID, quicStream{s})
		return
	case transport.StreamSeed:
		n.replica.ServeSeedRequest(p.ID, quicStream{s})
		return
	}
	if n.relay.HandleStream(p, kind, s) { // NAT traversal (daemon/relay)
		return
	}
	s.CancelRead(0)
	s.CancelWrite(0)
	n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, fmt.Sprintf("unknown stream kind %d", kind))
}

// streamReadTimeout bounds reading one incoming gossip stream.
const streamReadTimeout = 30 * time.Second

// onUniStream handles an incoming unidirectional stream.
func (n *Node) onUniStream(p *transport.Peer, kind byte, s *quic.ReceiveStream) {
	s.SetReadDeadline(time.Now().Add(streamReadTimeout))
	switch kind {
	case transport.StreamGossip:
		msg, err := io.ReadAll(io.LimitReader(s, wire.MaxEnvelopeSize+1))
		if err != nil {
			s.CancelRead(0)
			return
		}
		if len(msg) > wire.MaxEnvelopeSize {
			s.CancelRead(0)
			n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, "oversize gossip stream")
			return
		}
		n.gossip.HandleMessage(p.ID, msg, false)
	case transport.StreamSnapshot:
		n.readSnapshot(p, s)
	default:
		s.CancelRead(0)
		n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, "unknown stream kind")
	}
}

func (n *Node) readSnapshot(p *transport.Peer, s *quic.ReceiveStream) {
	var hdr [4]byte
	for i := 0; ; i++ {
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			if !errors.Is(err, io.EOF) {
				s.CancelRead(0)
			}
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 || size > wire.MaxEnvelopeSize || i >= n.gossip.MaxSnapshot() {
			s.CancelRead(0)
			n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, "bad snapshot frame")
			return
		}
		msg := make([]byte, size) // bounded by the check above
		if _, err := io.ReadFull(s, msg); err != nil {
			s.CancelRead(0)
			return
		}
		n.gossip.HandleMessage(p.ID, msg, true)
		// A long snapshot gets a fresh read deadline per frame.
		s.SetReadDeadline(time.Now().Add(streamReadTimeout))
	}
}
