package replica

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// A relay fetches an owner's repository through a gate that holds the
// owner's frames from the gateAt-th on (0 is the header) until release is
// closed; clients fetch from the relay meanwhile.
type gatedRelay struct {
	owner, relay *node
	repo         identity.RepoID
	release      chan struct{}
	done         chan error // the relay's fetch
}

func newGatedRelay(t *testing.T, big, gateAt int) *gatedRelay {
	t.Helper()
	g := &gatedRelay{owner: newNode(t, &pipeNet{t: t}, nil), release: make(chan struct{}), done: make(chan error, 1)}
	var err error
	if g.repo, _, err = g.owner.Share(context.Background(), workRepo(t, big), "work", ""); err != nil {
		t.Fatal(err)
	}
	gate := func(i int, typ byte, payload []byte) (byte, []byte, bool) {
		if i == gateAt {
			<-g.release
		}
		return typ, payload, true
	}
	g.relay = newNode(t, &pipeNet{t: t, server: g.owner.Service, tamper: gate}, nil)
	return g
}

// start begins the relay's fetch and waits until the frames before the
// gate went by.
func (g *gatedRelay) start(t *testing.T, gateAt int) *flight {
	t.Helper()
	go func() {
		_, err := fetch(t, g.relay, g.owner, g.repo)
		g.done <- err
	}()
	var f *flight
	testutil.WaitForState(t, "the relay's fetch to reach the gate", 10*time.Second, func() (bool, string) {
		f, _, _ = g.relay.inFlight(g.repo)
		if f == nil {
			return false, "no flight"
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.header != nil && f.packed == (gateAt > 1), fmt.Sprintf("header %v packed %v", f.header != nil, f.packed)
	})
	return f
}

func (g *gatedRelay) followers(f *flight) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.followers)
}

// clientOf makes a node that fetches from the relay.
func (g *gatedRelay) clientOf(t *testing.T) *node {
	return newNode(t, &pipeNet{t: t, server: g.relay.Service}, nil)
}

func fetchAsync(t *testing.T, c, from *node, repo identity.RepoID) chan error {
	done := make(chan error, 1)
	go func() {
		res, err := fetch(t, c, from, repo)
		if err == nil && res.Namespaces != 1 {
			err = fmt.Errorf("fetched %+v, want one namespace", res)
		}
		done <- err
	}()
	return done
}

func sameRefs(t *testing.T, a, b *node, repo, ownerRepo identity.RepoID, owner identity.NodeID) {
	t.Helper()
	ns := Namespace(owner)
	want, _ := mustBare(t, a, ownerRepo).Refs(context.Background(), ns)
	got, _ := mustBare(t, b, repo).Refs(context.Background(), ns)
	if len(want) == 0 || !equalRefs(got, want) {
		t.Fatalf("refs %v, want %v", got, want)
	}
}

// A fetch that reaches the relay while the relay fetches the repository
// for the first time is served the frames the relay receives, as they
// arrive: the client holds the repository although the relay has not
// committed it yet (its commit is held back here).
func TestFetchFollowsFetchInFlight(t *testing.T) {
	g := newGatedRelay(t, 1<<20, 1)
	f := g.start(t, 1)
	client := g.clientOf(t)
	g.relay.publish.Lock() // the relay cannot commit
	done := fetchAsync(t, client, g.relay, g.repo)
	testutil.WaitFor(t, "the client to follow the relay's fetch", 10*time.Second, func() bool { return g.followers(f) == 1 })
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("the follower's fetch: %v", err)
	}
	if g.relay.holds(g.repo) {
		t.Fatal("the relay committed while its commit was held back")
	}
	g.relay.publish.Unlock()
	if err := <-g.done; err != nil {
		t.Fatalf("the relay's fetch: %v", err)
	}
	sameRefs(t, g.owner, client, g.repo, g.repo, g.owner.key.ID())
	git(t, client.Dir(g.repo), "fsck", "--strict")
}

