package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

func git(tb testing.TB, dir string, args ...string) string { return testutil.Git(tb, dir, args...) }

// workRepo makes a working repository with a few commits, a branch and a tag.
func workRepo(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	os.MkdirAll(dir, 0o755)
	git(t, dir, "init", "-q", "-b", "main")
	for i, name := range []string{"README.md", "a.txt", "b.txt"} {
		os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat("line\n", i+1)), 0o644)
		git(t, dir, "add", name)
		git(t, dir, "commit", "-q", "-m", "add "+name)
	}
	git(t, dir, "branch", "feature")
	git(t, dir, "tag", "-a", "v1", "-m", "v1")
	return dir
}

func commit(t testing.TB, dir, file, content string) string {
	t.Helper()
	os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644)
	git(t, dir, "add", file)
	git(t, dir, "commit", "-q", "-m", "change "+file)
	return git(t, dir, "rev-parse", "HEAD")
}

func fastCfg(root, alias string, boot ...*running) Config {
	c := cfg(root, alias)
	for _, b := range boot {
		c.Bootstrap = append(c.Bootstrap, b.Addr())
	}
	c.WatchInterval = 100 * time.Millisecond
	return c
}

func TestAddReplicateCloneUpdatePull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "node1"))
	b := start(t, fastCfg(shortRoot(t), "node2", a))
	src := workRepo(t)

	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src, Description: "Tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "tiny" || !info.Local || info.Replica != rpc.ReplicaUpToDate {
		t.Fatalf("repo add: %+v", info)
	}
	params := rpc.RepoIDParams{RepoID: info.RepoID}

	// B replicates by itself.
	testutil.WaitFor(t, "B to replicate the repository", 20*time.Second, func() bool {
		got, err := b.RepoShow(ctx, params)
		return err == nil && got.Replica == rpc.ReplicaUpToDate && got.Head == git(t, src, "rev-parse", "main")
	})

	// A clone on B equals the source.
	dest := filepath.Join(t.TempDir(), "clone")
	res, err := b.RepoClone(ctx, rpc.RepoCloneParams{RepoID: info.RepoID, Path: dest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Branch != "main" || res.Head != git(t, src, "rev-parse", "main") {
		t.Fatalf("clone: %+v", res)
	}
	for _, ref := range []string{"origin/feature", "v1^{commit}"} {
		want := git(t, src, "rev-parse", strings.TrimPrefix(ref, "origin/"))
		if got := git(t, dest, "rev-parse", ref); got != want {
			t.Errorf("%s in clone = %s, want %s", ref, got, want)
		}
	}
	if url := git(t, dest, "config", "remote.origin.url"); !strings.HasPrefix(url, "mega://z") {
		t.Errorf("origin url %q", url)
	}

	// A new commit on A arrives at B by itself; pull brings it into the clone.
	head := commit(t, src, "new.txt", "new\n")
	testutil.WaitFor(t, "the update to reach B", 20*time.Second, func() bool {
		got, err := b.RepoShow(ctx, params)
		return err == nil && got.Head == head && got.Replica == rpc.ReplicaUpToDate
	})
	list, _ := b.RepoList(ctx)
	if len(list) != 1 || len(list[0].Clones) != 1 || list[0].Clones[0].Status != rpc.CloneBehind {
		t.Fatalf("repo list on B should show the clone behind: %+v", list)
	}
	pr, err := b.RepoPull(ctx, rpc.RepoPullParams{Path: dest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Updated || pr.Head != head {
		t.Fatalf("pull: %+v", pr)
	}
	// A deleted branch disappears from the signed refs.
	git(t, src, "branch", "-D", "feature")
	testutil.WaitFor(t, "the deletion to reach B", 20*time.Second, func() bool {
		got, err := b.RepoShow(ctx, params)
		if err != nil || len(got.Namespaces) != 1 {
			return false
		}
		for _, r := range got.Namespaces[0].Refs {
			if r.Name == "refs/heads/feature" {
				return false
			}
		}
		return true
	})
}

// bigRepo makes a working repository with about size bytes of
// incompressible content, so its pack takes several chunks.
func bigRepo(t testing.TB, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "big")
	os.MkdirAll(dir, 0o755)
	git(t, dir, "init", "-q", "-b", "main")
	buf := make([]byte, size)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(rnd.Uint32())
	}
	os.WriteFile(filepath.Join(dir, "blob.bin"), buf, 0o644)
	var text strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&text, "line %d of a text file that changes a little\n", i)
	}
	os.WriteFile(filepath.Join(dir, "text.txt"), []byte(text.String()), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "big")
	return dir
}

