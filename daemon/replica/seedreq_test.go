package replica

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// offline is a network where no holder answers.
type offline struct{}

func (offline) Connected(identity.NodeID) bool { return false }
func (offline) OpenFetch(context.Context, identity.NodeID) (Stream, error) {
	return nil, errors.New("offline")
}
func (offline) OpenSeed(context.Context, identity.NodeID) (Stream, error) {
	return nil, errors.New("offline")
}

func seedRequest(t *testing.T, k *identity.Key, repo identity.RepoID) *wire.SeedRequest {
	t.Helper()
	r, err := wire.SignSeedRequest(k, repo, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func someRepo(t *testing.T, i byte) identity.RepoID {
	t.Helper()
	mh := append([]byte{0x16, 0x20}, make([]byte, 32)...)
	mh[2] = i + 1
	repo, err := identity.RepoIDFromMultihash(mh)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// A node that accepts seed requests seeds what a requester asks for up to
// the requester's budget, then refuses without marking anything; asking
// again is accepted without charging twice; other requesters share the
// total budget.
func TestAcceptSeedBudgets(t *testing.T) {
	n := newNode(t, offline{}, func(c *Config) {
		c.Replicate, c.AcceptSeeds = ReplicateNone, true
		c.SeedBudget = SeedBudget{PerRequester: 2, Total: 3}
	})
	a, _ := identity.GenerateKey()
	b, _ := identity.GenerateKey()
	ask := func(k *identity.Key, repo identity.RepoID) wire.SeedReply {
		return n.AcceptSeed(k.ID(), seedRequest(t, k, repo), time.Now())
	}
	for i := range byte(2) {
		if r := ask(a, someRepo(t, i)); r.Code != wire.SeedAccepted {
			t.Fatalf("request %d refused: %+v", i, r)
		}
	}
	if r := ask(a, someRepo(t, 0)); r.Code != wire.SeedAccepted || r.Reason != "seeded already" {
		t.Fatalf("asking again: %+v", r)
	}
	over := someRepo(t, 2)
	if r := ask(a, over); r.Code != wire.SeedOverBudget {
		t.Fatalf("a third repository of one requester: %+v", r)
	}
	if n.Seeded(over) {
		t.Fatal("a refused request marked the repository seeded")
	}
	if r := ask(b, over); r.Code != wire.SeedAccepted {
		t.Fatalf("another requester: %+v", r)
	}
	if r := ask(b, someRepo(t, 3)); r.Code != wire.SeedOverBudget {
		t.Fatalf("over the total budget: %+v", r)
	}
	for i := range byte(3) {
		if !n.Seeded(someRepo(t, i)) {
			t.Fatalf("accepted repository %d is not seeded", i)
		}
	}
	// Nobody could serve them: within the hour they keep their slots,
	// after it they are dropped and the budget is free again.
	n.expireSeedRequests(time.Now().Add(seedRequestExpiry / 2))
	fresh := someRepo(t, 5)
	if r := ask(a, fresh); r.Code != wire.SeedOverBudget {
		t.Fatalf("before the expiry: %+v", r)
	}
	n.expireSeedRequests(time.Now().Add(seedRequestExpiry + time.Minute))
	if n.Seeded(someRepo(t, 0)) {
		t.Fatal("an expired request still seeds its repository")
	}
	if r := ask(a, fresh); r.Code != wire.SeedAccepted {
		t.Fatalf("after the expiry: %+v", r)
	}
}

// Requests that a node does not take, that another node signed, or that
// are stale are refused with a reason.
func TestAcceptSeedRefusals(t *testing.T) {
	closed := newNode(t, offline{}, func(c *Config) { c.Replicate = ReplicateNone })
	k, _ := identity.GenerateKey()
	other, _ := identity.GenerateKey()
	repo := someRepo(t, 0)
	if r := closed.AcceptSeed(k.ID(), seedRequest(t, k, repo), time.Now()); r.Code != wire.SeedNotAccepting || r.Reason == "" {
		t.Fatalf("a node without AcceptSeeds: %+v", r)
	}
	open := newNode(t, offline{}, func(c *Config) { c.Replicate, c.AcceptSeeds = ReplicateNone, true })
	if r := open.AcceptSeed(other.ID(), seedRequest(t, k, repo), time.Now()); r.Code != wire.SeedBadRequest {
		t.Fatalf("a request relayed by another peer: %+v", r)
	}
	if r := open.AcceptSeed(k.ID(), seedRequest(t, k, repo), time.Now().Add(time.Hour)); r.Code != wire.SeedBadRequest {
		t.Fatalf("a stale request: %+v", r)
	}
	if err := open.Seed(repo, false); err != nil {
		t.Fatal(err)
	}
	if r := open.AcceptSeed(k.ID(), seedRequest(t, k, repo), time.Now()); r.Code != wire.SeedRefused {
		t.Fatalf("a repository the owner unseeded: %+v", r)
	}
	if open.Seeded(someRepo(t, 0)) {
		t.Fatal("a refused request seeded the repository")
	}
}

// A repository seeded on request is fetched within the requester's seed
// bytes: one larger than what is left is cut, whatever the node's other
// budgets, and the error names the seed budget.
func TestSeedBytesBoundTheFetch(t *testing.T) {
	owner, client, repo, _ := pair(t, 2<<20, func(c *Config) {
		c.Replicate, c.AcceptSeeds = ReplicateNone, true
		c.SeedBudget = SeedBudget{PerRequesterBytes: 1 << 20}
	})
	req, err := wire.SignSeedRequest(owner.key, repo, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := client.AcceptSeed(owner.key.ID(), req, time.Now()); r.Code != wire.SeedAccepted {
		t.Fatalf("refused: %+v", r)
	}
	_, err = client.FetchFrom(t.Context(), owner.key.ID(), repo, nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "seed budget") {
		t.Fatalf("fetching 2 MiB within a seed budget of 1 MiB: %v", err)
	}
}
