package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// params are the simulation's inputs (the command-line flags).
type params struct {
	Nodes     int
	Degree    int     // random links per node (each node dials Degree/2)
	Mesh      int     // links to other followers of each followed repository a node keeps, counting those others made
	Fail      float64 // fraction of nodes that crash before the measured announcements
	Loss      float64 // datagram loss per send
	Repos     int
	Subscribe int // repositories each node follows (and holds)
	Seed      uint64
	Latency   time.Duration // mean one-way link latency
	Steady    time.Duration // length of the steady-state window
	Churn     float64       // fraction of nodes that leave and come back per hour
	Downtime  time.Duration // how long a churned node stays away
	Announce  int           // measured repository announcements
	Workers   int           // goroutines that run nodes (0: GOMAXPROCS); the output does not depend on it
}

// Phases of a run.
const (
	// detectAfter is how long a live peer keeps a crashed peer's link
	// before the transport notices (QUIC idle timeout).
	detectAfter = 30 * time.Second
	// measureFor is how long the last measured announcement is followed.
	measureFor = 60 * time.Second
	// announceEvery spaces the measured announcements.
	announceEvery = 500 * time.Millisecond
	// refreshPeriod is the engine's default RefreshAfter: in steady state
	// every node re-announces everything once per period.
	refreshPeriod = time.Hour
)

// scenario is one run: the network, who follows what, and the counters.
type scenario struct {
	p       params
	net     *simNet
	rng     *rand.Rand
	keys    []*identity.Key
	repos   []identity.RepoID
	follows [][]int32        // node → repositories it follows
	subs    [][]int32        // repository → followers
	subOf   []map[int32]bool // node → set of followed repositories
	failed  map[int32]bool   // crashed for the measurement
	m       *metrics
}

func newScenario(p params) (*scenario, error) {
	if p.Nodes < 2 || p.Degree < 1 || p.Repos < 1 || p.Subscribe < 0 || p.Subscribe > p.Repos {
		return nil, fmt.Errorf("need nodes ≥ 2, degree ≥ 1, repos ≥ 1 and 0 ≤ subscribe ≤ repos")
	}
	if p.Fail < 0 || p.Fail >= 1 || p.Loss < 0 || p.Loss >= 1 {
		return nil, fmt.Errorf("fail and loss must be in [0, 1)")
	}
	s := &scenario{
		p:      p,
		net:    newSimNet(p.Seed, p.Loss, p.Latency, p.Workers),
		rng:    rand.New(rand.NewPCG(p.Seed, 0x7363656e6172696f)),
		failed: map[int32]bool{},
	}
	s.m = newMetrics(s)
	if err := s.makeNodes(); err != nil {
		return nil, err
	}
	s.makeRepos()
	return s, nil
}

// makeNodes derives every key from the seed (ed25519 from a seeded
// stream) and starts one engine per node.
func (s *scenario) makeNodes() error {
	keyRand := rand.NewChaCha8(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("megasim keys"), s.p.Seed)))
	s.keys = make([]*identity.Key, s.p.Nodes)
	s.net.nodes = make([]*simNode, 0, s.p.Nodes)
	for i := range s.keys {
		seed := make([]byte, 32)
		_, _ = keyRand.Read(seed)
		k, err := identity.KeyFromSeed(seed)
		if err != nil {
			return err
		}
		s.keys[i] = k
		n := &simNode{id: k.ID(), i: int32(i), up: true, links: map[int32]bool{}}
		s.net.addNode(n)
		n.engine = gossip.New(s.engineConfig(k, n))
	}
	return nil
}

func (s *scenario) engineConfig(k *identity.Key, n *simNode) gossip.Config {
	return gossip.Config{
		Key:            k,
		Store:          gossip.NewMemStore(),
		Net:            n,
		Clock:          n.Now,
		Spawn:          n.spawn,
		CheckSignature: s.net.checkSignature,
		AfterFunc:      n.after,
	}
}