func headOf(t testing.TB, r *running, repo string) string {
	t.Helper()
	got, err := r.RepoShow(context.Background(), rpc.RepoIDParams{RepoID: repo})
	if err != nil {
		return ""
	}
	// What is signed, not only what the replica's refs say: a publication
	// writes the refs first and signs them a moment later, and a peer
	// fetches only what is signed.
	for _, ns := range got.Namespaces {
		if !ns.Canonical {
			continue
		}
		for _, ref := range ns.Refs {
			if ref.Name == "refs/heads/"+got.DefaultBranch && ref.OID == got.Head {
				return got.Head
			}
		}
	}
	return ""
}

// A–B–C: B replicates A's repository, A stops, C clones from B and verifies.
func TestCloneFromReplicaWhileOwnerOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	b := start(t, fastCfg(shortRoot(t), "b", a))
	src := workRepo(t)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	want := git(t, src, "rev-parse", "main")
	testutil.WaitFor(t, "B to replicate", 20*time.Second, func() bool { return headOf(t, b, info.RepoID) == want })
	a.stop(t)

	c := start(t, fastCfg(shortRoot(t), "c", b))
	testutil.WaitFor(t, "C to connect to B and learn who holds the repository", 10*time.Second, func() bool {
		return c.tr.Peer(b.ID()) != nil && len(c.replica.Holders(mustRepo(t, info.RepoID))) == 2
	})
	dest := filepath.Join(t.TempDir(), "clone")
	res, err := c.RepoClone(ctx, rpc.RepoCloneParams{RepoID: info.RepoID, Path: dest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Head != want {
		t.Fatalf("clone head %s, want %s", res.Head, want)
	}
	// What C holds is A's namespace, verified against A's signature.
	show, _ := c.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID})
	if len(show.Namespaces) != 1 || show.Namespaces[0].Node != a.ID().String() || !show.Namespaces[0].Canonical {
		t.Fatalf("C's namespaces: %+v", show.Namespaces)
	}
}

