// Package transport connects MegaEngine nodes: one UDP socket per node for
// QUIC, used to listen and to dial; an ephemeral TLS certificate that is not
// trusted for identity; and the Noise IK handshake on the first stream,
// bound to the QUIC connection by the TLS exporter, which proves the
// peer's did:key. A peer exists only after that handshake succeeded, and
// there is at most one connection per pair of nodes.
package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/protocol/handshake"
	"github.com/megaengine/megaengine/protocol/identity"
)

const (
	// ALPN is the TLS application protocol of the default network; a named
	// network's is handshake.ALPN(name) (spec/handshake.md §3.2).
	ALPN = handshake.BaseALPN
	// ExporterLabel is the TLS exporter label of the Noise channel binding.
	ExporterLabel = "EXPORTER-megaengine/1 noise-ik" // as spec/handshake.md
)

// Stream kinds: the first byte of every stream after the handshake stream.
// ONLY APPEND TO THIS LIST; a number keeps its meaning forever.
const (
	StreamGossip   byte = 1 // unidirectional: one gossip envelope, then FIN
	StreamSnapshot byte = 2 // unidirectional: length-prefixed envelopes, then FIN
	StreamFetch    byte = 3 // bidirectional: repository fetch
	// Reachability and NAT traversal (spec/nat.md, protocol/nat).
	StreamObserved  byte = 4 // unidirectional: nat.Observed, then FIN (handled by the transport)
	StreamDialBack  byte = 5 // bidirectional: nat.DialBack → nat.Reply, and a probe packet
	StreamIntroduce byte = 6 // bidirectional: nat.Introduce → nat.Reply (hole punching)
	StreamRelay     byte = 7 // bidirectional: nat.Introduce → nat.Reply, then relayed packets
	StreamSeed      byte = 8 // bidirectional: wire.SeedRequest → wire.SeedReply (spec/node.md §6)
)

// Datagram kinds: the first byte of every datagram. ONLY APPEND.
const DatagramGossip byte = 1

// Application error codes sent when closing a connection. ONLY APPEND.
const (
	CodeShutdown  quic.ApplicationErrorCode = 0 // the node is stopping
	CodeDuplicate quic.ApplicationErrorCode = 1 // another connection between the pair survives
	CodeHandshake quic.ApplicationErrorCode = 2 // the Noise handshake failed
	CodeBusy      quic.ApplicationErrorCode = 3 // connection limit reached
	CodeViolation quic.ApplicationErrorCode = 4 // protocol violation (garbage, forged messages)
	CodeRefused   quic.ApplicationErrorCode = 5 // the peer is banned for misbehaviour
	CodeClosed    quic.ApplicationErrorCode = 6 // closed on request (e.g. a user disconnect)
)

// Errors returned by Dial.
var (
	ErrSelf   = errors.New("cannot connect to self")
	ErrBusy   = errors.New("outbound connection limit reached")
	ErrClosed = errors.New("transport closed")
	// ErrNetwork means the peer is on another network (--network): the
	// TLS handshake found no common application protocol.
	ErrNetwork = errors.New("networks differ")
)

