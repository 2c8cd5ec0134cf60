// Package daemon is the MegaEngine node: it owns the UDP socket, the
// routing database and the goroutines, and wires the transport, gossip and
// routing tables together behind the rpc.Service the control socket serves.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// Config configures a node. DefaultConfig fills every field.
type Config struct {
	Root      string          // data directory: identity, database, socket, repositories
	Listen    string          // UDP host:port; default "0.0.0.0:9000"
	Alias     string          // human name announced to others
	Relay     bool            // announce kind relay
	Bootstrap []identity.Addr // nodes to keep connected to
	Announce  []string        // host:port addresses to announce; default derived from Listen

	Replicate      string        // ReplicateAll (default) or ReplicateNone
	WatchInterval  time.Duration // how often added working repositories are checked for new refs; default 1s
	ResyncInterval time.Duration // the slow pass that retries repositories left behind; default 60s
	GitBin         string        // the git binary; default "git" on PATH

	GossipRate  float64 // envelopes per second accepted from one peer; default 100
	GossipBurst float64 // bucket size of that rate; default 1000

	TargetPeers int           // dial learned nodes until this many peers; 0 dials only bootstrap nodes; default 8
	IdleTimeout time.Duration // a silent connection is dead after this; default 20s
	NodeExpiry  time.Duration // forget nodes not heard from for this long; default 24h

	Logger *slog.Logger

	// onAccepted, for tests in this package, is called after the node
	// handled an announcement gossip accepted from another node.
	onAccepted func(env *wire.Envelope, body wire.Body)
}

// DefaultConfig returns the defaults for a node rooted at root.
func DefaultConfig(root string) Config {
	return Config{
		Root:           root,
		Listen:         "0.0.0.0:9000",
		TargetPeers:    8,
		IdleTimeout:    20 * time.Second,
		NodeExpiry:     24 * time.Hour,
		Replicate:      ReplicateAll,
		WatchInterval:  time.Second,
		ResyncInterval: time.Minute,
	}
}

// Node is a running MegaEngine node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	key     *identity.Key
	store   *store.Store
	tr      *transport.Transport
	gossip  *gossip.Engine
	events  *broker
	rpcLn   net.Listener
	started time.Time
	git     *gitstore.Runner
	repos   repos
	serving chan struct{}   // fetches being served
	ctx     context.Context // from New until Serve returns: background work stops with it
	stop    context.CancelFunc

	mu      sync.Mutex
	known   map[identity.NodeID]bool     // nodes in the routing table, for "discovered" events
	backoff map[identity.NodeID]*backoff // redial state per node

	wg sync.WaitGroup
}

// backoff is the redial state of one node: 1 s doubling to 1 min.
type backoff struct {
	next  time.Time
	delay time.Duration
}

const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

// ErrDaemonRunning is returned by New when another daemon uses the root.
var ErrDaemonRunning = rpc.ErrDaemonRunning

// New prepares a node: identity (created if missing), control socket,
// routing database and UDP socket. Call Serve to run it.
func New(cfg Config) (*Node, error) {
	d := DefaultConfig(cfg.Root)
	if cfg.Listen == "" {
		cfg.Listen = d.Listen
	}
	if cfg.TargetPeers < 0 {
		cfg.TargetPeers = 0
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = d.IdleTimeout
	}
	if cfg.NodeExpiry <= 0 {
		cfg.NodeExpiry = d.NodeExpiry
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Replicate == "" {
		cfg.Replicate = d.Replicate
	}
	if cfg.Replicate != ReplicateAll && cfg.Replicate != ReplicateNone {
		return nil, fmt.Errorf("replication policy %q: want %q or %q", cfg.Replicate, ReplicateAll, ReplicateNone)
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = d.WatchInterval
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = d.ResyncInterval
	}
	git := &gitstore.Runner{Bin: cfg.GitBin}
	if err := git.CheckVersion(context.Background()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("creating root: %w", err)
	}
	key, _, err := identity.LoadOrCreateKey(cfg.Root)
	if err != nil {
		return nil, err
	}
	// The socket first: it tells a second daemon on this root to stop before
	// it touches the database.
	ln, err := rpc.Listen(rpc.SocketPath(cfg.Root))
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, key: key, rpcLn: ln, git: git,
		serving: make(chan struct{}, maxServing),
		events:  newBroker(),
		known:   map[identity.NodeID]bool{},
		backoff: map[identity.NodeID]*backoff{},
	}
	// The transport accepts peers from New on, and what they announce may
	// start background work before Serve runs: that work needs the context.
	n.ctx, n.stop = context.WithCancel(context.Background())
	n.store, err = store.Open(filepath.Join(cfg.Root, "db"), cfg.Logger.With("part", "badger"))
	if err != nil {
		n.stop()
		ln.Close()
		return nil, err
	}
	// Tables before the transport: peers may talk as soon as it listens.
	if err := errors.Join(n.loadKnown(), n.loadRepos()); err != nil {
		n.stop()
		n.store.Close()
		ln.Close()
		return nil, err
	}
	n.gossip = gossip.New(gossip.Config{
		Key: key, Store: n.store, Net: gossipNet{n}, Log: cfg.Logger.With("part", "gossip"),
		OnAccept: n.onAnnouncement, Rate: cfg.GossipRate, Burst: cfg.GossipBurst,
	})
	tcfg := transport.DefaultConfig(key, cfg.Listen)
	tcfg.IdleTimeout = cfg.IdleTimeout
	tcfg.Logger = cfg.Logger.With("part", "transport")
	tcfg.Admit = n.gossip.Banned
	tcfg.OnPeer = n.onPeer
	tcfg.OnPeerGone = n.onPeerGone
	tcfg.OnDatagram = n.onDatagram
	tcfg.OnUniStream = n.onUniStream
	tcfg.OnStream = n.onStream
	n.tr, err = transport.New(tcfg)
	if err != nil {
		n.stop()
		n.store.Close()
		ln.Close()
		return nil, err
	}
	return n, nil
}