// A fetch that reaches the relay after the pack began cannot follow: it
// waits until the relay's fetch committed and is served from the replica
// then, instead of being told the relay does not hold the repository.
func TestFetchWaitsForFetchInFlight(t *testing.T) {
	g := newGatedRelay(t, 1<<20, 2)
	g.start(t, 2)
	client := g.clientOf(t)
	done := fetchAsync(t, client, g.relay, g.repo)
	testutil.WaitFor(t, "the client's fetch to wait", 10*time.Second, func() bool {
		g.relay.mu.Lock()
		defer g.relay.mu.Unlock()
		return g.relay.waiting == 1
	})
	close(g.release)
	if err := <-g.done; err != nil {
		t.Fatalf("the relay's fetch: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the waiting fetch: %v", err)
	}
	sameRefs(t, g.owner, client, g.repo, g.repo, g.owner.key.ID())
}

// rawFetch sends peer's fetch request for repo to srv over a pipe and
// returns the client's end.
func rawFetch(t *testing.T, srv *Service, peer identity.NodeID, repo identity.RepoID) net.Conn {
	t.Helper()
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close() })
	go srv.ServeFetch(context.Background(), peer, s)
	req := wire.FetchRequest{Repo: repo.Multihash(), Namespaces: [][]byte{}, Known: []wire.KnownRefs{}, Haves: [][]byte{}}
	if err := wire.WriteFetchMessage(c, wire.FrameRequest, req); err != nil {
		t.Fatal(err)
	}
	return c
}

