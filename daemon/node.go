// Package daemon is the MegaEngine node. It owns the UDP socket, the
// routing database and the goroutines; it wires the services — transport,
// gossip, replica, collab — together, serves them under one supervisor, and
// implements the rpc.Service the control socket serves, mapping the
// services' domain errors to RPC codes.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/megaengine/megaengine/daemon/collab"
	"github.com/megaengine/megaengine/daemon/diskspace"
	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/daemon/logname"
	"github.com/megaengine/megaengine/daemon/relay"
	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/daemon/web"
	"github.com/megaengine/megaengine/protocol/handshake"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// Replication policies (--replicate).
const (
	ReplicateAll  = replica.ReplicateAll  // replicate every repository announced
	ReplicateNone = replica.ReplicateNone // replicate only repositories chosen with repo seed
)

// Config configures a node. DefaultConfig fills every field; New rejects
// values out of range.
type Config struct {
	Root   string // data directory: identity, database, socket, repositories
	Listen string // UDP host:port; default "0.0.0.0:9000"
	Alias  string // human name announced to others; default none
	Relay  bool   // announce kind relay; default false
	// AcceptSeedRequests makes a node that is not a relay accept seed
	// requests (--accept-seed-requests; a relay always does), within
	// SeedBudget; default false.
	AcceptSeedRequests bool
	SeedBudget         replica.SeedBudget // default replica.DefaultSeedBudget
	Network            string             // network name (--network); default handshake.DefaultNetwork
	Bootstrap          []identity.Addr    // nodes to keep connected to; default none
	Announce           []string           // host:port addresses to announce; default derived from Listen
	HTTP               string             // TCP host:port of the read-only web view (empty host: 127.0.0.1); default "" (off)

	Replicate      string        // ReplicateAll (default) or ReplicateNone
	WatchInterval  time.Duration // how often shared working repositories are scanned besides filesystem notifications; default 1 min
	ResyncInterval time.Duration // the slow pass that retries repositories left behind; default 60 s
	MaxPackSize    int64         // pack bytes accepted in one fetch; default and maximum wire.MaxPackSize
	MinFree        int64         // bytes kept free on the root's filesystem; 0: diskspace.DefaultFloor (5 %, at most 1 GiB, at least 32 MiB)
	ReplicateMax   int64         // disk budget of a repository replicated automatically; default 256 MiB
	OriginMax      int64         // disk budget of one creator's automatically replicated repositories; default 1 GiB
	GitBin         string        // the git binary; default "git" on PATH

	GossipRate  float64 // envelopes per second accepted from one peer; default 100
	GossipBurst float64 // bucket size of that rate; default 1000

	TargetPeers int           // dial learned nodes until this many peers; 0 dials only bootstrap nodes; default 8
	IdleTimeout time.Duration // a silent connection is dead after this; default 20 s
	NodeExpiry  time.Duration // forget nodes not heard from for this long; default 24 h

	Logger *slog.Logger // default: discard

	// onAccepted, for tests in this package, is called after the node
	// handled an announcement gossip accepted from another node.
	onAccepted func(env *wire.Envelope, body wire.Body)
}

// DefaultConfig returns the defaults for a node rooted at root.
func DefaultConfig(root string) Config {
	rc := replica.DefaultConfig()
	return Config{
		Root:           root,
		Listen:         "0.0.0.0:9000",
		Network:        handshake.DefaultNetwork,
		Replicate:      rc.Replicate,
		WatchInterval:  rc.WatchInterval,
		ResyncInterval: rc.ResyncInterval,
		MaxPackSize:    rc.MaxPackSize,
		ReplicateMax:   rc.ReplicateMax,
		OriginMax:      rc.OriginMax,
		SeedBudget:     rc.SeedBudget,
		GitBin:         "git",
		GossipRate:     100,
		GossipBurst:    1000,
		TargetPeers:    8,
		IdleTimeout:    20 * time.Second,
		NodeExpiry:     24 * time.Hour,
	}
}

