package main

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/internal/testutil"
)

// replicaDir is the bare replica of repo (did:repo:z…) under a node root.
func replicaDir(root, repo string) string {
	return filepath.Join(root, "repos", strings.TrimPrefix(repo, "did:repo:")+".git")
}

// temporaries lists what interrupted git operations left in the replicas
// under root (every kind gitstore.IsTemporary names), with their sizes.
func temporaries(tb testing.TB, root string) (found []string, bytes int64) {
	tb.Helper()
	repos := filepath.Join(root, "repos")
	entries, _ := os.ReadDir(repos)
	for _, e := range entries {
		dir := filepath.Join(repos, e.Name())
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(dir, path)
			if rel == "." {
				return nil
			}
			if gitstore.IsTemporary(filepath.ToSlash(rel)) {
				found = append(found, filepath.Join(e.Name(), rel))
			}
			if d.Type().IsRegular() && len(found) > 0 && strings.HasPrefix(path, filepath.Join(dir, "objects", "incoming-")) {
				if info, err := d.Info(); err == nil {
					bytes += info.Size()
				}
			}
			return nil
		})
	}
	return found, bytes
}

// addRandomFile commits size random bytes (seeded) to the working
// repository dir and returns the new head.
func addRandomFile(tb testing.TB, dir, name string, size int, seed uint64) string {
	tb.Helper()
	buf := make([]byte, size)
	rnd := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	rnd.Read(buf)
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		tb.Fatal(err)
	}
	gitIn(tb, dir, "add", name)
	gitIn(tb, dir, "commit", "-q", "-m", "add "+name)
	return gitIn(tb, dir, "rev-parse", "HEAD")
}

type repoStatusJSON struct {
	RepoID    string `json:"repo_id"`
	Replica   string `json:"replica"`
	Head      string `json:"head"`
	LastError string `json:"last_error"`
}

func repoStatus(tb testing.TB, root, id string) (repoStatusJSON, string) {
	var list []repoStatusJSON
	if err := mecliJSON(tb, &list, "--root", root, "repo", "list"); err != nil {
		return repoStatusJSON{}, err.Error()
	}
	for _, r := range list {
		if r.RepoID == id {
			return r, ""
		}
	}
	return repoStatusJSON{}, "not listed"
}

// A node killed with SIGKILL in the middle of a sync sweeps what the cut
// transfer left when it starts again, and finishes the sync at once, not
// on the next periodic pass (60 s).
func TestKillMidSyncResumes(t *testing.T) {
	needBinaries(t)
	r1, r2 := tempRoot(t), tempRoot(t)
	authInit(t, r1)
	authInit(t, r2)
	n1 := startNode1(t, r1, "node1")
	addr1 := n1.stdoutField(t, "address")
	n2 := startNode1(t, r2, "node2", "--bootstrap", addr1)

	src := newSourceRepo(t)
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", r1, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	head := gitIn(t, src, "rev-parse", "main")
	testutil.WaitForState(t, "node2 to replicate the small repository", 20*time.Second, func() (bool, string) {
		r, why := repoStatus(t, r2, added.RepoID)
		return r.Replica == "up-to-date" && r.Head == head, why + " " + r.Replica
	})

	// A big commit: node2 starts fetching it; kill it while the pack comes.
	big := addRandomFile(t, src, "big.bin", 24<<20, 1)
	var caught int64
	testutil.WaitForState(t, "node2 to be receiving the big pack", 30*time.Second, func() (bool, string) {
		found, n := temporaries(t, r2)
		caught = n
		return n > 0, strings.Join(found, " ")
	})
	n2.signal(t, os.Kill)
	n2.wait(t, 10*time.Second)
	left, n := temporaries(t, r2)
	if len(left) == 0 {
		t.Fatal("the kill left no temporary files: the test did not cut a transfer")
	}
	t.Logf("killed node2 with %d bytes in %v (seen %d bytes before the kill)", n, left, caught)

	start := time.Now()
	n2 = startNode1(t, r2, "node2", "--bootstrap", addr1)
	n2.stdoutField(t, "address")
	// The killed transfer's files are gone (the resumed sync may have
	// begun files of its own by now).
	now, _ := temporaries(t, r2)
	if stale := slices.DeleteFunc(slices.Clone(left), func(f string) bool { return !slices.Contains(now, f) }); len(stale) > 0 {
		t.Fatalf("after the restart, the killed transfer's temporary files remain: %v", stale)
	}
	testutil.WaitForState(t, "node2 to finish the interrupted sync", 20*time.Second, func() (bool, string) {
		r, why := repoStatus(t, r2, added.RepoID)
		return r.Replica == "up-to-date" && r.Head == big, why + " " + r.Replica + " " + r.Head
	})
	t.Logf("the interrupted sync finished %v after the restart", time.Since(start))
	gitIn(t, replicaDir(r2, added.RepoID), "fsck", "--no-progress")
}