// Config configures a Transport. DefaultConfig gives every field a value.
type Config struct {
	Key    *identity.Key
	Listen string // UDP address to bind, e.g. "0.0.0.0:9000" (port 0 picks one)
	// Network is the network name (handshake.CheckNetwork); default
	// handshake.DefaultNetwork. It goes into the ALPN and the Noise
	// prologue, so nodes of different networks never pair.
	Network string

	MaxInbound       int           // peers that dialled us; default 64
	MaxOutbound      int           // peers we dialled; default 32
	HandshakeTimeout time.Duration // QUIC + Noise of a dial; QUIC of an accepted connection; default 10s
	KeepAlive        time.Duration // QUIC keep-alive period; default 5s
	IdleTimeout      time.Duration // a silent connection is dead after this; default 20s

	// Admission of connections that strangers open (spec/node.md §1.2).
	Limits Limits

	Logger *slog.Logger

	// Admit, if set, may refuse a peer that dials us (e.g. a ban). It is
	// asked as soon as the first Noise message proves the peer's key,
	// before we answer anything.
	Admit func(id identity.NodeID) error
	// Rank, if set, says how useful a peer is: 0 for a stranger, more for a
	// node we rely on (a bootstrap node, a relay, one we replicate from),
	// less for one that misbehaved. Inbound slots beyond MaxInbound −
	// Limits.ReservedInbound go only to peers ranked above 0, and a full
	// node makes room for a newcomer by dropping its lowest-ranked inbound
	// peer if that ranks below the newcomer.
	Rank func(id identity.NodeID) int
	// Handlers. Each is called from the peer's own goroutines; the stream
	// handlers own the stream. OnPeer runs before any stream is dispatched.
	OnPeer      func(p *Peer)
	OnPeerGone  func(p *Peer, err error)
	OnDatagram  func(p *Peer, data []byte)
	OnStream    func(p *Peer, kind byte, s *quic.Stream)
	OnUniStream func(p *Peer, kind byte, s *quic.ReceiveStream)
	// OnObserved, if set, is called when a peer told us the address it
	// sees us at (spec/nat.md §1).
	OnObserved func(p *Peer)
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig(key *identity.Key, listen string) Config {
	return Config{
		Key: key, Listen: listen, Network: handshake.DefaultNetwork,
		MaxInbound: 64, MaxOutbound: 32,
		HandshakeTimeout: 10 * time.Second,
		KeepAlive:        5 * time.Second,
		IdleTimeout:      20 * time.Second,
		Limits:           DefaultLimits(),
	}
}

// Transport owns the node's UDP socket and its peer connections.
type Transport struct {
	cfg  Config
	log  *slog.Logger
	udp  *net.UDPConn
	tr   *quic.Transport
	tlsS *tls.Config
	tlsC *tls.Config
	qc   *quic.Config

	closing chan struct{} // closed when Serve begins to shut down
	wg      sync.WaitGroup

	quicInFlight atomic.Int64 // inbound QUIC handshakes not yet accepted

	mu       sync.Mutex
	peers    map[identity.NodeID]*Peer
	pending  map[*quic.Conn]*pendingConn // inbound, past QUIC, in the Noise handshake
	outbound int
	dialing  map[identity.NodeID]*dialCall
	closed   bool
	probes   map[string]chan struct{} // nonce → closed when its probe arrived (observed.go)
}

type dialCall struct {
	done chan struct{}
	peer *Peer
	err  error
}

// New binds the UDP socket; nothing runs until Serve. Dial works from New
// on, so a node can reach out while it starts.
func New(cfg Config) (*Transport, error) {
	if cfg.Key == nil {
		return nil, errors.New("transport: no key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := DefaultConfig(cfg.Key, cfg.Listen)
	if cfg.Network == "" {
		cfg.Network = d.Network
	}
	if err := handshake.CheckNetwork(cfg.Network); err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if cfg.MaxInbound <= 0 {
		cfg.MaxInbound = d.MaxInbound
	}
	if cfg.MaxOutbound <= 0 {
		cfg.MaxOutbound = d.MaxOutbound
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = d.HandshakeTimeout
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = d.KeepAlive
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = d.IdleTimeout
	}
	cfg.Limits.fill(cfg.MaxInbound)
	laddr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", cfg.Listen, err)
	}
	cert, err := ephemeralCert()
	if err != nil {
		udp.Close()
		return nil, err
	}
	t := &Transport{
		cfg:     cfg,
		log:     cfg.Logger,
		udp:     udp,
		peers:   map[identity.NodeID]*Peer{},
		pending: map[*quic.Conn]*pendingConn{},
		dialing: map[identity.NodeID]*dialCall{},
		tlsS: &tls.Config{
			MinVersion: tls.VersionTLS13, NextProtos: []string{handshake.ALPN(cfg.Network)},
			Certificates: []tls.Certificate{cert},
		},
		tlsC: &tls.Config{
			MinVersion: tls.VersionTLS13, NextProtos: []string{handshake.ALPN(cfg.Network)},
			// Identity comes from the Noise handshake, bound to this TLS
			// session by the exporter; the certificate proves nothing.
			InsecureSkipVerify: true,
		},
		qc: &quic.Config{
			HandshakeIdleTimeout:  cfg.HandshakeTimeout,
			MaxIdleTimeout:        cfg.IdleTimeout,
			KeepAlivePeriod:       cfg.KeepAlive,
			EnableDatagrams:       true,
			MaxIncomingStreams:    64,
			MaxIncomingUniStreams: 256,
		},
	}
	t.tr = &quic.Transport{Conn: udp, VerifySourceAddress: t.needRetry, ConnContext: t.quicAdmit}
	t.closing = make(chan struct{})
	t.probes = map[string]chan struct{}{}
	return t, nil
}

// Serve accepts connections until ctx is done, then closes every
// connection and the socket and waits for the transport's goroutines.
func (t *Transport) Serve(ctx context.Context) error {
	ln, err := t.tr.Listen(t.tlsS, t.qc)
	if err != nil {
		t.shutdown()
		return fmt.Errorf("listening on %s: %w", t.cfg.Listen, err)
	}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		t.acceptLoop(ctx, ln)
	}()
	go func() {
		defer t.wg.Done()
		t.readNonQUIC(ctx)
	}()
	<-ctx.Done()
	return t.shutdown()
}

// ephemeralCert makes a self-signed Ed25519 certificate for this run.
func ephemeralCert() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("making the ephemeral certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// LocalAddr is the bound UDP address.
func (t *Transport) LocalAddr() *net.UDPAddr { return t.udp.LocalAddr().(*net.UDPAddr) }

// ID is this node's id.
func (t *Transport) ID() identity.NodeID { return t.cfg.Key.ID() }

// Network is the name of the network this transport pairs in.
func (t *Transport) Network() string { return t.cfg.Network }

// shutdown closes every connection and the socket, and waits for the
// transport's goroutines to end.
func (t *Transport) shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	peers := make([]*Peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	t.mu.Unlock()
	for _, p := range peers {
		p.Close(CodeShutdown, "node shutting down")
	}
	err := t.tr.Close() // closes the listener too
	t.wg.Wait()
	t.udp.Close()
	return err
}

func (t *Transport) acceptLoop(ctx context.Context, ln *quic.Listener) {
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		quicAccepted(conn)
		t.addPending(conn)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			p, fresh, err := t.respond(ctx, conn)
			t.dropPending(conn)
			if err != nil {
				t.log.Debug("inbound handshake failed", "remote", conn.RemoteAddr(), "err", err)
			}
			if err == nil && fresh {
				t.run(p)
			}
		}()
	}
}