// A holder whose stored signed refs were tampered with is rejected, the
// replica is unchanged, and the fetch succeeds from an honest holder.
func TestTamperedHolderRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	tam := start(t, fastCfg(shortRoot(t), "tamperer", a))
	src := workRepo(t)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := identity.ParseRepoID(info.RepoID)
	want := git(t, src, "rev-parse", "main")
	testutil.WaitFor(t, "the tamperer to replicate", 20*time.Second, func() bool {
		_, _, stored, _ := tam.store.SignedRefs(repo, a.ID())
		return stored && headOf(t, tam, info.RepoID) == want
	})

	// The tamperer points A's main at another commit in the refs it serves.
	raw, seq, ok, err := tam.store.SignedRefs(repo, a.ID())
	if err != nil || !ok {
		t.Fatal("tamperer has no signed refs", err)
	}
	oid, _ := hex.DecodeString(want)
	parent, _ := hex.DecodeString(git(t, src, "rev-parse", "main~1"))
	i := bytes.Index(raw, oid)
	if i < 0 {
		t.Fatal("oid not found in the encoding")
	}
	forged := bytes.Clone(raw)
	copy(forged[i:], parent)
	// Stored under a seq no honest update will pass, so it stays what the
	// tamperer serves.
	_ = seq
	if _, err := tam.store.PutSignedRefs(repo, a.ID(), 1<<62, forged); err != nil {
		t.Fatal(err)
	}
	// Its replica agrees with the forgery, or its own check (spec/repo.md
	// §5.3) would refuse to serve the namespace.
	fsr, err := wire.UnmarshalSignedRefs(forged)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range fsr.Refs() {
		git(t, tam.replica.Dir(repo), "update-ref", "refs/namespaces/"+replica.Namespace(a.ID())+"/"+r.Name, hex.EncodeToString(r.OID))
	}

	c := start(t, func() Config { c := fastCfg(shortRoot(t), "c", tam, a); c.Replicate = ReplicateNone; return c }())
	c.replica.Follow(repo) // hear of the holders without replicating
	testutil.WaitFor(t, "C to connect to both and learn both holders", 10*time.Second, func() bool {
		return len(c.replica.Holders(repo)) == 2 && c.tr.Peer(tam.ID()) != nil && c.tr.Peer(a.ID()) != nil
	})
	p := c.tr.Peer(tam.ID())
	if p == nil {
		t.Fatal("C is not connected to the tamperer")
	}
	if _, err := c.replica.FetchFrom(ctx, p.ID, repo, nil); err == nil || !strings.Contains(err.Error(), "do not verify") {
		t.Fatalf("fetch from the tamperer: %v", err)
	}
	if _, _, ok, _ := c.store.SignedRefs(repo, a.ID()); ok {
		t.Fatal("C stored refs from the tamperer")
	}
	if bare, err := c.git.OpenBare(c.replica.Dir(repo)); err == nil {
		if refs, _ := bare.Refs(ctx, replica.Namespace(a.ID())); len(refs) != 0 {
			t.Fatalf("C's replica changed: %v", refs)
		}
	}
	// Preferring the tamperer, the sync still ends with A's true refs.
	res, err := c.replica.Sync(ctx, repo, tam.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != a.ID() || headOf(t, c, info.RepoID) != want {
		t.Fatalf("sync: %+v, head %s", res, headOf(t, c, info.RepoID))
	}
}

// A transfer cut in the middle (the serving node stops) leaves the replica
// as it was; the next attempt completes.
func TestInterruptedTransferLeavesReplicaConsistent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	src := bigRepo(t, 4<<20)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := identity.ParseRepoID(info.RepoID)
	b := start(t, fastCfg(shortRoot(t), "b", a))
	testutil.WaitFor(t, "B to replicate", 30*time.Second, func() bool { return headOf(t, b, info.RepoID) != "" })

	c := start(t, func() Config { c := fastCfg(shortRoot(t), "c", b, a); c.Replicate = ReplicateNone; return c }())
	c.replica.Follow(repo) // hear of the holders without replicating
	testutil.WaitFor(t, "C to know the holders", 10*time.Second, func() bool { return len(c.replica.Holders(repo)) == 2 && c.tr.Peer(b.ID()) != nil })
	var once sync.Once
	_, err = c.replica.FetchFrom(ctx, b.ID(), repo, func(done, _ int64, _ string) {
		once.Do(b.cancel) // the server shuts down mid-transfer
	})
	if err == nil {
		t.Fatal("the interrupted fetch succeeded")
	}
	if _, _, ok, _ := c.store.SignedRefs(repo, a.ID()); ok {
		t.Fatal("refs stored after an interrupted transfer")
	}
	if bare, err := c.git.OpenBare(c.replica.Dir(repo)); err == nil {
		refs, _ := bare.Refs(ctx, replica.Namespace(a.ID()))
		if len(refs) != 0 {
			t.Fatalf("refs written after an interrupted transfer: %v", refs)
		}
		if left := gitTemporaries(t, c.replica.Dir(repo)); len(left) != 0 {
			t.Fatalf("temporary files left after an interrupted transfer: %v", left)
		}
	}
	res, err := c.replica.Sync(ctx, repo, a.ID(), nil)
	if err != nil || !res.Updated || headOf(t, c, info.RepoID) != git(t, src, "rev-parse", "main") {
		t.Fatalf("retry: %+v %v", res, err)
	}
}