// A repository bigger than --replicate-max is not replicated by the
// policy: the fetch is cut, nothing stays, repo list says why, and the
// node replicates it once it is chosen with repo seed.
func TestReplicateMaxCutsBigRepository(t *testing.T) {
	needBinaries(t)
	r1, r2 := tempRoot(t), tempRoot(t)
	authInit(t, r1)
	authInit(t, r2)
	n1 := startNode1(t, r1, "node1")
	startNode1(t, r2, "node2", "--bootstrap", n1.stdoutField(t, "address"), "--replicate-max", "1")

	src := newSourceRepo(t)
	head := addRandomFile(t, src, "big.bin", 3<<20, 2)
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", r1, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	testutil.WaitForState(t, "node2 to report the budget", 20*time.Second, func() (bool, string) {
		r, why := repoStatus(t, r2, added.RepoID)
		return strings.Contains(r.LastError, "over budget"), why + " " + r.LastError
	})
	if _, err := os.Stat(replicaDir(r2, added.RepoID)); !os.IsNotExist(err) {
		t.Fatalf("a replica directory was left behind (%v)", err)
	}
	if left, _ := temporaries(t, r2); len(left) > 0 {
		t.Fatalf("temporary files remain: %v", left)
	}
	if r := runCmd(t, mecliBin, "--root", r2, "repo", "seed", added.RepoID); r.code != 0 {
		t.Fatalf("repo seed: %+v", r)
	}
	testutil.WaitForState(t, "node2 to replicate the chosen repository", 20*time.Second, func() (bool, string) {
		r, why := repoStatus(t, r2, added.RepoID)
		return r.Replica == "up-to-date" && r.Head == head && r.LastError == "", why + " " + r.Replica + " " + r.LastError
	})
}

// A middle node whose replica was tampered with on disk (an evil branch,
// a moved main) does not serve it to git-remote-mega, says so, and repairs
// it; repo verify reports and repairs the same.
func TestTamperedReplicaNotServed(t *testing.T) {
	needBinaries(t)
	r1, r2 := tempRoot(t), tempRoot(t)
	did1 := authInit(t, r1)
	authInit(t, r2)
	n1 := startNode1(t, r1, "node1")
	startNode1(t, r2, "node2", "--bootstrap", n1.stdoutField(t, "address"))
	src := newSourceRepo(t)
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", r1, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	head := gitIn(t, src, "rev-parse", "main")
	testutil.WaitForState(t, "node2 to replicate", 20*time.Second, func() (bool, string) {
		r, why := repoStatus(t, r2, added.RepoID)
		return r.Replica == "up-to-date" && r.Head == head, why + " " + r.Replica
	})
	url := "mega://" + strings.TrimPrefix(added.RepoID, "did:repo:")
	signed := mustMegaGit(t, r2, t.TempDir(), "ls-remote", url)

	dir := replicaDir(r2, added.RepoID)
	ns := "refs/namespaces/" + strings.TrimPrefix(did1, "did:key:") + "/refs/heads/"
	gitIn(t, dir, "update-ref", ns+"evil", head+"~2")
	gitIn(t, dir, "update-ref", ns+"main", head+"~1")

	r := megaGit(t, r2, t.TempDir(), "ls-remote", url)
	if r.code == 0 || strings.Contains(r.stdout, "evil") || !strings.Contains(r.stderr, "differed from its signed refs") {
		t.Fatalf("ls-remote of the tampered replica: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if st, _ := repoStatus(t, r2, added.RepoID); !strings.Contains(st.LastError, "refs/heads/evil") {
		t.Fatalf("last error %q, want the evil branch named", st.LastError)
	}
	if got := mustMegaGit(t, r2, t.TempDir(), "ls-remote", url); got != signed {
		t.Fatalf("after the repair ls-remote shows\n%s\nwant the signed refs\n%s", got, signed)
	}

	// repo verify finds and repairs the same.
	gitIn(t, dir, "update-ref", ns+"evil", head)
	v := runCmd(t, mecliBin, "--root", r2, "repo", "verify")
	if v.code != 1 || !strings.Contains(v.stdout, "FAILED") || !strings.Contains(v.stdout, "unsigned refs/heads/evil") {
		t.Fatalf("repo verify of a tampered replica: %+v", v)
	}
	var res struct {
		OK      bool `json:"ok"`
		Checked int  `json:"checked"`
	}
	if err := mecliJSON(t, &res, "--root", r2, "repo", "verify", added.RepoID); err != nil || !res.OK || res.Checked != 1 {
		t.Fatalf("repo verify after the repair: %+v, %v", res, err)
	}
}