// readHeader reads the header frame on c, within a deadline.
func readHeader(t *testing.T, c net.Conn) *wire.FetchHeader {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, payload, err := wire.ReadFetchFrame(c, wire.FrameHeader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wire.DecodeFetchHeader(payload)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// lastFrame reads frames on c until an end or error frame and returns its type.
func lastFrame(t *testing.T, c net.Conn) byte {
	t.Helper()
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, _, err := wire.ReadFetchFrame(c, wire.FrameHeader, wire.FramePack, wire.FrameEnd, wire.FrameError)
		if err != nil {
			t.Fatal(err)
		}
		if typ == wire.FrameEnd || typ == wire.FrameError {
			return typ
		}
	}
}

func newPeer(t *testing.T) identity.NodeID {
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

// The attack: peers pile fetches onto a repository the relay is fetching
// from a holder that stalls. Only waitPerPeer of one peer's wait, and
// half the serving slots in all; the others are answered at once (the
// relay does not hold it), and the relay still serves what it holds.
func TestWaitingFetchesAreBounded(t *testing.T) {
	g := newGatedRelay(t, 1<<20, 1)
	held, _, err := g.relay.Share(context.Background(), workRepo(t, 0), "held", "")
	if err != nil {
		t.Fatal(err)
	}
	f := g.start(t, 1)
	budget := g.relay.cfg.MaxServing / 2
	var waiting []net.Conn
	for p := 0; len(waiting) < budget; p++ {
		peer := newPeer(t)
		for range waitPerPeer {
			waiting = append(waiting, rawFetch(t, g.relay.Service, peer, g.repo))
		}
		testutil.WaitFor(t, "the peer's fetches to wait", 10*time.Second, func() bool { return g.followers(f) == len(waiting) })
		if h := readHeader(t, rawFetch(t, g.relay.Service, peer, g.repo)); h.Status != wire.FetchNotFound {
			t.Fatalf("a fetch over the peer's budget: status %d, want %d at once", h.Status, wire.FetchNotFound)
		}
	}
	if h := readHeader(t, rawFetch(t, g.relay.Service, newPeer(t), g.repo)); h.Status != wire.FetchNotFound {
		t.Fatalf("a fetch over the relay's budget: status %d, want %d at once", h.Status, wire.FetchNotFound)
	}
	if _, err := fetch(t, g.clientOf(t), g.relay, held); err != nil {
		t.Fatalf("a fetch of what the relay holds, while fetches wait: %v", err)
	}
	close(g.release)
	for _, c := range waiting {
		if readHeader(t, c).Status != wire.FetchOK || lastFrame(t, c) != wire.FrameEnd {
			t.Fatal("a waiting fetch did not get the whole repository")
		}
	}
	if err := <-g.done; err != nil {
		t.Fatalf("the relay's fetch: %v", err)
	}
}

// A follower that does not read is cut off once it is followQueue frames
// behind; the relay's own fetch never waits for it.
func TestSlowFollowerIsCut(t *testing.T) {
	g := newGatedRelay(t, (followQueue+16)*wire.MaxPackChunk, 1)
	f := g.start(t, 1)
	slow := rawFetch(t, g.relay.Service, newPeer(t), g.repo)
	testutil.WaitFor(t, "the follower to join", 10*time.Second, func() bool { return g.followers(f) == 1 })
	close(g.release)
	if err := <-g.done; err != nil {
		t.Fatalf("the relay's fetch with a follower that does not read: %v", err)
	}
	if readHeader(t, slow).Status != wire.FetchOK || lastFrame(t, slow) != wire.FrameError {
		t.Fatal("the slow follower was not cut off with an error frame")
	}
}

// relayNet reaches only the relay: the holders that announced a
// repository cannot be reached (behind NAT).
type relayNet struct {
	relay   *Service
	relayID identity.NodeID
}

func (r relayNet) Connected(id identity.NodeID) bool { return id == r.relayID }

func (r relayNet) OpenFetch(ctx context.Context, id identity.NodeID) (Stream, error) {
	if id != r.relayID {
		return nil, errors.New("no route")
	}
	c, s := net.Pipe()
	go r.relay.ServeFetch(ctx, identity.NodeID{}, s)
	return c, nil
}

func (relayNet) OpenSeed(context.Context, identity.NodeID) (Stream, error) {
	return nil, errors.New("no seed requests")
}

// announceIn stores key's announcement ra in st, as gossip would.
func announceIn(t *testing.T, st *store.Store, key *identity.Key, ra *wire.RepoAnnouncement) {
	t.Helper()
	env, err := wire.Sign(key, time.Now(), ra)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := env.Marshal()
	if _, err := st.Put(store.Announcement{Type: uint8(env.Type), Origin: env.Origin, Subject: []byte(ra.Repo.String()), Timestamp: env.Timestamp, Raw: raw}); err != nil {
		t.Fatal(err)
	}
}

// A sync whose only holder cannot be reached asks the connected relays,
// which replicate what they hear of, although they did not announce it.
func TestSyncAsksConnectedRelays(t *testing.T) {
	var ann *wire.RepoAnnouncement
	owner := newNode(t, &pipeNet{t: t}, func(c *Config) {
		c.Announce = func(ra *wire.RepoAnnouncement) error { ann = ra; return nil }
	})
	repo, _, err := owner.Share(context.Background(), workRepo(t, 0), "work", "")
	if err != nil {
		t.Fatal(err)
	}
	relay := newNode(t, &pipeNet{t: t, server: owner.Service}, nil)
	if _, err := fetch(t, relay, owner, repo); err != nil {
		t.Fatal(err)
	}
	rn := relayNet{relay: relay.Service, relayID: relay.key.ID()}
	client := newNode(t, rn, func(c *Config) { c.Relays = func() []identity.NodeID { return []identity.NodeID{rn.relayID} } })
	announceIn(t, client.store, owner.key, ann)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := client.Sync(ctx, repo, owner.key.ID(), nil)
	if err != nil || !res.Updated || res.From != rn.relayID {
		t.Fatalf("sync: %+v, %v; want it updated from the relay", res, err)
	}
}

// ownerNet reaches only the owner. Opening a fetch to anyone else fails
// as a dial to a node that is gone would (after calling onOther, if set)
// and is recorded. connected says whether the owner counts as connected.
type ownerNet struct {
	owner     *node
	connected bool
	onOther   func()
	mu        sync.Mutex
	dialed    []identity.NodeID
}

func (n *ownerNet) Connected(id identity.NodeID) bool {
	return n.connected && id == n.owner.key.ID()
}

func (n *ownerNet) OpenFetch(ctx context.Context, id identity.NodeID) (Stream, error) {
	if id != n.owner.key.ID() {
		n.mu.Lock()
		n.dialed = append(n.dialed, id)
		n.mu.Unlock()
		if n.onOther != nil {
			n.onOther()
		}
		return nil, context.DeadlineExceeded
	}
	c, s := net.Pipe()
	go n.owner.ServeFetch(ctx, identity.NodeID{}, s)
	return c, nil
}

func (*ownerNet) OpenSeed(context.Context, identity.NodeID) (Stream, error) {
	return nil, errors.New("no seed requests")
}

// sharedOwner is a node that shared a repository, with its announcement
// of it, and the announcement a holder with no refs of its own (as a
// cloner is) makes of the same repository.
func sharedOwner(t *testing.T) (owner *node, repo identity.RepoID, ann, held *wire.RepoAnnouncement) {
	t.Helper()
	owner = newNode(t, &pipeNet{t: t}, func(c *Config) {
		c.Announce = func(ra *wire.RepoAnnouncement) error { ann = ra; return nil }
	})
	repo, _, err := owner.Share(context.Background(), workRepo(t, 0), "work", "")
	if err != nil {
		t.Fatal(err)
	}
	h := *ann
	h.RefsSeq, h.RefsDigest = 0, [32]byte{}
	return owner, repo, ann, &h
}

// The only holder a new node knows of is gone; the owner's announcement
// arrives while it dials that one. The sync goes on to the owner.
func TestSyncTriesHoldersLearnedMeanwhile(t *testing.T) {
	owner, repo, ann, held := sharedOwner(t)
	on := &ownerNet{owner: owner}
	client := newNode(t, on, nil)
	on.onOther = func() { announceIn(t, client.store, owner.key, ann) }
	gone, _ := identity.GenerateKey()
	announceIn(t, client.store, gone, held)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := client.Sync(ctx, repo, identity.NodeID{}, nil)
	if err != nil || !res.Updated || res.From != owner.key.ID() {
		t.Fatalf("sync: %+v, %v; want it updated from the owner", res, err)
	}
}

// A new node first hears of a holder it is not connected to (gone, say),
// then of its connected peer's own announcement: it waits for the second
// instead of dialling the first.
func TestFirstSyncWaitsForAConnectedHolder(t *testing.T) {
	owner, repo, ann, held := sharedOwner(t)
	on := &ownerNet{owner: owner, connected: true}
	client := newNode(t, on, func(c *Config) { c.DiscoverWait, c.HolderGrace = 30*time.Second, 20*time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		res SyncResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := client.Sync(ctx, repo, identity.NodeID{}, nil)
		done <- result{res, err}
	}()
	testutil.WaitFor(t, "the sync to wait for a holder", 10*time.Second, func() bool {
		client.mu.Lock()
		defer client.mu.Unlock()
		return client.heard[repo] != nil
	})
	gone, _ := identity.GenerateKey()
	announceIn(t, client.store, gone, held)
	client.heardOf(repo) // what gossip's handler does first
	// The owner's comes a moment later (the grace is far longer).
	select {
	case r := <-done:
		t.Fatalf("the sync ended before the connected holder was heard of: %+v, %v", r.res, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	announceIn(t, client.store, owner.key, ann)
	client.heardOf(repo)
	r := <-done
	if r.err != nil || r.res.From != owner.key.ID() {
		t.Fatalf("sync: %+v, %v; want it from the owner", r.res, r.err)
	}
	on.mu.Lock()
	defer on.mu.Unlock()
	if len(on.dialed) > 0 {
		t.Fatalf("dialled %v before the connected holder was heard of", on.dialed)
	}
}
