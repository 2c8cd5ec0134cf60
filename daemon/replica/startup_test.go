package replica

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/wire"
)

// restart makes a new service on n's key, store and root, as a daemon
// started again would, and serves it until the test ends.
func restart(t *testing.T, n *node) *Service {
	t.Helper()
	s, err := New(Config{Key: n.key, Store: n.store, Git: n.git, Net: n.cfg.Net, Root: n.root,
		Announce: func(*wire.RepoAnnouncement) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	return s
}

// runService runs s's Serve (the repacker, the watcher, the sync loops)
// until the test ends.
func runService(t *testing.T, s *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// At start the service sweeps what interrupted transfers left, removes
// the directory of a first fetch that never finished, and signs the refs
// of a push that was received but not published.
func TestStartupHygiene(t *testing.T) {
	owner, c, repo, _ := pair(t, 0, nil)
	if _, err := fetch(t, c, owner, repo); err != nil {
		t.Fatal(err)
	}
	dir := c.Dir(repo)
	junk := []string{"objects/incoming-1/incoming.pack", "objects/pack/tmp_pack_x", "refs/heads/x.lock"}
	for _, j := range junk {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, j)), 0o755)
		os.WriteFile(filepath.Join(dir, j), []byte("partial"), 0o644)
	}
	unfinished := filepath.Join(c.root, "repos", "zW1cN38qEZJJZbLT62DrhF2cVGAFkJSUSM3ZBy3K5bU25it.git")
	os.MkdirAll(filepath.Join(unfinished, "objects"), 0o755)
	// A push into our namespace that was never signed.
	head := git(t, dir, "rev-parse", "refs/namespaces/"+Namespace(owner.key.ID())+"/refs/heads/main")
	git(t, dir, "update-ref", "refs/namespaces/"+Namespace(c.key.ID())+"/refs/heads/mine", head)

	s := restart(t, c)
	for _, j := range append(junk, "../"+filepath.Base(unfinished)) {
		if _, err := os.Stat(filepath.Join(dir, j)); !os.IsNotExist(err) {
			t.Errorf("%s survived the start (%v)", j, err)
		}
	}
	testutil.WaitFor(t, "the pushed branch to be signed", 10*time.Second, func() bool {
		raw, _, ok, _ := s.store.SignedRefs(repo, c.key.ID())
		if !ok {
			return false
		}
		sr, err := wire.UnmarshalSignedRefs(raw)
		return err == nil && len(sr.Refs()) == 1 && sr.Refs()[0].Name == "refs/heads/mine"
	})
}

// At start the service syncs at once what it holds no document of yet.
func TestStartupResumesSync(t *testing.T) {
	bad := newStranger(t)
	owner := newNode(t, &pipeNet{t: t}, nil)
	repo, _, err := owner.Share(t.Context(), workRepo(t, 0), "good", "")
	if err != nil {
		t.Fatal(err)
	}
	pn := &pipeNet{t: t, server: owner.Service}
	c := newNode(t, pn, func(c *Config) { c.ResyncInterval = time.Hour })
	// The owner's announcement, as gossip stored it before a crash.
	bad.key, bad.repo = owner.key, repo
	bad.doc, _ = owner.Doc(repo)
	raw, _, _, _ := owner.store.SignedRefs(repo, owner.key.ID())
	bad.refs, _ = wire.UnmarshalSignedRefs(raw)
	bad.announceTo(t, c.store)
	restart(t, c)
	testutil.WaitFor(t, "the sync to run at start", 10*time.Second, func() bool {
		_, _, ok, _ := c.store.SignedRefs(repo, owner.key.ID())
		return ok
	})
}
