// Package replica is replication as a service: the fetch exchange (client
// and server, over any Stream), sync scheduling (one sync per repository,
// holders ranked, failed holders backed off), publishing this node's signed
// refs, and watching the working repositories shared from this node. It
// knows the network only through the small Network interface, so the whole
// exchange runs over net.Pipe in tests and over relayed streams later. It
// returns domain errors (ErrNotFound, ErrInvalid, …); the daemon maps them
// to RPC codes.
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Replication policies (Config.Replicate, med --replicate).
const (
	ReplicateAll  = "all"  // replicate every repository announced (the seed's behaviour)
	ReplicateNone = "none" // replicate only repositories chosen with repo seed
)

// Stream is what the fetch exchange needs of a connection: QUIC streams,
// net.Pipe and relayed streams all fit.
type Stream interface {
	io.Reader
	io.Writer
	// Close ends the exchange: what was written is sent, the rest of the
	// input is discarded. It also unblocks a Read or Write in progress.
	Close() error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Network is what replication needs of the transport.
type Network interface {
	// Connected reports whether id is a peer now.
	Connected(id identity.NodeID) bool
	// OpenFetch opens a fetch stream to id, dialling it first if needed.
	OpenFetch(ctx context.Context, id identity.NodeID) (Stream, error)
	// OpenSeed opens a seed-request stream to id, a connected peer.
	OpenSeed(ctx context.Context, id identity.NodeID) (Stream, error)
}

// Config configures a Service. Zero durations and sizes take the defaults
// of DefaultConfig.
type Config struct {
	Key   *identity.Key
	Store *store.Store
	Git   *gitstore.Runner
	Net   Network
	Root  string // the node's root: replicas live in Root/repos
	Log   *slog.Logger

	// Announce publishes a repository announcement of this node (gossip).
	Announce func(ra *wire.RepoAnnouncement) error
	// OnMisbehave is told of a peer that broke the fetch protocol.
	OnMisbehave func(peer identity.NodeID, reason string)
	// IsRelay, if set, says whether a node announced itself as a relay
	// (which stores and forwards: see Forward).
	IsRelay func(id identity.NodeID) bool
	// Relays, if set, lists the connected relays: a sync asks them too,
	// as they replicate every repository they hear of.
	Relays func() []identity.NodeID
	// OnEvent, if set, is told of syncs and publications as they happen.
	OnEvent func(Event)
	// DiscoverWait is how long a sync of a repository nothing is known of
	// waits for a first holder to be announced after subscribing to it; 0
	// (the node hears of every repository anyway) does not wait.
	DiscoverWait time.Duration
	// HolderGrace is how long that wait goes on for a connected holder once
	// it knows of one it would have to dial; default 250 ms.
	HolderGrace time.Duration
	// OnFollow, if set, is told the repositories the node chose to
	// replicate (Followed) at start and whenever that set changes; gossip
	// subscribes to them.
	OnFollow func(repos []identity.RepoID)
	// OnUpdated, if set, is told of a repository whose replica a fetch
	// changed (collaborative objects refold).
	OnUpdated func(repo identity.RepoID)
	// Forward makes the node announce a repository again after every
	// fetch that brought other nodes' newer refs (a relay's store and
	// forward, spec/nat.md §3): nodes still behind then fetch from it.
	Forward bool
	// OnPublished, if set, is told of a repository whose own namespace
	// this node has just signed anew (a push, the watcher, a change); it
	// runs on the publishing goroutine and must not block on publishing.
	OnPublished func(repo identity.RepoID)
	// DiskLow, if set, returns an error while the disk is below the node's
	// free-space floor: then no object from the network is accepted.
	DiskLow func() error

	Replicate      string        // ReplicateAll (default) or ReplicateNone
	WatchInterval  time.Duration // how often shared working repositories are scanned besides filesystem notifications; default 1 min
	ResyncInterval time.Duration // the slow pass that retries repositories left behind; default 60 s
	MaxPackSize    int64         // pack bytes accepted in one fetch; default wire.MaxPackSize
	MaxServing     int           // fetches served at once; default 8
	ReplicateMax   int64         // disk budget of a repository replicated automatically; default DefaultReplicateMax
	OriginMax      int64         // disk budget of one creator's automatically replicated repositories; default DefaultOriginMax
	RepackPacks    int           // packs in a replica that make the background repack roll them up; default 4, at least 2
	BitmapMinPack  int64         // bytes of a replica's largest pack from which it gets a reachability bitmap; default 1 MiB

	// AcceptSeeds makes the node accept seed requests (a relay, or med
	// --accept-seed-requests) within SeedBudget.
	AcceptSeeds bool
	SeedBudget  SeedBudget // zero fields: DefaultSeedBudget's

	// OnRepacked, if set, is told of each replica the background repack
	// rolled up (tests, the benchmark).
	OnRepacked func(repo identity.RepoID)
}

// DefaultConfig returns the defaults of every tunable field.
func DefaultConfig() Config {
	return Config{
		Replicate:      ReplicateAll,
		WatchInterval:  time.Minute,
		ResyncInterval: time.Minute,
		MaxPackSize:    wire.MaxPackSize,
		MaxServing:     8,
		ReplicateMax:   DefaultReplicateMax,
		OriginMax:      DefaultOriginMax,
		RepackPacks:    4,
		BitmapMinPack:  1 << 20,
		SeedBudget:     DefaultSeedBudget(),
	}
}

// Timeouts of the fetch exchange.
const (
	fetchTimeout     = 30 * time.Minute // one whole fetch from one holder
	fetchIdle        = 60 * time.Second // the wait for any frame
	holderRetry      = 30 * time.Second // a holder that failed is skipped this long unless connected
	scheduleCapacity = 256              // sync requests queued before Serve takes them
)

// Service replicates repositories. Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	id      identity.NodeID
	git     *gitstore.Runner
	store   *store.Store
	serving chan struct{} // fetches being served
	queue   chan syncRequest

	watchChanged chan struct{} // the shared working repositories changed (watcher)
	locks        replicaLocks  // per replica: object readers and the repacker
	repackQ      chan identity.RepoID

	publish  sync.Mutex // serialises publishing: git takes locks on the replica
	followMu sync.Mutex // serialises OnFollow calls
	seedMu   sync.Mutex // serialises deciding seed requests (seedreq.go)

	mu       sync.Mutex
	states   map[identity.RepoID]*repoState
	syncing  map[identity.RepoID]*syncCall
	workRefs map[identity.RepoID][]gitstore.Ref // last refs seen in each watched working repository
	failed   map[identity.NodeID]time.Time      // holders that failed a fetch: skipped until then unless connected
	served   map[identity.NodeID]time.Time      // holders that served a fetch, and when
	heard    map[identity.RepoID]chan struct{}  // closed when the repository is next announced
	watching map[identity.RepoID]bool           // followed without replicating (Follow)
	reached  map[identity.NodeID]time.Time      // peers this node was connected to, and when

	lastFollow []identity.RepoID // what OnFollow was last told
	followSent bool
	backoff    map[identity.NodeID]backoff        // holders whose fetch crossed a budget: skipped until then
	lastSeq    map[identity.RepoID]uint64         // our newest signed refs seq per repository
	checked    map[nsKey]signedCheck              // namespaces found equal to their signed refs
	docs       map[identity.RepoID]*wire.DocChain // identity chains read from the store
	inflight   map[identity.NodeID]*atomic.Int64  // per origin, pack bytes of automatic fetches being received
	bares      map[identity.RepoID]openedBare     // replicas checked in this run (bares.go)
	heads      map[string]string                  // replica dir, NUL, namespace → the branch its HEAD names (setHEAD)

	flights    map[identity.RepoID]*flight // first fetches others may follow (flight.go)
	flightWake chan struct{}               // closed and replaced when a flight begins
	waiting    int                         // fetches waiting for flights
	waitingBy  map[identity.NodeID]int     // of them, per peer
}