// ID is the node's id.
func (n *Node) ID() identity.NodeID { return n.key.ID() }

// Addr is the node's dialable address on the bound socket.
func (n *Node) Addr() identity.Addr {
	return identity.Addr{ID: n.ID(), HostPort: n.tr.LocalAddr().String()}
}

// SocketPath is the control socket.
func (n *Node) SocketPath() string { return rpc.SocketPath(n.cfg.Root) }

func (n *Node) loadKnown() error {
	return n.store.Each(uint8(wire.TypeNodeAnnouncement), nil, func(a store.Announcement) error {
		n.known[a.Origin] = true
		return nil
	})
}

// Serve runs the node until ctx is done, then shuts down cleanly: the
// control socket is removed, connections are closed with a reason, the
// database is closed.
func (n *Node) Serve(ctx context.Context) error {
	n.started = time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWork := context.AfterFunc(ctx, n.stop)
	defer stopWork()

	srv := rpc.NewServer(n, n.log.With("part", "rpc"))
	rpcDone := make(chan error, 1)
	go func() { rpcDone <- srv.Serve(ctx, n.rpcLn) }()

	if err := n.announceSelf(); err != nil {
		n.log.Error("announcing this node", "err", err)
	}
	n.log.Info("node running", "did", n.ID().String(), "listen", n.tr.LocalAddr().String(), "socket", n.SocketPath())

	n.announceHeld()
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.maintain(ctx)
	}()
	go func() {
		defer n.wg.Done()
		n.watch(ctx)
	}()

	<-ctx.Done()
	n.log.Info("shutting down")
	rpcErr := <-rpcDone
	n.events.closeAll()
	trErr := n.tr.Close()
	n.wg.Wait()
	stErr := n.store.Close()
	return errors.Join(rpcErr, trErr, stErr)
}

// announceSelf publishes this node's NodeAnnouncement.
func (n *Node) announceSelf() error {
	kind := wire.KindNormal
	if n.cfg.Relay {
		kind = wire.KindRelay
	}
	_, err := n.gossip.Publish(&wire.NodeAnnouncement{
		Alias:     n.cfg.Alias,
		Addresses: n.announceAddrs(),
		Kind:      kind,
		Version:   versionForWire(),
		Features:  []string{},
	})
	return err
}

// versionForWire trims the build version to what a NodeAnnouncement allows.
func versionForWire() string {
	v := []byte(rpc.Version)
	out := v[:0]
	for _, c := range v {
		if c > ' ' && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out[:min(len(out), wire.MaxVersionLen)])
}

// announceAddrs are the addresses others should dial: the configured ones,
// else the bound address, with an unspecified host replaced by this
// machine's interface addresses.
func (n *Node) announceAddrs() []string {
	if len(n.cfg.Announce) > 0 {
		return n.cfg.Announce[:min(len(n.cfg.Announce), wire.MaxAddresses)]
	}
	bound := n.tr.LocalAddr()
	port := fmt.Sprint(bound.Port)
	if !bound.IP.IsUnspecified() {
		return []string{net.JoinHostPort(bound.IP.String(), port)}
	}
	var out, loopback []string
	ifaddrs, _ := net.InterfaceAddrs()
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsMulticast() {
			continue
		}
		if bound.IP.To4() != nil && ipn.IP.To4() == nil && bound.IP.Equal(net.IPv4zero) {
			continue // bound to IPv4 only
		}
		hp := net.JoinHostPort(ipn.IP.String(), port)
		if ipn.IP.IsLoopback() {
			loopback = append(loopback, hp)
		} else {
			out = append(out, hp)
		}
	}
	out = append(out, loopback...)
	return out[:min(len(out), wire.MaxAddresses)]
}

