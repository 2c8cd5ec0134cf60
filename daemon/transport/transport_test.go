package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
)

type recorder struct {
	mu        sync.Mutex
	connected []identity.NodeID
	gone      []identity.NodeID
	datagrams [][]byte
	uni       [][]byte
}

func (r *recorder) snapshot() (c, g int, d, u [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.connected), len(r.gone), append([][]byte(nil), r.datagrams...), append([][]byte(nil), r.uni...)
}

func newNode(t testing.TB, tweak func(*Config)) (*Transport, *recorder) {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	cfg := DefaultConfig(k, "127.0.0.1:0")
	cfg.OnPeer = func(p *Peer) { r.mu.Lock(); r.connected = append(r.connected, p.ID); r.mu.Unlock() }
	cfg.OnPeerGone = func(p *Peer, _ error) { r.mu.Lock(); r.gone = append(r.gone, p.ID); r.mu.Unlock() }
	cfg.OnDatagram = func(p *Peer, b []byte) { r.mu.Lock(); r.datagrams = append(r.datagrams, b); r.mu.Unlock() }
	cfg.OnUniStream = func(p *Peer, kind byte, s *quic.ReceiveStream) {
		b, _ := io.ReadAll(io.LimitReader(s, 1<<20))
		r.mu.Lock()
		r.uni = append(r.uni, append([]byte{kind}, b...))
		r.mu.Unlock()
	}
	if tweak != nil {
		tweak(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, tr)
	return tr, r
}

// running maps a served transport to the function that stops it.
var running sync.Map

// serve runs tr until the test ends or closeNode stops it.
func serve(t testing.TB, tr *Transport) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Serve(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("transport Serve: %v", err)
		}
	})
	running.Store(tr, stop)
	t.Cleanup(stop)
}

// closeNode stops a transport started by serve and waits for it.
func closeNode(tr *Transport) {
	if stop, ok := running.Load(tr); ok {
		stop.(func())()
	}
}

func addrOf(tr *Transport) identity.Addr {
	return identity.Addr{ID: tr.ID(), HostPort: tr.LocalAddr().String()}
}

func TestDialAuthenticatesBothSides(t *testing.T) {
	a, ra := newNode(t, nil)
	b, rb := newNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := a.Dial(ctx, addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != b.ID() || !p.Outbound {
		t.Fatalf("dialled peer %s outbound=%v, want %s", p.ID, p.Outbound, b.ID())
	}
	testutil.WaitFor(t, "b to see a", 5*time.Second, func() bool { q := b.Peer(a.ID()); return q != nil && !q.Outbound })

	// A second dial returns the same peer.
	p2, err := a.Dial(ctx, addrOf(b))
	if err != nil || p2 != p {
		t.Fatalf("redial: %v, same=%v", err, p2 == p)
	}

	// Datagrams and uni streams reach the other side's handlers.
	if err := p.SendDatagram(DatagramGossip, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	s, err := p.OpenUni(ctx, StreamGossip)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("stream"))
	s.Close()
	testutil.WaitFor(t, "datagram and stream", 5*time.Second, func() bool {
		_, _, d, u := rb.snapshot()
		return len(d) == 1 && string(d[0]) == "\x01hello" && len(u) == 1 && string(u[0]) == "\x01stream"
	})

	// Closing a closes the connection; b notices at once (CONNECTION_CLOSE).
	closeNode(a)
	testutil.WaitFor(t, "b to drop a", 5*time.Second, func() bool { return b.Peer(a.ID()) == nil })
	if c, _, _, _ := ra.snapshot(); c != 1 {
		t.Fatalf("a's OnPeer ran %d times, want 1", c)
	}
	testutil.WaitFor(t, "b's gone callback", 5*time.Second, func() bool { _, g, _, _ := rb.snapshot(); return g == 1 })
}

func TestDialWrongIdentityFails(t *testing.T) {
	a, _ := newNode(t, nil)
	b, _ := newNode(t, nil)
	other, _ := identity.GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// b's address, another node's did: the Noise handshake cannot succeed.
	_, err := a.Dial(ctx, identity.Addr{ID: other.ID(), HostPort: b.LocalAddr().String()})
	if err == nil {
		t.Fatal("dial with the wrong did succeeded")
	}
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatalf("peers after failed handshake: a %d, b %d", len(a.Peers()), len(b.Peers()))
	}
}

