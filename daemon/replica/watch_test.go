package replica

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// serveOwner shares a working repository from a node whose periodic scan
// is an hour away, and runs the node's Serve: only filesystem
// notifications can make it publish in time.
func serveOwner(t *testing.T) (*node, string, func(ref string) string) {
	t.Helper()
	owner := newNode(t, &pipeNet{t: t}, func(c *Config) { c.WatchInterval = time.Hour })
	work := workRepo(t, 0)
	repo, _, err := owner.Share(context.Background(), work, "work", "")
	if err != nil {
		t.Fatal(err)
	}
	runService(t, owner.Service)
	published := func(ref string) string {
		refs, _ := mustBare(t, owner, repo).Refs(context.Background(), Namespace(owner.key.ID()))
		for _, r := range refs {
			if r.Name == ref {
				return r.OID
			}
		}
		return ""
	}
	return owner, work, published
}

func TestWatcherPublishesCommitWithoutScan(t *testing.T) {
	_, work, published := serveOwner(t)
	wait := func(ref, want string) {
		t.Helper()
		testutil.WaitForState(t, ref+" at "+want+" to be published", 10*time.Second, func() (bool, string) {
			got := published(ref)
			return got == want, got
		})
	}
	for _, name := range []string{"b.txt", "c.txt"} {
		os.WriteFile(filepath.Join(work, name), []byte(name), 0o644)
		git(t, work, "add", name)
		git(t, work, "commit", "-q", "-m", "add "+name)
		wait("refs/heads/main", git(t, work, "rev-parse", "HEAD"))
	}
	// A branch in a new directory under refs/heads, then refs that exist
	// only in packed-refs.
	git(t, work, "branch", "topic/x", "HEAD~1")
	wait("refs/heads/topic/x", git(t, work, "rev-parse", "HEAD~1"))
	git(t, work, "pack-refs", "--all")
	git(t, work, "update-ref", "refs/heads/topic/x", "HEAD")
	wait("refs/heads/topic/x", git(t, work, "rev-parse", "HEAD"))
	git(t, work, "branch", "-D", "topic/x")
	wait("refs/heads/topic/x", "")
}

func TestWatcherReportsRemovedWorkRepo(t *testing.T) {
	owner, work, _ := serveOwner(t)
	repos := owner.Repos()
	if len(repos) != 1 {
		t.Fatalf("repos %v", repos)
	}
	if info, err := owner.Info(context.Background(), repos[0]); err != nil || info.Replica != ReplicaUpToDate {
		t.Fatalf("before: %+v %v", info.Replica, err)
	}
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	testutil.WaitForState(t, "the removed working repository to be reported", 10*time.Second, func() (bool, string) {
		info, _ := owner.Info(context.Background(), repos[0])
		return info.Replica == ReplicaWorkError && info.LastError != "", info.LastError
	})
}