// makeRepos makes the repository ids and gives each node Subscribe
// distinct repositories, uniformly.
func (s *scenario) makeRepos() {
	s.repos = make([]identity.RepoID, s.p.Repos)
	for i := range s.repos {
		root := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("root"), uint64(i)))
		s.repos[i], _ = identity.NewRepoID(root[:20], s.keys[i%len(s.keys)].ID())
	}
	s.follows = make([][]int32, s.p.Nodes)
	s.subs = make([][]int32, s.p.Repos)
	s.subOf = make([]map[int32]bool, s.p.Nodes)
	for i := range s.follows {
		s.subOf[i] = map[int32]bool{}
		for len(s.follows[i]) < s.p.Subscribe {
			r := int32(s.rng.IntN(s.p.Repos))
			if !s.subOf[i][r] {
				s.subOf[i][r] = true
				s.follows[i] = append(s.follows[i], r)
				s.subs[r] = append(s.subs[r], int32(i))
			}
		}
	}
}

// connect builds the topology: each node dials Degree/2 random nodes
// (so the mean degree is Degree) and keeps links to at least Mesh other
// followers of each repository it follows (gossipsub's per-topic mesh;
// the daemon's dialer should prefer holders of followed repositories,
// see spec/scale.md).
func (s *scenario) connect() {
	n := s.p.Nodes
	for i, node := range s.net.nodes {
		repos := make([]identity.RepoID, 0, len(s.follows[i]))
		for _, r := range s.follows[i] {
			repos = append(repos, s.repos[r])
		}
		node.engine.SetSubscriptions(repos, false)
	}
	for i := range n {
		for range max(1, s.p.Degree/2) {
			s.net.link(int32(i), int32(s.rng.IntN(n)))
		}
	}
	for i := range n {
		s.keepMesh(int32(i))
	}
}

// keepMesh makes node i, if it is up, dial other live followers of each
// repository it follows until it has links to Mesh of them (or to all).
// It runs when i comes up, when it loses a peer and on each of its ticks
// that finds the mesh short (a dialer looks again now and then: followers
// that came back since).
func (s *scenario) keepMesh(i int32) {
	n := s.net.nodes[i]
	if !n.up {
		return
	}
	for _, r := range s.follows[i] {
		have, want := s.meshLinks(i, r)
		if have >= want {
			continue
		}
		others := s.subs[r]
		for _, k := range s.rng.Perm(len(others)) {
			if have >= want {
				break
			}
			if j := others[k]; j != i && s.net.nodes[j].up && !n.links[j] {
				s.net.link(i, j)
				have++
			}
		}
	}
}

// meshLinks counts node i's links to live followers of repository r, and
// how many it wants: Mesh, or all of them if fewer.
func (s *scenario) meshLinks(i, r int32) (have, want int) {
	n, live := s.net.nodes[i], 0
	for _, j := range s.subs[r] {
		if j != i && s.net.nodes[j].up {
			live++
			if n.links[j] {
				have++
			}
		}
	}
	return have, min(s.p.Mesh, live)
}

// meshShort reports whether node i lacks mesh links for a repository it
// follows. It only reads the links, so a node's tick may ask it on a
// worker; making links is the scenario's.
func (s *scenario) meshShort(i int32) bool {
	for _, r := range s.follows[i] {
		if have, want := s.meshLinks(i, r); have < want {
			return true
		}
	}
	return false
}

// drop unlinks i from all its peers; the live ones replace the lost
// mesh links, as a dialer does when a peer goes.
func (s *scenario) drop(i int32) []int32 {
	peers := append([]int32(nil), s.net.nodes[i].order...)
	for _, p := range peers {
		s.net.unlink(i, p)
	}
	for _, p := range peers {
		s.keepMesh(p)
	}
	return peers
}

// nodeAnnouncement is node i's NodeAnnouncement.
func (s *scenario) nodeAnnouncement(i int) *wire.NodeAnnouncement {
	addr := fmt.Sprintf("10.%d.%d.%d:9000", i>>16&255, i>>8&255, i&255)
	return &wire.NodeAnnouncement{Alias: fmt.Sprintf("n%d", i), Addresses: []string{addr}, Version: "megasim", Features: []string{}}
}

// repoAnnouncement is a holder's announcement of repository r at seq.
func (s *scenario) repoAnnouncement(r int32, seq uint64) *wire.RepoAnnouncement {
	a := &wire.RepoAnnouncement{Repo: s.repos[r], RefsSeq: seq}
	a.RefsDigest = sha256.Sum256(binary.BigEndian.AppendUint64(a.Repo.Multihash(), seq))
	return a
}