// A one-commit update moves about what git fetch moves, far below the
// whole repository.
func TestUpdateMovesOnlyWhatChanged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	src := bigRepo(t, 1<<20)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, func() Config { c := fastCfg(shortRoot(t), "b", a); c.Replicate = ReplicateNone; return c }())
	testutil.WaitFor(t, "B to connect to A", 10*time.Second, func() bool { return b.tr.Peer(a.ID()) != nil })
	// B follows nothing: the sync subscribes to the repository and waits
	// for a holder to be announced.
	full, err := b.RepoSync(ctx, rpc.RepoIDParams{RepoID: info.RepoID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Change one line of the text file.
	text, _ := os.ReadFile(filepath.Join(src, "text.txt"))
	head := commit(t, src, "text.txt", strings.Replace(string(text), "line 1000 ", "line one thousand ", 1))
	testutil.WaitFor(t, "A to publish", 10*time.Second, func() bool { return headOf(t, a, info.RepoID) == head })
	update, err := b.RepoSync(ctx, rpc.RepoIDParams{RepoID: info.RepoID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full replication %d bytes, one-commit update %d bytes", full.Bytes, update.Bytes)
	if full.Bytes < 1<<20 {
		t.Fatalf("full transfer of %d bytes is smaller than the content", full.Bytes)
	}
	// git fetch moves a thin pack of a commit, a tree and a delta: a few
	// hundred bytes. Allow 2 KiB.
	if !update.Updated || update.Bytes > 2048 {
		t.Fatalf("one-commit update moved %d bytes (updated=%v)", update.Bytes, update.Updated)
	}
	// Already up to date: nothing moves.
	again, err := b.RepoSync(ctx, rpc.RepoIDParams{RepoID: info.RepoID}, nil)
	if err != nil || again.Updated || again.Bytes != 0 {
		t.Fatalf("second sync: %+v %v", again, err)
	}
}

func mustRepo(t testing.TB, s string) identity.RepoID {
	t.Helper()
	r, err := identity.ParseRepoID(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Ids and paths from outside never name files unchecked.
func TestMaliciousIDsRejected(t *testing.T) {
	ctx := context.Background()
	a := start(t, fastCfg(shortRoot(t), "a"))
	for _, id := range []string{"../../etc/passwd", "did:repo:z../../x", "did:repo:", "z", strings.Repeat("z", 500), "did:repo:zW1/../../x"} {
		if _, err := a.RepoShow(ctx, rpc.RepoIDParams{RepoID: id}); !rpc.IsCode(err, rpc.CodeInvalidParams) {
			t.Errorf("repo id %q: %v", id, err)
		}
		if _, err := a.RepoClone(ctx, rpc.RepoCloneParams{RepoID: id, Path: t.TempDir()}, nil); !rpc.IsCode(err, rpc.CodeInvalidParams) {
			t.Errorf("clone %q: %v", id, err)
		}
	}
	// Every parsed id names a directory directly inside $ROOT/repos.
	k, _ := identity.GenerateKey()
	repo, _ := identity.NewRepoID(make([]byte, 20), k.ID())
	if dir := a.replica.Dir(repo); filepath.Dir(dir) != filepath.Join(a.cfg.Root, "repos") {
		t.Fatalf("repo dir %s escapes the repos directory", dir)
	}
	// A path that is not a repository is refused with a clear error.
	if _, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: t.TempDir()}); !rpc.IsCode(err, rpc.CodeInvalidArgument) {
		t.Errorf("adding a non-repository: %v", err)
	}
}

// A node that replicates only what it chooses hears only of what it
// follows: its peers send it the announcements of followed repositories
// and keep the rest (spec/node.md, subscriptions).
func TestSubscriptionsFilterAnnouncements(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	one, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t), Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	two, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: bigRepo(t, 1<<10), Name: "two"})
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, func() Config { c := fastCfg(shortRoot(t), "b", a); c.Replicate = ReplicateNone; return c }())
	b.replica.Follow(mustRepo(t, one.RepoID))
	testutil.WaitFor(t, "B to hear of the followed repository", 10*time.Second, func() bool {
		return len(b.replica.Holders(mustRepo(t, one.RepoID))) == 1
	})
	// Both were in the one snapshot A answers a subscription with: the
	// other one was left out, not merely late.
	if h := b.replica.Holders(mustRepo(t, two.RepoID)); len(h) != 0 {
		t.Fatalf("B heard of a repository it does not follow (holders %v)", h)
	}
}