type syncRequest struct {
	repo identity.RepoID
	from identity.NodeID
}

// New makes the service and loads the repository states from the store.
func New(cfg Config) (*Service, error) {
	d := DefaultConfig()
	if cfg.Key == nil || cfg.Store == nil || cfg.Git == nil || cfg.Net == nil || cfg.Announce == nil {
		return nil, errors.New("replica: Key, Store, Git, Net and Announce are required")
	}
	if cfg.Replicate == "" {
		cfg.Replicate = d.Replicate
	}
	if cfg.Replicate != ReplicateAll && cfg.Replicate != ReplicateNone {
		return nil, fmt.Errorf("replication policy %q: want %q or %q", cfg.Replicate, ReplicateAll, ReplicateNone)
	}
	if cfg.HolderGrace <= 0 {
		cfg.HolderGrace = 250 * time.Millisecond
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = d.WatchInterval
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = d.ResyncInterval
	}
	if cfg.MaxPackSize <= 0 || cfg.MaxPackSize > wire.MaxPackSize {
		cfg.MaxPackSize = d.MaxPackSize
	}
	if cfg.MaxServing <= 0 {
		cfg.MaxServing = d.MaxServing
	}
	if cfg.ReplicateMax <= 0 {
		cfg.ReplicateMax = d.ReplicateMax
	}
	if cfg.RepackPacks < 2 {
		cfg.RepackPacks = d.RepackPacks
	}
	if cfg.BitmapMinPack <= 0 {
		cfg.BitmapMinPack = d.BitmapMinPack
	}
	cfg.SeedBudget = cfg.SeedBudget.withDefaults()
	if cfg.OriginMax <= 0 {
		cfg.OriginMax = d.OriginMax
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.IsRelay == nil {
		cfg.IsRelay = func(identity.NodeID) bool { return false }
	}
	if cfg.Relays == nil {
		cfg.Relays = func() []identity.NodeID { return nil }
	}
	if cfg.DiskLow == nil {
		cfg.DiskLow = func() error { return nil }
	}
	if cfg.OnUpdated == nil {
		cfg.OnUpdated = func(identity.RepoID) {}
	}
	if cfg.OnPublished == nil {
		cfg.OnPublished = func(identity.RepoID) {}
	}
	if cfg.OnMisbehave == nil {
		cfg.OnMisbehave = func(identity.NodeID, string) {}
	}
	s := &Service{
		cfg: cfg, log: cfg.Log, id: cfg.Key.ID(), git: cfg.Git, store: cfg.Store,
		serving:      make(chan struct{}, cfg.MaxServing),
		queue:        make(chan syncRequest, scheduleCapacity),
		watchChanged: make(chan struct{}, 1),
		repackQ:      make(chan identity.RepoID, scheduleCapacity),
		states:       map[identity.RepoID]*repoState{},
		syncing:      map[identity.RepoID]*syncCall{},
		workRefs:     map[identity.RepoID][]gitstore.Ref{},
		failed:       map[identity.NodeID]time.Time{},
		served:       map[identity.NodeID]time.Time{},
		heard:        map[identity.RepoID]chan struct{}{},
		watching:     map[identity.RepoID]bool{},
		reached:      map[identity.NodeID]time.Time{},
		backoff:      map[identity.NodeID]backoff{},
		lastSeq:      map[identity.RepoID]uint64{},
		checked:      map[nsKey]signedCheck{},
		docs:         map[identity.RepoID]*wire.DocChain{},
		inflight:     map[identity.NodeID]*atomic.Int64{},
		bares:        map[identity.RepoID]openedBare{},
		heads:        map[string]string{},
		flights:      map[identity.RepoID]*flight{},
		flightWake:   make(chan struct{}),
		waitingBy:    map[identity.NodeID]int{},
	}
	if err := s.loadStates(); err != nil {
		return nil, err
	}
	if n := gitstore.KillStrays(filepath.Join(cfg.Root, "repos")); n > 0 {
		s.log.Info("stopped git processes a killed daemon left working in its replicas", "processes", n)
	}
	s.sweep()
	return s, nil
}

// Serve runs background replication until ctx is done: at its start,
// publishing pushes left unsigned, announcing what the node holds and
// resuming interrupted syncs; then queued syncs, the periodic resync pass and the watcher of
// shared working repositories. It waits for the syncs it started.
func (s *Service) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	s.followChanged()
	s.resume(ctx)
	wg.Go(func() { s.watch(ctx) })
	wg.Go(func() { s.repacker(ctx) })
	resync := time.NewTicker(s.cfg.ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-s.queue:
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
				defer cancel()
				if _, err := s.Sync(ctx, r.repo, r.from, nil); err != nil && ctx.Err() == nil {
					s.log.Info("syncing a repository failed; the periodic pass retries", "repo", r.repo, "err", err)
				}
			})
		case <-resync.C:
			s.resync()
		}
	}
}

// Namespace is the namespace a node's refs live under in a bare replica:
// its did:key without the "did:key:" prefix (base58btc, safe as a path part).
func Namespace(id identity.NodeID) string { return strings.TrimPrefix(id.String(), "did:key:") }

// Dir is the bare replica of repo; the name comes from the parsed id.
func (s *Service) Dir(repo identity.RepoID) string {
	return filepath.Join(s.cfg.Root, "repos", strings.TrimPrefix(repo.String(), "did:repo:")+".git")
}
