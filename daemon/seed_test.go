package daemon

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// seedCfg is a node that replicates nothing by itself and, if accept,
// seeds what peers ask for.
func seedCfg(t *testing.T, alias string, accept bool, boot ...*running) Config {
	c := fastCfg(shortRoot(t), alias, boot...)
	c.Replicate, c.AcceptSeedRequests = ReplicateNone, accept
	return c
}

// An owner asks for two replicas: the two peers that accept requests
// fetch the repository and repo show lists them in sync; the peer that
// takes no requests refuses with a reason and holds nothing; asking again
// asks nobody, since enough holders are in sync.
func TestSeedRequestReplicates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "owner"))
	b := start(t, seedCfg(t, "b", true, a))
	c := start(t, seedCfg(t, "c", true, a))
	d := start(t, seedCfg(t, "d", false, a))
	testutil.WaitFor(t, "the owner to have three peers", 20*time.Second, func() bool { return len(a.tr.Peers()) == 3 })
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	wait := 45.0
	res, err := a.RepoSeedRequest(ctx, rpc.SeedRequestParams{RepoID: info.RepoID, Replicas: 2, WaitSeconds: &wait})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.InSync != 2 {
		t.Fatalf("asked for 2 replicas: %+v", res)
	}
	detail, err := a.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID})
	if err != nil {
		t.Fatal(err)
	}
	inSync := map[string]bool{}
	for _, h := range detail.HolderStates {
		inSync[h.Node] = h.InSync
	}
	if !inSync[b.ID().String()] || !inSync[c.ID().String()] {
		t.Fatalf("repo show: holders %+v, want b and c in sync", detail.HolderStates)
	}
	for _, n := range []*running{b, c} {
		d, err := n.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID})
		if err != nil || !d.Seeded || d.SeedRequester != a.ID().String() || headOf(t, n, info.RepoID) != headOf(t, a, info.RepoID) {
			t.Fatalf("%s does not seed the repository at the owner's head on the owner's request: %+v, %v", n.cfg.Alias, d.RepoInfo, err)
		}
	}

	// A third replica: only d is left to ask, and it takes no requests.
	none := 0.0
	res, err = a.RepoSeedRequest(ctx, rpc.SeedRequestParams{RepoID: info.RepoID, Replicas: 3, WaitSeconds: &none})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Answers) != 1 || res.Answers[0].Node != d.ID().String() || res.Answers[0].Code != rpc.SeedNotAccepting ||
		res.Answers[0].Reason == "" || res.Accepted != 0 || res.InSync != 2 {
		t.Fatalf("asking d: %+v", res)
	}
	if d.replica.Seeded(mustRepo(t, info.RepoID)) || exists(d.replica.Dir(mustRepo(t, info.RepoID))) {
		t.Fatal("d, which takes no seed requests, seeds or holds the repository")
	}

	// Asking again for two: both are in sync, nobody is asked.
	res, err = a.RepoSeedRequest(ctx, rpc.SeedRequestParams{RepoID: info.RepoID, Replicas: 2, WaitSeconds: &none})
	if err != nil || len(res.Answers) != 0 || res.InSync != 2 {
		t.Fatalf("asking again: %+v, %v", res, err)
	}
}

// A hostile peer floods an accepting node with requests for many
// repositories: those over its per-requester budget are refused, never
// marked seeded nor fetched; a request signed by another key is refused.
func TestSeedRequestFloodRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bc := seedCfg(t, "b", true)
	bc.SeedBudget.PerRequester = 2
	b := start(t, bc)
	h := start(t, fastCfg(shortRoot(t), "hostile", b))
	testutil.WaitFor(t, "the hostile node to connect", 10*time.Second, func() bool { return h.tr.Peer(b.ID()) != nil })
	peer := h.tr.Peer(b.ID())
	codes := map[uint64]int{}
	var refused []identity.RepoID
	for i := range 20 {
		repo := madeUpRepo(t, byte(i))
		rep := rawSeedRequest(ctx, t, peer, h.key, repo)
		codes[rep.Code]++
		if rep.Code == wire.SeedOverBudget {
			refused = append(refused, repo)
		}
	}
	if codes[wire.SeedAccepted] != 2 || codes[wire.SeedOverBudget] != 18 {
		t.Fatalf("20 requests against a budget of 2: %v", codes)
	}
	for _, repo := range refused {
		if b.replica.Seeded(repo) || exists(b.replica.Dir(repo)) {
			t.Fatalf("a refused repository %s is seeded or on disk", repo)
		}
	}
	other, _ := identity.GenerateKey()
	if rep := rawSeedRequest(ctx, t, peer, other, madeUpRepo(t, 99)); rep.Code != wire.SeedBadRequest {
		t.Fatalf("a request signed by another key: %+v", rep)
	}
}

// A relay accepts seed requests without --accept-seed-requests.
func TestRelayAcceptsSeedRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := cfg(shortRoot(t), "relay")
	rc.Relay = true
	r := start(t, rc)
	n := start(t, fastCfg(shortRoot(t), "behind", r))
	testutil.WaitFor(t, "the node to connect to the relay", 10*time.Second, func() bool { return n.tr.Peer(r.ID()) != nil })
	repo := madeUpRepo(t, 1)
	// "seeding": recorded as seeded on this request (a relay replicates
	// everything anyway; the request charges the requester's budget).
	if rep := rawSeedRequest(ctx, t, n.tr.Peer(r.ID()), n.key, repo); rep.Code != wire.SeedAccepted || rep.Reason != "seeding" {
		t.Fatalf("the relay answered %+v", rep)
	}
}

// rawSeedRequest sends a seed request signed by k over a stream of p, as
// a hostile peer can, and returns the answer.
func rawSeedRequest(ctx context.Context, t *testing.T, p *transport.Peer, k *identity.Key, repo identity.RepoID) wire.SeedReply {
	t.Helper()
	st, err := p.OpenStream(ctx, transport.StreamSeed)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := wire.SignSeedRequest(k, repo, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteSeedFrame(st, b); err != nil {
		t.Fatal(err)
	}
	b, err = wire.ReadSeedFrame(st)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := wire.UnmarshalSeedReply(b)
	if err != nil {
		t.Fatal(err)
	}
	return *rep
}

func madeUpRepo(t *testing.T, i byte) identity.RepoID {
	t.Helper()
	mh := append([]byte{0x16, 0x20, 0xee, i}, make([]byte, 30)...)
	repo, err := identity.RepoIDFromMultihash(mh)
	if err != nil {
		t.Fatal(fmt.Errorf("made-up repository %d: %w", i, err))
	}
	return repo
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