// A repository announced only by nodes this node never reached is listed
// as "heard of", not as a real repository, and forgotten after an hour;
// one whose holder is reachable is listed as usual.
func TestUnreachableAnnouncementsAreHeardOf(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := start(t, func() Config {
		c := fastCfg(shortRoot(t), "b")
		c.Replicate, c.ResyncInterval = ReplicateNone, 100*time.Millisecond
		return c
	}())
	_, p := rawPeer(t, b)
	announce := func(age time.Duration) identity.RepoID {
		ghost, _ := identity.GenerateKey()
		repo, _ := identity.NewRepoID(bytes.Repeat([]byte{byte(age)}, 20), ghost.ID())
		b.replica.Follow(repo)
		env, _ := wire.Sign(ghost, time.Now().Add(-age), &wire.RepoAnnouncement{Repo: repo})
		raw, _ := env.Marshal()
		if err := p.SendDatagram(transport.DatagramGossip, raw); err != nil {
			t.Fatal(err)
		}
		return repo
	}
	fresh := announce(time.Minute)
	testutil.WaitForState(t, "B to list the ghost repository as heard of", 10*time.Second, func() (bool, string) {
		info, err := b.repoInfo(ctx, fresh)
		return err == nil && info.Replica == rpc.ReplicaHeardOf, info.Replica
	})
	old := announce(61 * time.Minute)
	testutil.WaitFor(t, "B to hear of the old ghost", 10*time.Second, func() bool { return len(b.replica.Holders(old)) == 1 })
	testutil.WaitFor(t, "B to forget it", 10*time.Second, func() bool { return len(b.replica.Holders(old)) == 0 })
	if len(b.replica.Holders(fresh)) != 1 {
		t.Fatal("the fresh announcement was forgotten too")
	}

	// A real repository whose holder B is connected to is not a ghost.
	a := start(t, fastCfg(shortRoot(t), "a"))
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	real := mustRepo(t, info.RepoID)
	b.replica.Follow(real)
	if _, err := b.NodeConnect(ctx, rpc.ConnectParams{Addr: a.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitForState(t, "B to list the real one as not replicated", 10*time.Second, func() (bool, string) {
		info, err := b.repoInfo(ctx, real)
		return err == nil && info.Replica == rpc.ReplicaMissing, info.Replica
	})
}

// Replication shows in the event stream: the owner's publication, the
// replica's sync starting and finishing (bytes, from whom), and a sync that
// fails, with its reason.
func TestSyncAndPublishEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	aEvents, stopA := a.Subscribe([]string{rpc.EventRepoPublished})
	defer stopA()
	b := start(t, fastCfg(shortRoot(t), "b", a))
	bEvents, stopB := b.Subscribe([]string{rpc.EventRepoSyncStarted, rpc.EventRepoSyncFinished, rpc.EventRepoSyncFailed})
	defer stopB()
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	next := func(ch <-chan rpc.Event, what string) rpc.Event {
		t.Helper()
		select {
		case ev := <-ch:
			return ev
		case <-ctx.Done():
			t.Fatalf("no %s event", what)
		}
		return rpc.Event{}
	}
	if ev := next(aEvents, "publication"); ev.Repo != info.RepoID || ev.DID != a.ID().String() {
		t.Fatalf("publication event %+v", ev)
	}
	if ev := next(bEvents, "sync start"); ev.Type != rpc.EventRepoSyncStarted || ev.Repo != info.RepoID {
		t.Fatalf("first sync event %+v", ev)
	}
	if ev := next(bEvents, "sync end"); ev.Type != rpc.EventRepoSyncFinished || ev.Bytes == 0 || ev.DID != a.ID().String() || ev.Alias != "a" {
		t.Fatalf("sync end event %+v", ev)
	}
	unknown := mustRepo(t, "did:repo:zW1o6aXD9tvgkkVWky3MKGE3QxxZtAxNTH7sJoCS2wPRDJX")
	b.replica.Sync(ctx, unknown, identity.NodeID{}, nil)
	for {
		ev := next(bEvents, "sync failure")
		if ev.Type == rpc.EventRepoSyncFailed && ev.Repo == unknown.String() {
			if !strings.Contains(ev.Reason, "no node is known to hold") {
				t.Fatalf("failure reason %q", ev.Reason)
			}
			break
		}
	}
}

// repo list tells the truth about working copies: up to date, behind,
// ahead, diverged, missing, and unreadable (with the reason).
func TestCloneStates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	src := workRepo(t)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if _, err := a.RepoClone(ctx, rpc.RepoCloneParams{RepoID: info.RepoID, Path: clone}, nil); err != nil {
		t.Fatal(err)
	}
	state := func() rpc.CloneStatus {
		in, err := a.repoInfo(ctx, mustRepo(t, info.RepoID))
		if err != nil || len(in.Clones) != 1 {
			t.Fatalf("repo info: %+v, %v", in, err)
		}
		return in.Clones[0]
	}
	want := func(status, why string) {
		t.Helper()
		testutil.WaitForState(t, "the clone to be "+status+" ("+why+")", 10*time.Second, func() (bool, string) {
			st := state()
			return st.Status == status, st.Status + " " + st.Reason
		})
	}
	want(rpc.CloneUpToDate, "just cloned")
	commit(t, src, "upstream.txt", "1\n")
	want(rpc.CloneBehind, "the owner committed")
	if _, err := a.RepoPull(ctx, rpc.RepoPullParams{Path: clone}, nil); err != nil {
		t.Fatal(err)
	}
	want(rpc.CloneUpToDate, "pulled")
	commit(t, clone, "local.txt", "mine\n")
	want(rpc.CloneAhead, "a local commit")
	commit(t, src, "upstream.txt", "2\n")
	want(rpc.CloneDiverged, "both committed")
	os.WriteFile(filepath.Join(clone, ".git", "HEAD"), []byte("garbage\n"), 0o644)
	want(rpc.CloneError, "its HEAD is broken")
	if st := state(); st.Reason == "" {
		t.Fatal("an unreadable clone without a reason")
	}
	os.RemoveAll(clone)
	want(rpc.CloneMissing, "deleted")
}

