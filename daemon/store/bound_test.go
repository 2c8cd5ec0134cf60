package store

import (
	"slices"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// signed is a real signed announcement of body by a new key, at t.
func signed(t *testing.T, body wire.Body, at time.Time) Announcement {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env, err := wire.Sign(k, at, body)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return Announcement{Type: uint8(env.Type), Origin: k.ID(), Subject: []byte(body.Subject()), Timestamp: env.Timestamp, Raw: raw}
}

func nodeBody(kind wire.NodeKind) *wire.NodeAnnouncement {
	return &wire.NodeAnnouncement{Alias: "n", Addresses: []string{"192.0.2.1:9000"}, Kind: kind, Version: "test", Features: []string{}}
}

// A flood of fresh node announcements, ten times the bound, leaves the
// table at its bound with the useful nodes in it: a peer, the holder of
// a stored repository and a relay survive; an idle node heard of long
// ago and most of the flood go.
func TestNodeTableBoundKeepsUsefulNodes(t *testing.T) {
	const bound = 64
	s := open(t, t.TempDir())
	defer s.Close()
	var evicted []identity.NodeID
	s.LimitNodes(bound, func(ids []identity.NodeID) { evicted = append(evicted, ids...) })

	now := time.Now()
	long := now.Add(-20 * time.Hour)
	put := func(a Announcement) {
		t.Helper()
		if ok, err := s.Put(a); err != nil || !ok {
			t.Fatalf("Put = %v, %v", ok, err)
		}
	}
	// The useful ones were heard of long ago: older than the flood.
	peer := signed(t, nodeBody(wire.KindNormal), long)
	relay := signed(t, nodeBody(wire.KindRelay), long)
	holderKey, _ := identity.GenerateKey()
	repo, _ := identity.NewRepoID(make([]byte, 20), holderKey.ID())
	holder := signed(t, nodeBody(wire.KindNormal), long)
	holds := Announcement{Type: uint8(wire.TypeRepoAnnouncement), Origin: holder.Origin, Subject: []byte(repo.String()), Timestamp: holder.Timestamp, Raw: []byte("repo")}
	idle := signed(t, nodeBody(wire.KindNormal), long)
	for _, a := range []Announcement{peer, relay, holder, holds, idle} {
		put(a)
	}
	if err := s.Peered(peer.Origin, long); err != nil {
		t.Fatal(err)
	}

	for i := range 10 * bound {
		a := signed(t, nodeBody(wire.KindNormal), now.Add(time.Duration(i)*time.Millisecond))
		put(a)
		if err := s.Touch(a.Origin, now); err != nil { // as gossip does on accepting it
			t.Fatal(err)
		}
		if n := s.NodeCount(); n > bound {
			t.Fatalf("%d nodes stored after %d new ones, bound %d", n, i+1, bound)
		}
	}

	for name, a := range map[string]Announcement{"peer": peer, "relay": relay, "holder": holder} {
		if _, _, ok := s.Node(a.Origin); !ok {
			t.Errorf("the %s was evicted by the flood", name)
		}
	}
	if _, ok, _ := s.Get(holds.Type, holds.Subject, holds.Origin); !ok {
		t.Error("the holder's repository announcement was evicted")
	}
	if _, _, ok := s.Node(idle.Origin); ok {
		t.Error("the idle node heard of long ago outlived the flood")
	}
	if !slices.Contains(evicted, idle.Origin) || len(evicted) < 9*bound {
		t.Errorf("%d evictions reported, the idle node among them: %v", len(evicted), slices.Contains(evicted, idle.Origin))
	}
	count := 0
	if err := s.EachNode(func(Announcement, *wire.NodeAnnouncement) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	if count != s.NodeCount() {
		t.Fatalf("NodeCount %d, table holds %d", s.NodeCount(), count)
	}
}

// The count of nodes is rebuilt when the store is opened again.
func TestNodeCountSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for range 3 {
		if _, err := s.Put(signed(t, nodeBody(wire.KindNormal), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if n := s.NodeCount(); n != 3 {
		t.Fatalf("NodeCount after reopen = %d, want 3", n)
	}
}