func binding(conn *quic.Conn) ([]byte, error) {
	cs := conn.ConnectionState().TLS
	b, err := cs.ExportKeyingMaterial(ExporterLabel, nil, handshake.BindingSize)
	if err != nil {
		return nil, fmt.Errorf("tls exporter: %w", err)
	}
	return b, nil
}

func (t *Transport) respond(ctx context.Context, conn *quic.Conn) (*Peer, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Limits.NoiseTimeout)
	defer cancel()
	fail := func(err error) (*Peer, bool, error) {
		conn.CloseWithError(CodeHandshake, "handshake failed")
		return nil, false, err
	}
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return fail(fmt.Errorf("waiting for the handshake stream: %w", err))
	}
	b, err := binding(conn)
	if err != nil {
		return fail(err)
	}
	res, err := handshake.RespondOn(ctx, st, t.cfg.Key, b, t.cfg.Network, t.admit)
	switch {
	case errors.Is(err, ErrFull):
		conn.CloseWithError(CodeBusy, "too many peers")
		return nil, false, err
	case errors.Is(err, handshake.ErrRefused):
		conn.CloseWithError(CodeRefused, "refused")
		return nil, false, err
	case err != nil:
		return fail(err)
	}
	st.Close()
	if res.Peer == t.ID() {
		return fail(ErrSelf)
	}
	return t.register(&Peer{ID: res.Peer, conn: conn, Outbound: false, Remote: conn.RemoteAddr(), ConnectedAt: time.Now()})
}