// repo remove: the owner stops sharing and a replica lets go; a third node
// no longer sees either as a holder, the replica's disk is freed, and
// unseeding one's own repository points to remove.
func TestRemoveWithdraws(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	b := start(t, fastCfg(shortRoot(t), "b", a))
	c := start(t, fastCfg(shortRoot(t), "c", a, b))
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	repo := mustRepo(t, info.RepoID)
	holders := func(n *running) int { return len(n.replica.Holders(repo)) }
	testutil.WaitFor(t, "C to see three holders", 20*time.Second, func() bool { return holders(c) == 3 })

	if _, err := a.RepoSeed(ctx, rpc.RepoIDParams{RepoID: info.RepoID}, false); !rpc.IsCode(err, rpc.CodeConflict) || !strings.Contains(err.Error(), "repo remove") {
		t.Fatalf("unseeding one's own repository: %v", err)
	}
	if _, err := a.RepoRemove(ctx, rpc.RepoRemoveParams{RepoID: info.RepoID, KeepReplica: true}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "C to stop listing A as a holder", 10*time.Second, func() bool {
		return !slices.Contains(c.replica.Holders(repo), a.ID())
	})
	if _, err := os.Stat(a.replica.Dir(repo)); err != nil {
		t.Fatalf("A kept its replica on request, but: %v", err)
	}
	if a.replica.Seeded(repo) {
		t.Fatal("A still seeds what it removed")
	}

	if _, err := b.RepoRemove(ctx, rpc.RepoRemoveParams{RepoID: info.RepoID}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "C to stop listing B as a holder", 10*time.Second, func() bool {
		return !slices.Contains(c.replica.Holders(repo), b.ID())
	})
	if _, err := os.Stat(b.replica.Dir(repo)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("B's replica is still on disk: %v", err)
	}
	if b.replica.Seeded(repo) {
		t.Fatal("B (replicating every announced repository) would fetch what it removed again")
	}
	if list, _ := b.RepoList(ctx); slices.ContainsFunc(list, func(r rpc.RepoInfo) bool { return r.RepoID == info.RepoID && r.Replica != rpc.ReplicaMissing }) {
		t.Fatalf("B still lists what it removed as held: %+v", list)
	}
	if _, err := b.RepoRemove(ctx, rpc.RepoRemoveParams{RepoID: "did:repo:zW1o6aXD9tvgkkVWky3MKGE3QxxZtAxNTH7sJoCS2wPRDJX"}); !rpc.IsCode(err, rpc.CodeNotFound) {
		t.Fatalf("removing an unknown repository: %v", err)
	}
}

