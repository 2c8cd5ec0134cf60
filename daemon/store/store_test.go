package store

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

func newID(t *testing.T) identity.NodeID {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutKeepsNewestAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	a := newID(t)
	repo := []byte("repo-subject")
	mustPut := func(ann Announcement, want bool) {
		t.Helper()
		got, err := s.Put(ann)
		if err != nil || got != want {
			t.Fatalf("Put(ts=%d) = %v, %v; want %v", ann.Timestamp, got, err, want)
		}
	}
	mustPut(Announcement{Type: 1, Origin: a, Timestamp: 100, Raw: []byte("v100")}, true)
	mustPut(Announcement{Type: 1, Origin: a, Timestamp: 100, Raw: []byte("dup")}, false)   // same
	mustPut(Announcement{Type: 1, Origin: a, Timestamp: 50, Raw: []byte("replay")}, false) // older
	mustPut(Announcement{Type: 1, Origin: a, Timestamp: 200, Raw: []byte("v200")}, true)
	mustPut(Announcement{Type: 2, Origin: a, Subject: repo, Timestamp: 10, Raw: []byte("repo")}, true) // other subject: independent

	got, ok, err := s.Get(1, nil, a)
	if err != nil || !ok || string(got.Raw) != "v200" || got.Timestamp != 200 {
		t.Fatalf("Get = %+v %v %v", got, ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	got, ok, err = s.Get(1, nil, a)
	if err != nil || !ok || string(got.Raw) != "v200" {
		t.Fatalf("after reopen: %+v %v %v", got, ok, err)
	}
	r, ok, _ := s.Get(2, repo, a)
	if !ok || string(r.Raw) != "repo" || string(r.Subject) != string(repo) || r.Origin != a {
		t.Fatalf("repo announcement after reopen: %+v", r)
	}
}

func TestEachFilters(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	a, b := newID(t), newID(t)
	r1, r2 := []byte("r1"), []byte("r2-longer")
	for _, ann := range []Announcement{
		{Type: 1, Origin: a, Timestamp: 1}, {Type: 1, Origin: b, Timestamp: 1},
		{Type: 2, Origin: a, Subject: r1, Timestamp: 1}, {Type: 2, Origin: b, Subject: r1, Timestamp: 1},
		{Type: 2, Origin: a, Subject: r2, Timestamp: 1}, {Type: 3, Origin: a, Subject: r1, Timestamp: 1},
	} {
		if _, err := s.Put(ann); err != nil {
			t.Fatal(err)
		}
	}
	count := func(typ uint8, subject []byte) int {
		n := 0
		if err := s.Each(typ, subject, func(Announcement) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		typ     uint8
		subject []byte
		want    int
	}{{0, nil, 6}, {1, nil, 2}, {2, nil, 3}, {2, r1, 2}, {2, r2, 1}, {3, r1, 1}, {3, r2, 0}} {
		if got := count(c.typ, c.subject); got != c.want {
			t.Errorf("Each(%d, %q) saw %d, want %d", c.typ, c.subject, got, c.want)
		}
	}
	stop := errors.New("stop")
	if err := s.Each(0, nil, func(Announcement) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Each did not return the callback's error: %v", err)
	}
}

func TestExpire(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.UnixMilli(10_000_000_000)
	old, fresh, touched := newID(t), newID(t), newID(t)
	ms := func(t time.Time) uint64 { return uint64(t.UnixMilli()) }
	for _, ann := range []Announcement{
		{Type: 1, Origin: old, Timestamp: ms(now.Add(-25 * time.Hour))},
		{Type: 2, Origin: old, Subject: []byte("r"), Timestamp: ms(now.Add(-25 * time.Hour))},
		{Type: 1, Origin: fresh, Timestamp: ms(now.Add(-time.Hour))},
		{Type: 1, Origin: touched, Timestamp: ms(now.Add(-30 * time.Hour))},
	} {
		if _, err := s.Put(ann); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Touch(touched, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	gone, err := s.Expire(now.Add(-24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0] != old {
		t.Fatalf("expired %v, want only %v", gone, old)
	}
	n := 0
	_ = s.Each(0, nil, func(a Announcement) error {
		if a.Origin == old {
			t.Errorf("announcement of expired node kept: %+v", a)
		}
		n++
		return nil
	})
	if n != 2 {
		t.Errorf("%d announcements left, want 2", n)
	}
}

func TestTouchKeepsNewest(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	id := newID(t)
	t1 := time.UnixMilli(2000)
	_ = s.Touch(id, t1)
	_ = s.Touch(id, time.UnixMilli(1000))
	got, ok, err := s.LastSeen(id)
	if err != nil || !ok || !got.Equal(t1) {
		t.Fatalf("LastSeen = %v %v %v, want %v", got, ok, err, t1)
	}
}

// Concurrent writers of the same key: the newest timestamp must win.
func TestConcurrentPut(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	id := newID(t)
	var wg sync.WaitGroup
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func(ts uint64) {
			defer wg.Done()
			if _, err := s.Put(Announcement{Type: 1, Origin: id, Timestamp: ts, Raw: []byte{byte(ts)}}); err != nil {
				t.Error(err)
			}
		}(uint64(i))
	}
	wg.Wait()
	got, _, _ := s.Get(1, nil, id)
	if got.Timestamp != 50 || got.Raw[0] != 50 {
		t.Fatalf("after concurrent puts: ts %d", got.Timestamp)
	}
}

func TestSubjectTooLong(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if _, err := s.Put(Announcement{Type: 2, Origin: newID(t), Subject: make([]byte, MaxSubjectLen+1)}); err == nil {
		t.Fatal("oversize subject accepted")
	}
}

func TestRepoTables(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	node := newID(t)
	repo, _ := identity.NewRepoID(make([]byte, 20), node)
	if stored, err := s.PutSignedRefs(repo, node, 5, []byte("five")); err != nil || !stored {
		t.Fatal(stored, err)
	}
	if stored, _ := s.PutSignedRefs(repo, node, 4, []byte("four")); stored {
		t.Fatal("older signed refs replaced newer")
	}
	s.PutRepoDoc(repo, []byte("doc"))
	s.PutRepoState(repo, []byte(`{"seeded":true}`))
	s.Close()
	s = open(t, dir)
	defer s.Close()
	raw, seq, ok, err := s.SignedRefs(repo, node)
	if err != nil || !ok || seq != 5 || string(raw) != "five" {
		t.Fatalf("signed refs after reopen: %q %d %v %v", raw, seq, ok, err)
	}
	if doc, ok, _ := s.RepoDoc(repo); !ok || string(doc) != "doc" {
		t.Fatal("doc lost")
	}
	n := 0
	s.EachSignedRefs(repo, func(id identity.NodeID, seq uint64, raw []byte) error {
		n++
		if id != node || seq != 5 {
			t.Errorf("EachSignedRefs gave %s %d", id, seq)
		}
		return nil
	})
	var states int
	s.EachRepoState(func(r identity.RepoID, st []byte) error {
		states++
		if r != repo || string(st) != `{"seeded":true}` {
			t.Errorf("state %s %q", r, st)
		}
		return nil
	})
	if n != 1 || states != 1 {
		t.Fatalf("%d signed refs, %d states", n, states)
	}
}

func TestGuardWritesRefusesWhileLow(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	full := errors.New("disk space low: test")
	var low bool
	s.GuardWrites(func() error {
		if low {
			return full
		}
		return nil
	})
	a := newID(t)
	if _, err := s.Put(Announcement{Type: 1, Origin: a, Timestamp: 1, Raw: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	low = true
	if stored, err := s.Put(Announcement{Type: 1, Origin: a, Timestamp: 2, Raw: []byte("two")}); !errors.Is(err, full) || stored {
		t.Fatalf("Put while low = %v, %v; want the guard's error", stored, err)
	}
	if err := s.Touch(a, time.Now()); !errors.Is(err, full) {
		t.Fatalf("Touch while low = %v", err)
	}
	if got, _, _ := s.Get(1, nil, a); string(got.Raw) != "one" {
		t.Fatalf("stored %q while low", got.Raw)
	}
	// Reads and deletes still work: expiry is what frees space.
	if gone, err := s.Expire(time.Now().Add(time.Hour)); err != nil || len(gone) != 1 {
		t.Fatalf("Expire while low = %v, %v", gone, err)
	}
	low = false
	if stored, err := s.Put(Announcement{Type: 1, Origin: a, Timestamp: 3, Raw: []byte("three")}); err != nil || !stored {
		t.Fatalf("Put after space came back = %v, %v", stored, err)
	}
}