func TestCrossingDialsKeepOneConnection(t *testing.T) {
	for i := 0; i < 5; i++ {
		a, _ := newNode(t, nil)
		b, _ := newNode(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a.Dial(ctx, addrOf(b)) }()
		go func() { defer wg.Done(); b.Dial(ctx, addrOf(a)) }()
		wg.Wait()
		cancel()
		// Both ends must agree on the same surviving connection: the one
		// opened by the smaller id.
		wantOutboundOnA := lessID(a.ID(), b.ID())
		testutil.WaitFor(t, "one agreed connection", 5*time.Second, func() bool {
			pa, pb := a.Peer(b.ID()), b.Peer(a.ID())
			return pa != nil && pb != nil && pa.Outbound == wantOutboundOnA && pb.Outbound == !wantOutboundOnA &&
				pa.conn.Context().Err() == nil && pb.conn.Context().Err() == nil
		})
		closeNode(a)
		closeNode(b)
	}
}

// A man in the middle terminates A's QUIC connection and opens its own to B,
// relaying the Noise bytes unchanged. The channel binding differs between
// the two QUIC connections, so B rejects the handshake.
func TestRelayedHandshakeFails(t *testing.T) {
	a, _ := newNode(t, func(c *Config) { c.HandshakeTimeout = 2 * time.Second })
	b, _ := newNode(t, nil)
	cert, err := ephemeralCert()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{ALPN}}, &quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	relayed := make(chan error, 1)
	go func() {
		in, err := ln.Accept(ctx)
		if err != nil {
			relayed <- err
			return
		}
		defer in.CloseWithError(0, "")
		inStream, err := in.AcceptStream(ctx)
		if err != nil {
			relayed <- err
			return
		}
		out, err := quic.DialAddr(ctx, b.LocalAddr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}}, &quic.Config{EnableDatagrams: true})
		if err != nil {
			relayed <- err
			return
		}
		defer out.CloseWithError(0, "")
		outStream, err := out.OpenStreamSync(ctx)
		if err != nil {
			relayed <- err
			return
		}
		go io.Copy(inStream, outStream)
		_, err = io.Copy(outStream, inStream)
		relayed <- err
	}()
	_, err = a.Dial(ctx, identity.Addr{ID: b.ID(), HostPort: ln.Addr().String()})
	if err == nil {
		t.Fatal("handshake through a relaying man in the middle succeeded")
	}
	if len(b.Peers()) != 0 {
		t.Fatal("b accepted the relayed handshake")
	}
}

func TestInboundLimit(t *testing.T) {
	a, _ := newNode(t, func(c *Config) { c.MaxInbound = 1 })
	b, _ := newNode(t, nil)
	c, _ := newNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Dial(ctx, addrOf(a)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a to register b", 5*time.Second, func() bool { return a.Peer(b.ID()) != nil })
	if _, err := c.Dial(ctx, addrOf(a)); err == nil {
		t.Fatal("second inbound connection accepted beyond MaxInbound=1")
	}
}

func TestAdmitRefuses(t *testing.T) {
	banned := errors.New("banned")
	a, _ := newNode(t, func(c *Config) { c.Admit = func(identity.NodeID) error { return banned } })
	b, _ := newNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Refused after message 1: the initiator never gets message 2, so the
	// handshake cannot complete on its side either.
	_, err := b.Dial(ctx, addrOf(a))
	var appErr *quic.ApplicationError
	if !errors.As(err, &appErr) || appErr.ErrorCode != CodeRefused {
		t.Fatalf("dialling a node that refuses us: %v, want the connection closed with code %d before the handshake completed", err, CodeRefused)
	}
	if a.Peer(b.ID()) != nil || b.Peer(a.ID()) != nil {
		t.Fatal("refused peer registered")
	}
}

func TestDialSelf(t *testing.T) {
	a, _ := newNode(t, nil)
	if _, err := a.Dial(context.Background(), addrOf(a)); !errors.Is(err, ErrSelf) {
		t.Fatalf("dial self: %v", err)
	}
}
