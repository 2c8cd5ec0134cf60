package replica

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
)

// packedClient makes an owner and a client whose replica got several
// fetches (a pack each), with the client's Serve running (the repacker).
func packedClient(t *testing.T, fetches int, serve bool) (owner, client *node, repo identity.RepoID, repacked chan identity.RepoID) {
	t.Helper()
	repacked = make(chan identity.RepoID, 16)
	owner, client, repo, _ = pair(t, 0, func(c *Config) {
		c.RepackPacks = fetches + 10 // no repack while the packs pile up
		c.OnRepacked = func(r identity.RepoID) { repacked <- r }
	})
	st := owner.state(repo)
	for i := range fetches {
		os.WriteFile(filepath.Join(st.Path, "f"+strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644)
		git(t, st.Path, "add", ".")
		git(t, st.Path, "commit", "-q", "-m", "c"+strconv.Itoa(i))
		work, err := owner.git.ReadWork(context.Background(), st.Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := owner.publishWork(context.Background(), repo, st.Path, work); err != nil {
			t.Fatal(err)
		}
		if _, err := fetch(t, client, owner, repo); err != nil {
			t.Fatal(err)
		}
	}
	if packs, _ := mustBare(t, client, repo).Packs(); len(packs) != fetches {
		t.Fatalf("%d packs after %d fetches", len(packs), fetches)
	}
	client.cfg.RepackPacks = 2
	if !serve {
		return owner, client, repo, repacked
	}
	runService(t, client.Service)
	return owner, client, repo, repacked
}

// After its first fetch a replica gets, in the background, a bitmap of its
// pack, and serves full fetches with it.
func TestFirstFetchGetsABitmap(t *testing.T) {
	owner, client, repo, _ := pair(t, 0, func(c *Config) { c.BitmapMinPack = 1 })
	runService(t, client.Service)
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the replica's bitmap", 30*time.Second, func() bool { return !mustBare(t, client, repo).BitmapDue(1) })
	third := newNode(t, &pipeNet{t: t, server: client.Service}, nil)
	if _, err := fetch(t, third, client, repo); err != nil {
		t.Fatal(err)
	}
	git(t, third.Dir(repo), "fsck", "--strict", "--no-dangling")
}

func TestRepackWaitsForReaders(t *testing.T) {
	_, client, repo, repacked := packedClient(t, 4, false)
	ctx := context.Background()
	release := client.Hold(repo) // a git-remote-mega serving upload-pack
	if client.repackIfDue(ctx, repo, true) != repackBusy {
		t.Fatal("the repack did not wait for the replica's reader")
	}
	if packs, _ := mustBare(t, client, repo).Packs(); len(packs) != 4 || len(repacked) > 0 {
		t.Fatalf("the held replica has %d packs, want its 4", len(packs))
	}
	release()
	if client.repackIfDue(ctx, repo, true) != repackDone || len(repacked) != 1 {
		t.Fatal("no repack once the reader was done")
	}
	if packs, _ := mustBare(t, client, repo).Packs(); len(packs) >= 4 {
		t.Fatalf("%d packs after the repack", len(packs))
	}
	git(t, client.Dir(repo), "fsck", "--strict", "--no-dangling")
}

func TestCloneAndServeDuringRepack(t *testing.T) {
	_, client, repo, repacked := packedClient(t, 6, true)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				dest := filepath.Join(t.TempDir(), "c"+strconv.Itoa(w)+"-"+strconv.Itoa(i))
				if _, _, err := client.Clone(context.Background(), Target{Repo: repo}, dest, func(Target) string { return "mega://x" }, nil); err != nil {
					errs <- err
					return
				}
				cmd := exec.Command("git", "fsck", "--strict", "--no-dangling")
				cmd.Dir = dest
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("git fsck in %s: %v\n%s", dest, err, out)
					return
				}
			}
		})
	}
	// New nodes fetch everything from the client while it repacks.
	for range 3 {
		client.repackSoon(repo)
		third := newNode(t, &pipeNet{t: t, server: client.Service}, nil)
		if _, err := fetch(t, third, client, repo); err != nil {
			t.Fatal(err)
		}
		git(t, third.Dir(repo), "fsck", "--strict", "--no-dangling")
	}
	testutil.WaitFor(t, "a repack", 60*time.Second, func() bool { return len(repacked) > 0 })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	git(t, client.Dir(repo), "fsck", "--strict", "--no-dangling")
}

// A reader that comes while a repack runs stops it instead of waiting for
// it: here the repack would take a minute (its git sleeps first), and
// holding the replica takes moments; the packs stay as they were.
func TestReaderStopsRepack(t *testing.T) {
	_, client, repo, repacked := packedClient(t, 4, false)
	bin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	started := filepath.Join(t.TempDir(), "started")
	script := filepath.Join(t.TempDir(), "git")
	body := "#!/bin/sh\n[ \"$1\" = repack ] && { touch " + started + "; sleep 60; }\nexec " + bin + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	client.git.Bin = script // before any concurrent use
	result := make(chan repackOutcome, 1)
	go func() { result <- client.repackIfDue(context.Background(), repo, true) }()
	testutil.WaitFor(t, "the repack to start", 30*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	t0 := time.Now()
	release := client.Hold(repo)
	waited := time.Since(t0)
	release()
	if waited > 20*time.Second {
		t.Fatalf("the reader waited %v for the repack", waited)
	}
	if <-result != repackStopped || len(repacked) > 0 {
		t.Fatal("the stopped repack reported it was done")
	}
	if packs, _ := mustBare(t, client, repo).Packs(); len(packs) != 4 {
		t.Fatalf("%d packs after the stopped repack, want the 4", len(packs))
	}
	if tmp, _ := filepath.Glob(filepath.Join(client.Dir(repo), "objects", "pack", ".tmp-*")); len(tmp) > 0 {
		t.Fatalf("left behind: %v", tmp)
	}
}