// Dial connects to addr and returns the peer once its handshake succeeded.
// If the node is already a peer, Dial returns that peer; concurrent dials to
// one node share one attempt.
func (t *Transport) Dial(ctx context.Context, addr identity.Addr) (*Peer, error) {
	if addr.ID == t.ID() {
		return nil, ErrSelf
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if p := t.peers[addr.ID]; p != nil {
		t.mu.Unlock()
		return p, nil
	}
	if c := t.dialing[addr.ID]; c != nil {
		t.mu.Unlock()
		select {
		case <-c.done:
			return c.peer, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if t.outbound >= t.cfg.MaxOutbound {
		t.mu.Unlock()
		return nil, ErrBusy
	}
	t.outbound++
	c := &dialCall{done: make(chan struct{})}
	t.dialing[addr.ID] = c
	t.wg.Add(1)
	t.mu.Unlock()

	var fresh bool
	c.peer, fresh, c.err = t.initiate(ctx, addr)
	if c.err != nil {
		c.err = fmt.Errorf("connecting to %s: %w", addr, c.err)
	}
	t.mu.Lock()
	delete(t.dialing, addr.ID)
	if !fresh {
		t.outbound--
		t.wg.Done()
	}
	t.mu.Unlock()
	close(c.done)
	if !fresh {
		return c.peer, c.err
	}
	go func() {
		defer t.wg.Done()
		t.run(c.peer)
	}()
	return c.peer, nil
}

// initiate dials and handshakes; fresh reports whether the returned peer is
// a new connection that the caller must run.
func (t *Transport) initiate(ctx context.Context, addr identity.Addr) (p *Peer, fresh bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	go func() { // shutting down aborts dials in progress
		select {
		case <-t.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	raddr, err := net.ResolveUDPAddr("udp", addr.HostPort)
	if err != nil {
		return nil, false, err
	}
	conn, err := t.tr.Dial(ctx, raddr, t.tlsC, t.qc)
	if err != nil {
		return nil, false, t.networkError(err)
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		conn.CloseWithError(CodeHandshake, "handshake failed")
		return nil, false, err
	}
	b, err := binding(conn)
	if err == nil {
		_, err = handshake.InitiateOn(ctx, st, t.cfg.Key, addr.ID, b, t.cfg.Network)
	}
	if err != nil {
		conn.CloseWithError(CodeHandshake, "handshake failed")
		return nil, false, err
	}
	st.Close()
	return t.register(&Peer{ID: addr.ID, conn: conn, Outbound: true, Remote: conn.RemoteAddr(), ConnectedAt: time.Now()})
}

// initiator returns the node that opened p's connection.
func (t *Transport) initiator(p *Peer) identity.NodeID {
	if p.Outbound {
		return t.ID()
	}
	return p.ID
}

// register makes p the peer for its id. Of two connections between the same
// pair, the one opened by the node with the smaller id survives, so both
// ends of crossing dials keep the same one; of two opened by the same node,
// the newer survives (the older is likely dead).
func (t *Transport) register(p *Peer) (*Peer, bool, error) {
	p.t = t
	p.done = make(chan struct{})
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		p.conn.CloseWithError(CodeShutdown, "node shutting down")
		return nil, false, ErrClosed
	}
	old := t.peers[p.ID]
	if old != nil {
		oldInit, newInit := t.initiator(old), t.initiator(p)
		if oldInit != newInit && lessID(oldInit, newInit) {
			t.mu.Unlock()
			p.conn.CloseWithError(CodeDuplicate, "duplicate connection")
			return old, false, nil
		}
	}
	t.peers[p.ID] = p
	t.mu.Unlock()
	if old != nil {
		old.conn.CloseWithError(CodeDuplicate, "duplicate connection")
	}
	return p, true, nil
}

func lessID(a, b identity.NodeID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// run serves a registered peer until its connection ends.
func (t *Transport) run(p *Peer) {
	defer func() {
		// The accept loops can end a moment before the connection's
		// context records why it closed: wait for the reason.
		<-p.conn.Context().Done()
		if p.closer != nil {
			p.closer()
		}
		t.mu.Lock()
		if p.Outbound {
			t.outbound--
		}
		current := t.peers[p.ID] == p
		if current {
			delete(t.peers, p.ID)
		}
		t.mu.Unlock()
		close(p.done)
		if current && t.cfg.OnPeerGone != nil {
			t.cfg.OnPeerGone(p, context.Cause(p.conn.Context()))
		}
	}()
	t.mu.Lock()
	replaced := t.peers[p.ID] != p
	t.mu.Unlock()
	if replaced { // lost the duplicate rule to a connection that already runs
		return
	}
	if t.cfg.OnPeer != nil {
		t.cfg.OnPeer(p)
	}
	var wg sync.WaitGroup
	wg.Go(func() { t.sendObserved(p) })
	wg.Go(func() { t.datagrams(p) })
	wg.Go(func() { t.streams(p, &wg) })
	wg.Go(func() { t.uniStreams(p, &wg) })
	wg.Wait()
}

func (t *Transport) datagrams(p *Peer) {
	for {
		b, err := p.conn.ReceiveDatagram(p.conn.Context())
		if err != nil {
			return
		}
		if t.cfg.OnDatagram != nil {
			t.cfg.OnDatagram(p, b)
		}
	}
}

// streamKindTimeout bounds the wait for a stream's kind byte.
const streamKindTimeout = 10 * time.Second

// kindReader is what readKind needs of both stream types.
type kindReader interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// readKind reads a stream's first byte within streamKindTimeout.
func readKind(s kindReader) (byte, bool) {
	s.SetReadDeadline(time.Now().Add(streamKindTimeout))
	var kind [1]byte
	if _, err := io.ReadFull(s, kind[:]); err != nil {
		return 0, false
	}
	s.SetReadDeadline(time.Time{})
	return kind[0], true
}

// streams dispatches the peer's bidirectional streams; handlers run in
// goroutines counted by handlers, which run waits for.
func (t *Transport) streams(p *Peer, handlers *sync.WaitGroup) {
	for {
		s, err := p.conn.AcceptStream(p.conn.Context())
		if err != nil {
			return
		}
		handlers.Go(func() {
			kind, ok := readKind(s)
			if !ok || t.cfg.OnStream == nil {
				s.CancelRead(0)
				s.CancelWrite(0)
				return
			}
			t.cfg.OnStream(p, kind, s)
		})
	}
}

// uniStreams dispatches the peer's unidirectional streams, as streams does.
func (t *Transport) uniStreams(p *Peer, handlers *sync.WaitGroup) {
	for {
		s, err := p.conn.AcceptUniStream(p.conn.Context())
		if err != nil {
			return
		}
		handlers.Go(func() {
			kind, ok := readKind(s)
			if ok && kind == StreamObserved {
				t.readObserved(p, s)
				return
			}
			if !ok || t.cfg.OnUniStream == nil {
				s.CancelRead(0)
				return
			}
			t.cfg.OnUniStream(p, kind, s)
		})
	}
}

// Peers returns the connected peers.
func (t *Transport) Peers() []*Peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Peer, 0, len(t.peers))
	for _, p := range t.peers {
		out = append(out, p)
	}
	return out
}

// Peer returns the connected peer with id, or nil.
func (t *Transport) Peer(id identity.NodeID) *Peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peers[id]
}

// Peer is an authenticated connection to another node.
type Peer struct {
	ID          identity.NodeID
	Outbound    bool // we dialled it
	Remote      net.Addr
	ConnectedAt time.Time

	t    *Transport
	conn *quic.Conn
	done chan struct{}
	nat  peerNAT // what the peer told us about addresses (observed.go)

	relayed bool   // the connection runs inside a relayed stream (path.go)
	closer  func() // closes what carries a relayed connection (relayed.go)
}

// Done is closed when the peer's connection has ended and its handlers returned.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Context is cancelled when the connection closes.
func (p *Peer) Context() context.Context { return p.conn.Context() }

// SendDatagram sends kind ‖ data as one unreliable datagram. It returns a
// *quic.DatagramTooLargeError if the datagram does not fit the path.
func (p *Peer) SendDatagram(kind byte, data []byte) error {
	buf := make([]byte, 0, 1+len(data))
	buf = append(append(buf, kind), data...)
	return p.conn.SendDatagram(buf)
}

// OpenUni opens a unidirectional stream and writes its kind byte.
func (p *Peer) OpenUni(ctx context.Context, kind byte) (*quic.SendStream, error) {
	s, err := p.conn.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write([]byte{kind}); err != nil {
		s.CancelWrite(0)
		return nil, err
	}
	return s, nil
}

// OpenStream opens a bidirectional stream and writes its kind byte.
func (p *Peer) OpenStream(ctx context.Context, kind byte) (*quic.Stream, error) {
	s, err := p.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write([]byte{kind}); err != nil {
		s.CancelWrite(0)
		return nil, err
	}
	return s, nil
}

// BytesTransferred is the QUIC payload sent plus received on the peer's
// connection so far (UDP payloads including retransmissions).
func (p *Peer) BytesTransferred() uint64 {
	st := p.conn.ConnectionStats()
	return st.BytesSent + st.BytesReceived
}

// Close closes the connection with an application error code.
func (p *Peer) Close(code quic.ApplicationErrorCode, reason string) {
	p.conn.CloseWithError(code, reason)
}

// Direction is "outbound" if we dialled the peer, else "inbound".
func (p *Peer) Direction() string {
	if p.Outbound {
		return "outbound"
	}
	return "inbound"
}