// validate checks what DefaultConfig cannot default.
func (c *Config) validate() error {
	switch {
	case c.Root == "":
		return errors.New("config: no root directory")
	case c.Listen == "":
		return errors.New("config: no listen address")
	case c.Network != "" && handshake.CheckNetwork(c.Network) != nil:
		return fmt.Errorf("config: %w", handshake.CheckNetwork(c.Network))
	case c.TargetPeers < 0:
		return fmt.Errorf("config: target peers %d is negative", c.TargetPeers)
	case c.MinFree < 0:
		return fmt.Errorf("config: free-space floor %d is negative", c.MinFree)
	case c.MaxPackSize < 0 || c.MaxPackSize > wire.MaxPackSize:
		return fmt.Errorf("config: pack budget %d outside 0..%d", c.MaxPackSize, int64(wire.MaxPackSize))
	case c.ReplicateMax < 0 || c.OriginMax < 0:
		return fmt.Errorf("config: negative replication budget (%d, %d)", c.ReplicateMax, c.OriginMax)
	case c.Replicate != ReplicateAll && c.Replicate != ReplicateNone:
		return fmt.Errorf("replication policy %q: want %q or %q", c.Replicate, ReplicateAll, ReplicateNone)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Node is a MegaEngine node: New prepares it, Serve runs it.
type Node struct {
	meshNext atomic.Int64 // where the dialer's next look at followed repositories starts

	cfg     Config
	log     *slog.Logger
	key     *identity.Key
	git     *gitstore.Runner
	store   *store.Store
	disk    *diskspace.Guard
	tr      *transport.Transport
	dialer  *transport.Dialer
	gossip  *gossip.Engine
	replica *replica.Service
	collab  *collab.Service
	web     *web.Server // nil unless Config.HTTP
	relay   *relay.Service
	events  *broker
	rpcLn   net.Listener
	stop    context.CancelFunc // ends Serve (node.stop); set by Serve before the rpc service starts
	started time.Time

	bg sync.WaitGroup // work started by handlers (snapshots); waited for after the services

	followsAll atomic.Bool // gossip was told the node wants every repository

	mu    sync.Mutex
	known map[identity.NodeID]bool // nodes in the routing table, for "discovered" events
	reach reachState               // announced addresses and private ones peers shared (reach.go)
}

// ErrDaemonRunning is returned by New when another daemon uses the root.
var ErrDaemonRunning = rpc.ErrDaemonRunning

// New prepares a node: root (created if missing, refused if others may
// enter it), identity (created if missing), control socket, free-space
// guard and reserve, routing database, replication and the bound UDP
// socket. Nothing runs until Serve.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	git := &gitstore.Runner{Bin: cfg.GitBin}
	if err := git.CheckVersion(context.Background()); err != nil {
		return nil, err
	}
	// Refuse a socket path the kernel cannot bind before making anything
	// in the root.
	sock := rpc.SocketPath(cfg.Root)
	if l, max := len(sock), rpc.MaxSocketPathLen(); l > max {
		return nil, fmt.Errorf("%w: socket path %s is %d bytes, longer than the %d a unix socket allows; use a shorter --root",
			rpc.ErrSocketPath, sock, l, max)
	}
	key, _, err := identity.LoadOrCreateKey(cfg.Root) // also prepares the root
	if err != nil {
		return nil, err
	}
	// The socket first: it tells a second daemon on this root to stop before
	// it touches the reserve or the database.
	ln, err := rpc.Listen(sock)
	if err != nil {
		return nil, err
	}
	disk, err := diskspace.New(diskspace.Config{Dir: cfg.Root, Floor: uint64(cfg.MinFree), Log: cfg.Logger.With("part", "disk")})
	if err != nil {
		ln.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, key: key, git: git, rpcLn: ln, disk: disk, events: newBroker(), known: map[identity.NodeID]bool{}}
	if err := n.open(); err != nil {
		if n.store != nil {
			n.store.Close()
		}
		if n.web != nil {
			n.web.Close()
		}
		ln.Close()
		return nil, err
	}
	return n, nil
}

// open makes the services, database first.
func (n *Node) open() error {
	var err error
	if n.store, err = store.Open(filepath.Join(n.cfg.Root, "db"), n.cfg.Logger.With("part", "badger")); err != nil {
		return err
	}
	// From here on, log lines name nodes and repositories as the routing
	// table and the identity documents know them.
	n.log = logname.Wrap(n.cfg.Logger, n.store)
	log := n.log
	n.store.GuardWrites(n.disk.Check)
	// Evictions happen inside gossip's Put, under its lock: forget later.
	n.store.LimitNodes(store.MaxNodes, func(ids []identity.NodeID) { n.bg.Go(func() { n.forgetNodes(ids) }) })
	if err := n.loadKnown(); err != nil {
		return err
	}
	n.gossip = gossip.New(gossip.Config{
		Key: n.key, Store: n.store, Net: gossipNet{n}, Log: log.With("part", "gossip"),
		OnAccept: n.onAnnouncement, Rate: n.cfg.GossipRate, Burst: n.cfg.GossipBurst,
	})
	n.replica, err = replica.New(replica.Config{
		Key: n.key, Store: n.store, Git: n.git, Net: replicaNet{n}, Root: n.cfg.Root, Log: log.With("part", "replica"),
		Announce:    func(ra *wire.RepoAnnouncement) error { _, err := n.gossip.Publish(ra); return err },
		OnMisbehave: func(p identity.NodeID, why string) { n.gossip.Penalise(p, gossip.PenaltyMalformed, why) },
		Replicate:   n.replicatePolicy(), WatchInterval: n.cfg.WatchInterval, ResyncInterval: n.cfg.ResyncInterval,
		MaxPackSize: n.cfg.MaxPackSize, ReplicateMax: n.cfg.ReplicateMax, OriginMax: n.cfg.OriginMax,
		DiskLow: n.DiskLow, OnFollow: n.follow, DiscoverWait: n.discoverWait(), OnUpdated: n.cobsFetched,
		OnEvent: n.replicaEvent, Forward: n.cfg.Relay, IsRelay: n.isRelay, Relays: n.connectedRelays,
		OnPublished: n.ownPublished, AcceptSeeds: n.cfg.Relay || n.cfg.AcceptSeedRequests, SeedBudget: n.cfg.SeedBudget,
	})
	if err != nil {
		return err
	}
	if err := n.openCollab(); err != nil {
		return err
	}
	if n.cfg.HTTP != "" {
		web, err := web.New(web.Config{Addr: n.cfg.HTTP, Backend: webBackend{n}, Git: n.git, ReplicaDir: n.replica.Dir, Log: log.With("part", "web")})
		if err != nil {
			return err
		}
		n.web = web
	}
	tcfg := transport.DefaultConfig(n.key, n.cfg.Listen)
	tcfg.IdleTimeout = n.cfg.IdleTimeout
	tcfg.Network = n.cfg.Network
	tcfg.Logger = log.With("part", "transport")
	tcfg.Admit = n.gossip.Banned
	tcfg.Rank = n.rank
	tcfg.OnPeer = n.onPeer
	tcfg.OnPeerGone = n.onPeerGone
	tcfg.OnDatagram = n.onDatagram
	tcfg.OnUniStream = n.onUniStream
	tcfg.OnStream = n.onStream
	tcfg.OnObserved = n.onObserved
	n.relayLimits(&tcfg)
	if n.tr, err = transport.New(tcfg); err != nil {
		return err
	}
	n.relay = relay.New(relay.Config{
		Transport: n.tr, Relay: n.cfg.Relay, IsRelay: n.isRelay,
		OnChange: func(relay.Reachability) { n.reannounce() }, Log: log.With("part", "relay"),
	})
	n.dialer = transport.NewDialer(n.tr, transport.DialerConfig{
		Bootstrap: n.cfg.Bootstrap, Target: n.cfg.TargetPeers, Candidates: n.dialCandidates,
		Relays: n.relayCandidates, RelayTarget: n.relayTarget(), IsRelay: n.isRelay,
		Mesh: n.meshCandidates, Log: log.With("part", "dialer"),
	})
	return nil
}

// WebAddr is the web view's bound host:port ("" when it is off).
func (n *Node) WebAddr() string {
	if n.web == nil {
		return ""
	}
	return n.web.Addr()
}

// ID is the node's id.
func (n *Node) ID() identity.NodeID { return n.key.ID() }

// Addr is the node's dialable address on the bound socket.
func (n *Node) Addr() identity.Addr {
	return identity.Addr{ID: n.ID(), HostPort: n.tr.LocalAddr().String()}
}

// DiskState is the free-space guard's last reading of the root's
// filesystem: free bytes, the floor, and whether new data is refused.
func (n *Node) DiskState() diskspace.State { return n.disk.State() }

// DiskLow returns an error wrapping diskspace.ErrLow while the root's
// filesystem is below the floor (nil otherwise). It reads the free space
// at most once per diskspace.CheckInterval, so it may be called before
// every write.
func (n *Node) DiskLow() error { return n.disk.Check() }

// SocketPath is the control socket.
func (n *Node) SocketPath() string { return rpc.SocketPath(n.cfg.Root) }

// service is a long-lived part of the node.
type service struct {
	name  string
	serve func(ctx context.Context) error
}

// Serve runs the node until ctx is done or a service fails, then shuts
// down cleanly: the control socket is removed, connections are closed with
// a reason, background work is waited for, the disk reserve is deleted to
// make room for the database's final flush, the database is closed.
func (n *Node) Serve(ctx context.Context) error {
	n.started = time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.stop = cancel
	srv := rpc.NewServer(n, n.log.With("part", "rpc"))
	services := []service{
		{"transport", n.tr.Serve},
		{"gossip", n.gossip.Serve},
		{"replica", n.replica.Serve},
		{"dialer", n.dialer.Serve},
		{"relay", n.relay.Serve},
		{"routing", n.expireNodes},
		{"disk", n.disk.Serve},
		{"rpc", func(ctx context.Context) error { return srv.Serve(ctx, n.rpcLn) }},
	}
	if n.web != nil {
		services = append(services, service{"web", n.web.Serve})
	}
	if err := n.announceSelf(); err != nil {
		n.log.Error("announcing this node failed", "err", err)
	}
	errs := make(chan error, len(services))
	var wg sync.WaitGroup
	for _, s := range services {
		wg.Go(func() {
			err := s.serve(ctx)
			if err != nil && ctx.Err() == nil {
				n.log.Error("service failed; stopping the node", "service", s.name, "err", err)
				err = fmt.Errorf("%s: %w", s.name, err)
			}
			errs <- err
			cancel() // one service ending ends the node
		})
	}
	n.log.Info("node running", "node", n.ID(), "listen", n.tr.LocalAddr().String(), "socket", n.SocketPath())
	<-ctx.Done()
	n.log.Info("shutting down")
	n.events.closeAll()
	wg.Wait()
	n.bg.Wait() // the transport has stopped: no handler starts more
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(append(all, n.disk.Release(), n.store.Close())...)
}