// repo show says which holders hold the creator's newest refs and how far
// the others lag; repo list counts the ones in sync.
func TestHoldersInSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	b := start(t, fastCfg(shortRoot(t), "b", a))
	c := start(t, fastCfg(shortRoot(t), "c", a, b))
	src := workRepo(t)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	states := func() map[string]rpc.HolderStatus {
		out := map[string]rpc.HolderStatus{}
		d, err := c.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID})
		if err != nil {
			return out // not heard of yet
		}
		for _, h := range d.HolderStates {
			out[h.Node] = h
		}
		return out
	}
	testutil.WaitForState(t, "C to see all three holders in sync", 20*time.Second, func() (bool, string) {
		st := states()
		return len(st) == 3 && st[a.ID().String()].InSync && st[b.ID().String()].InSync && st[c.ID().String()].InSync, fmt.Sprint(st)
	})
	b.stop(t) // B misses the next commit
	commit(t, src, "next.txt", "next\n")
	testutil.WaitForState(t, "C to see B lag behind", 20*time.Second, func() (bool, string) {
		st := states()
		lagging := st[b.ID().String()]
		return st[a.ID().String()].InSync && st[c.ID().String()].InSync && !lagging.InSync && lagging.Known && lagging.LagSeconds > 0, fmt.Sprint(st)
	})
	list, err := c.RepoList(ctx)
	if err != nil || len(list) != 1 || list[0].HoldersInSync != 2 {
		t.Fatalf("repo list: %+v, %v; want 2 holders in sync", list, err)
	}
}

// A repository a node only heard of is named: announcements carry the
// document's name and description.
func TestAnnouncedRepositoriesAreNamed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	b := start(t, func() Config { c := fastCfg(shortRoot(t), "b", a); c.Replicate = ReplicateNone; return c }())
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t), Name: "named", Description: "told by gossip"})
	if err != nil {
		t.Fatal(err)
	}
	b.replica.Follow(mustRepo(t, info.RepoID)) // hear of it without replicating it
	testutil.WaitForState(t, "B to list the repository by name", 10*time.Second, func() (bool, string) {
		in, err := b.repoInfo(ctx, mustRepo(t, info.RepoID))
		return err == nil && in.Replica == rpc.ReplicaMissing && in.Name == "named" && in.Description == "told by gossip", fmt.Sprintf("%+v %v", in, err)
	})
}

// Sharing the same history again with another description signs a new
// identity version and says so.
func TestReAddUpdatesTheIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "a"))
	src := workRepo(t)
	if _, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src, Description: "first"}); err != nil {
		t.Fatal(err)
	}
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src, Description: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Description != "second" || !info.Updated || info.DocVersion != 2 || info.LastError != "" {
		t.Fatalf("re-adding with a new description: %q, updated %v, version %d, warning %q", info.Description, info.Updated, info.DocVersion, info.LastError)
	}
	again, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil || again.LastError != "" || again.Updated || again.DocVersion != 2 {
		t.Fatalf("re-adding as it was: %v, updated %v, warning %q", err, again.Updated, again.LastError)
	}
}
