package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/protocol/handshake"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Relayed connections (spec/nat.md §5): when two nodes behind NAT cannot
// punch a hole, a relay joins a stream from each into one byte pipe. Each
// node runs a QUIC connection of its own inside it — packets framed with
// a 2-byte length — and the usual Noise handshake on top, bound to that
// inner connection's TLS exporter: the relay carries bytes it can neither
// read nor forge.

// maxRelayedPacket bounds one framed packet (QUIC packets are ≤ 1452 bytes).
const maxRelayedPacket = 1500

// relayedAddr names the far end of a relayed pipe.
type relayedAddr struct{ id identity.NodeID }

func (a relayedAddr) Network() string { return "relayed" }
func (a relayedAddr) String() string  { return "relayed:" + a.id.Short() }

// pipeConn is a net.PacketConn over a byte stream.
type pipeConn struct {
	rw     io.ReadWriteCloser
	remote relayedAddr
	wmu    sync.Mutex

	mu       sync.Mutex
	deadline time.Time
	closed   chan struct{}
	once     sync.Once
}

func newPipeConn(rw io.ReadWriteCloser, remote identity.NodeID) *pipeConn {
	return &pipeConn{rw: rw, remote: relayedAddr{remote}, closed: make(chan struct{})}
}

func (c *pipeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c.rw, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > maxRelayedPacket || n > len(b) {
		return 0, nil, fmt.Errorf("relayed packet of %d bytes", n)
	}
	if _, err := io.ReadFull(c.rw, b[:n]); err != nil {
		return 0, nil, err
	}
	return n, c.remote, nil
}

func (c *pipeConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	if len(b) > maxRelayedPacket {
		return 0, fmt.Errorf("relayed packet of %d bytes", len(b))
	}
	frame := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.rw.Write(append(frame, b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *pipeConn) Close() error {
	c.once.Do(func() { close(c.closed); c.rw.Close() })
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr { return relayedAddr{} }

// Deadlines: quic-go only uses SetReadDeadline to unblock a read at
// shutdown, which Close does here.
func (c *pipeConn) SetDeadline(t time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { return nil }

var _ net.PacketConn = (*pipeConn)(nil)

// DialOver runs an outbound QUIC connection to id inside rw (a relayed
// stream) and the Noise handshake on it; the peer's Path is PathRelayed.
// rw is closed when the connection ends or the dial fails.
func (t *Transport) DialOver(ctx context.Context, rw io.ReadWriteCloser, id identity.NodeID) (*Peer, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		rw.Close()
		return nil, ErrClosed
	}
	t.outbound++
	t.wg.Add(1)
	t.mu.Unlock()
	p, fresh, err := t.dialOver(ctx, rw, id)
	if !fresh {
		t.mu.Lock()
		t.outbound--
		t.mu.Unlock()
		t.wg.Done()
		if err != nil {
			return nil, fmt.Errorf("relayed connection to %s: %w", id, err)
		}
		return p, nil
	}
	go func() {
		defer t.wg.Done()
		t.run(p)
	}()
	return p, nil
}

func (t *Transport) dialOver(ctx context.Context, rw io.ReadWriteCloser, id identity.NodeID) (*Peer, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	pc := newPipeConn(rw, id)
	qt := &quic.Transport{Conn: pc}
	fail := func(err error) (*Peer, bool, error) { pc.Close(); qt.Close(); return nil, false, err }
	conn, err := qt.Dial(ctx, pc.remote, t.tlsC, t.qc)
	if err != nil {
		return fail(t.networkError(err))
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fail(err)
	}
	b, err := binding(conn)
	if err == nil {
		_, err = handshake.InitiateOn(ctx, st, t.cfg.Key, id, b, t.cfg.Network)
	}
	if err != nil {
		conn.CloseWithError(CodeHandshake, "handshake failed")
		return fail(err)
	}
	st.Close()
	p := &Peer{ID: id, conn: conn, Outbound: true, Remote: pc.remote, ConnectedAt: time.Now(), relayed: true}
	p.closer = func() { pc.Close(); qt.Close() }
	return t.registerOrClose(p)
}

// AcceptOver answers the relayed connection a peer opens inside rw (see
// DialOver) and returns the peer once its handshake succeeded.
func (t *Transport) AcceptOver(ctx context.Context, rw io.ReadWriteCloser, from identity.NodeID) (*Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	pc := newPipeConn(rw, from)
	qt := &quic.Transport{Conn: pc}
	fail := func(err error) (*Peer, error) { pc.Close(); qt.Close(); return nil, err }
	ln, err := qt.Listen(t.tlsS, t.qc)
	if err != nil {
		return fail(err)
	}
	conn, err := ln.Accept(ctx)
	if err != nil {
		return fail(err)
	}
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return fail(err)
	}
	b, err := binding(conn)
	var res handshake.Result
	if err == nil {
		res, err = handshake.RespondOn(ctx, st, t.cfg.Key, b, t.cfg.Network, t.cfg.Admit)
	}
	if err == nil && res.Peer != from {
		err = fmt.Errorf("relayed peer proved %s, the relay named %s", res.Peer, from)
	}
	if err != nil {
		conn.CloseWithError(CodeHandshake, "handshake failed")
		return fail(err)
	}
	st.Close()
	p := &Peer{ID: res.Peer, conn: conn, Remote: pc.remote, ConnectedAt: time.Now(), relayed: true}
	p.closer = func() { pc.Close(); qt.Close() }
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		p.closer()
		return nil, ErrClosed
	}
	t.wg.Add(1)
	t.mu.Unlock()
	p, fresh, err := t.registerOrClose(p)
	if !fresh {
		t.wg.Done()
		return p, err
	}
	go func() {
		defer t.wg.Done()
		t.run(p)
	}()
	return p, nil
}

// registerOrClose registers p; a p that lost to another connection has
// its inner transport closed.
func (t *Transport) registerOrClose(p *Peer) (*Peer, bool, error) {
	got, fresh, err := t.register(p)
	if !fresh && p.closer != nil {
		p.closer()
	}
	if err == nil && got == nil {
		err = errors.New("not registered")
	}
	return got, fresh, err
}