// publishAll makes node i announce itself and every repository it follows.
func (s *scenario) publishAll(i int32) {
	n := s.net.nodes[i]
	if !n.up {
		return
	}
	if _, err := n.engine.Publish(s.nodeAnnouncement(int(i))); err != nil {
		panic(err)
	}
	for _, r := range s.follows[i] {
		if _, err := n.engine.Publish(s.repoAnnouncement(r, 1)); err != nil {
			panic(err)
		}
	}
}

// scheduleTicks runs node i's Tick every gossip.RefreshInterval from a
// random phase, while it is up, and then its dialer (keepMesh, a
// scenario event: it makes links).
func (s *scenario) scheduleTicks(i int32) {
	n := s.net.nodes[i]
	var tick func()
	tick = func() {
		if n.up {
			n.engine.Tick()
			if s.meshShort(i) {
				n.schedule(&event{at: n.now, node: global, fn: func() { s.keepMesh(i) }})
			}
		}
		n.after(gossip.RefreshInterval, tick)
	}
	s.net.atNode(i, time.Duration(s.rng.Int64N(int64(gossip.RefreshInterval))), tick)
}

// scheduleChurn makes nodes leave and come back at the churn rate during
// the steady window.
func (s *scenario) scheduleChurn() {
	perHour := s.p.Churn * float64(s.p.Nodes)
	if perHour <= 0 {
		return
	}
	mean := float64(time.Hour) / perHour
	for at := time.Duration(s.rng.ExpFloat64() * mean); at < s.p.Steady; at += time.Duration(s.rng.ExpFloat64() * mean) {
		i := int32(s.rng.IntN(s.p.Nodes))
		s.net.push(&event{at: at, node: global, fn: func() { s.leave(i) }})
	}
}

func (s *scenario) leave(i int32) {
	n := s.net.nodes[i]
	if !n.up {
		return
	}
	n.up = false
	peers := s.drop(i)
	s.net.after(s.p.Downtime, func() {
		n.up, n.since = true, s.net.now
		for _, p := range peers {
			if s.net.nodes[p].up {
				s.net.link(i, p)
			}
		}
		s.keepMesh(i)
	})
}

// run executes the whole scenario and returns the result.
func (s *scenario) run() result {
	s.connect()
	for i := range s.p.Nodes {
		s.scheduleTicks(int32(i))
		at := time.Duration(s.rng.Int64N(int64(refreshPeriod)))
		if at < s.p.Steady {
			s.net.atNode(int32(i), at, func() { s.publishAll(int32(i)) })
		}
	}
	s.scheduleChurn()
	s.m.counting = true
	s.net.runUntil(s.p.Steady)
	s.m.counting = false
	s.m.steadyBytes = s.m.bytes

	s.crash()
	last := s.scheduleAnnouncements()
	s.net.runUntil(last + measureFor)
	return s.m.result()
}

// crash takes Fail of the nodes down at once. Their peers keep the links
// (and lose what they send on them) until detectAfter.
func (s *scenario) crash() {
	want := int(math.Round(s.p.Fail * float64(s.p.Nodes)))
	for len(s.failed) < want {
		i := int32(s.rng.IntN(s.p.Nodes))
		if s.failed[i] {
			continue
		}
		s.failed[i] = true
		s.net.nodes[i].up = false
		s.net.after(detectAfter, func() { s.drop(i) })
	}
}

// scheduleAnnouncements publishes the measured repository announcements,
// each from a random live follower of a repository that has at least one
// other follower, and returns when the last one is made.
func (s *scenario) scheduleAnnouncements() (last time.Duration) {
	for k := range s.p.Announce {
		last = s.p.Steady + time.Second + time.Duration(k)*announceEvery
		s.net.push(&event{at: last, node: global, fn: func() { s.announce(uint64(k)) }})
	}
	return last
}

func (s *scenario) announce(k uint64) {
	for range 1000 {
		i := int32(s.rng.IntN(s.p.Nodes))
		n := s.net.nodes[i]
		if !n.up || len(s.follows[i]) == 0 {
			continue
		}
		r := s.follows[i][s.rng.IntN(len(s.follows[i]))]
		if len(s.subs[r]) < 2 {
			continue
		}
		n.catchUp()
		env, err := n.engine.Publish(s.repoAnnouncement(r, 2+k))
		if err != nil {
			panic(err)
		}
		s.m.track(env, i, r)
		return
	}
}