// maintain is the node's clock: gossip ticks, dialling and expiry.
func (n *Node) maintain(ctx context.Context) {
	n.dialNeeded(ctx)
	tick := time.NewTicker(gossip.RefreshInterval)
	defer tick.Stop()
	// Bootstrap nodes are retried faster than the gossip tick while down.
	fast := time.NewTicker(minBackoff)
	defer fast.Stop()
	lastExpiry, lastResync := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-fast.C:
			n.dialNeeded(ctx)
		case <-tick.C:
			n.gossip.Tick()
			if time.Since(lastExpiry) > time.Minute {
				lastExpiry = time.Now()
				n.expire()
			}
			if time.Since(lastResync) >= n.cfg.ResyncInterval {
				lastResync = time.Now()
				n.resync()
			}
		}
	}
}

func (n *Node) expire() {
	gone, err := n.store.Expire(time.Now().Add(-n.cfg.NodeExpiry))
	if err != nil {
		n.log.Warn("expiring old nodes", "err", err)
		return
	}
	n.mu.Lock()
	for _, id := range gone {
		delete(n.known, id)
		delete(n.backoff, id)
	}
	n.mu.Unlock()
	if len(gone) > 0 {
		n.log.Info("forgot nodes not heard from", "count", len(gone), "after", n.cfg.NodeExpiry)
	}
}

// dialNeeded dials bootstrap nodes that are not connected, and learned
// nodes while there are fewer than TargetPeers peers, each at most once per
// its backoff.
func (n *Node) dialNeeded(ctx context.Context) {
	now := time.Now()
	var want []identity.Addr
	for _, b := range n.cfg.Bootstrap {
		if n.tr.Peer(b.ID) == nil && n.due(b.ID, now) {
			want = append(want, b)
		}
	}
	if missing := n.cfg.TargetPeers - len(n.tr.Peers()) - len(want); missing > 0 {
		_ = n.store.Each(uint8(wire.TypeNodeAnnouncement), nil, func(a store.Announcement) error {
			if missing == 0 {
				return errStop
			}
			if a.Origin == n.ID() || n.tr.Peer(a.Origin) != nil || n.gossip.Banned(a.Origin) != nil || !n.due(a.Origin, now) {
				return nil
			}
			env, err := wire.Unmarshal(a.Raw)
			if err != nil {
				return nil
			}
			body, err := env.DecodeBody()
			if err != nil {
				return nil
			}
			if addrs := body.(*wire.NodeAnnouncement).Addresses; len(addrs) > 0 {
				want = append(want, identity.Addr{ID: a.Origin, HostPort: addrs[0]})
				missing--
			}
			return nil
		})
	}
	for _, a := range want {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := n.tr.Dial(dctx, a); err != nil {
				n.log.Debug("dial failed", "addr", a.String(), "err", err)
				n.failed(a.ID)
			}
		}()
	}
}

var errStop = errors.New("stop")

// due reports whether id may be dialled now, and if so books the attempt.
func (n *Node) due(id identity.NodeID, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.backoff[id]
	if b == nil {
		b = &backoff{delay: minBackoff}
		n.backoff[id] = b
	}
	if now.Before(b.next) {
		return false
	}
	b.next = now.Add(b.delay) // no second attempt while this one runs
	return true
}

// failed doubles id's redial delay.
func (n *Node) failed(id identity.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if b := n.backoff[id]; b != nil {
		b.next = time.Now().Add(b.delay)
		b.delay = min(2*b.delay, maxBackoff)
	}
}

func (n *Node) onPeer(p *transport.Peer) {
	n.mu.Lock()
	delete(n.backoff, p.ID)
	n.mu.Unlock()
	if err := n.store.Touch(p.ID, time.Now()); err != nil {
		n.log.Warn("recording last seen", "err", err)
	}
	n.log.Info("peer connected", "peer", p.ID.String(), "remote", p.Remote.String(), "direction", p.Direction())
	n.events.publish(rpc.Event{Type: rpc.EventPeerConnected, Time: time.Now(), DID: p.ID.String(), Alias: n.aliasOf(p.ID), Addresses: []string{p.Remote.String()}})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.gossip.PeerConnected(p.ID)
	}()
}

func (n *Node) onPeerGone(p *transport.Peer, err error) {
	n.gossip.PeerGone(p.ID)
	_ = n.store.Touch(p.ID, time.Now())
	reason := "closed"
	if err != nil {
		reason = err.Error()
	}
	n.log.Info("peer disconnected", "peer", p.ID.String(), "reason", reason)
	n.events.publish(rpc.Event{Type: rpc.EventPeerDisconnected, Time: time.Now(), DID: p.ID.String(), Reason: reason})
}

// onStream handles bidirectional streams: repository fetches.
func (n *Node) onStream(p *transport.Peer, kind byte, s *quic.Stream) {
	if kind == transport.StreamFetch {
		n.serveFetch(p, s)
		return
	}
	s.CancelRead(0)
	s.CancelWrite(0)
	n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, fmt.Sprintf("unknown stream kind %d", kind))
}
