package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

func gitIn(tb testing.TB, dir string, args ...string) string { return testutil.Git(tb, dir, args...) }

type repoJSON struct {
	RepoID  string `json:"repo_id"`
	Name    string `json:"name"`
	Replica string `json:"replica"`
	Head    string `json:"head"`
	Seeded  bool   `json:"seeded"`
	Clones  []struct {
		Path   string `json:"path"`
		Branch string `json:"branch"`
		Status string `json:"status"`
	} `json:"clones"`
}

func repoOn(tb testing.TB, root, id string) (repoJSON, bool, string) {
	var list []repoJSON
	if err := mecliJSON(tb, &list, "--root", root, "repo", "list"); err != nil {
		return repoJSON{}, false, err.Error()
	}
	for _, r := range list {
		if r.RepoID == id {
			return r, true, ""
		}
	}
	return repoJSON{}, false, "not listed"
}

// refsOf lists "name oid" for the branches and tags of a repository, with
// remote-tracking branches of a clone renamed to branches.
func refsOf(tb testing.TB, dir string, remote bool) string {
	pattern := "refs/heads/"
	if remote {
		pattern = "refs/remotes/origin/"
	}
	out := gitIn(tb, dir, "for-each-ref", "--format=%(refname) %(objectname)", pattern, "refs/tags/")
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "refs/remotes/origin/HEAD ") {
			continue
		}
		lines = append(lines, strings.Replace(l, "refs/remotes/origin/", "refs/heads/", 1))
	}
	return strings.Join(lines, "\n")
}

// TestSeedWalkthrough follows the seed README's two-node example with our
// tools, step for step: identities, node1, node2 bootstrapping to node1,
// repo add on node1, automatic replication on node2, repo list, repo clone,
// a new commit on node1 arriving by itself, repo pull.
func TestSeedWalkthrough(t *testing.T) {
	needBinaries(t)
	r1, r2 := tempRoot(t), tempRoot(t)
	authInit(t, r1)
	authInit(t, r2)
	n1 := startNode1(t, r1, "node1")
	startNode2(t, r2, "node2", n1.stdoutField(t, "address"))

	// A repository with history, a second branch and an annotated tag.
	src := filepath.Join(t.TempDir(), "tiny")
	os.MkdirAll(src, 0o755)
	gitIn(t, src, "init", "-q", "-b", "main")
	for _, f := range []string{"README.md", "a.txt", "b.txt"} {
		os.WriteFile(filepath.Join(src, f), []byte(f+"\n"), 0o644)
		gitIn(t, src, "add", f)
		gitIn(t, src, "commit", "-q", "-m", "add "+f)
	}
	gitIn(t, src, "branch", "dev", "HEAD~1")
	gitIn(t, src, "tag", "-a", "v1", "-m", "release 1")

	var added repoJSON
	if err := mecliJSON(t, &added, "--root", r1, "repo", "add", "--path", src, "--description", "Tiny"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(added.RepoID, "did:repo:z") || added.Name != "tiny" {
		t.Fatalf("repo add printed %+v", added)
	}

	head := gitIn(t, src, "rev-parse", "main")
	testutil.WaitForState(t, "node2 to replicate the repository by itself", 20*time.Second, func() (bool, string) {
		r, ok, why := repoOn(t, r2, added.RepoID)
		return ok && r.Replica == "up-to-date" && r.Head == head, why + " " + r.Replica
	})
	list := runCmd(t, mecliBin, "--root", r2, "repo", "list")
	if list.code != 0 || !strings.Contains(list.stdout, "tiny") || !strings.Contains(list.stdout, "Tiny") {
		t.Fatalf("repo list on node2: %+v", list)
	}

	clone := filepath.Join(t.TempDir(), "tiny-clone")
	res := runCmd(t, mecliBin, "--root", r2, "repo", "clone", "--repo-id", added.RepoID, "--output", clone)
	if res.code != 0 {
		t.Fatalf("repo clone: %+v", res)
	}
	if got, want := refsOf(t, clone, true), refsOf(t, src, false); got != want {
		t.Fatalf("clone refs differ from the original:\n got %s\nwant %s", got, want)
	}
	if gitIn(t, clone, "rev-list", "--count", "HEAD") != "3" {
		t.Fatal("clone history differs")
	}

	// A new commit on node1's working repository arrives by itself.
	os.WriteFile(filepath.Join(src, "README.md"), []byte("updated\n"), 0o644)
	gitIn(t, src, "commit", "-q", "-am", "update")
	newHead := gitIn(t, src, "rev-parse", "HEAD")
	testutil.WaitForState(t, "the new commit to reach node2", 20*time.Second, func() (bool, string) {
		r, ok, why := repoOn(t, r2, added.RepoID)
		behind := ok && len(r.Clones) == 1 && r.Clones[0].Status == "behind"
		return ok && r.Head == newHead && behind, why
	})
	pull := runCmd(t, mecliBin, "--root", r2, "repo", "pull", "--repo-id", added.RepoID, "--path", clone)
	if pull.code != 0 {
		t.Fatalf("repo pull: %+v", pull)
	}
	if got := gitIn(t, clone, "rev-parse", "HEAD"); got != newHead {
		t.Fatalf("after pull the clone is at %s, want %s", got, newHead)
	}
	if r, _, _ := repoOn(t, r2, added.RepoID); len(r.Clones) != 1 || r.Clones[0].Status != "up-to-date" {
		t.Fatalf("after pull: %+v", r)
	}
}

// TestDemo runs `make demo`'s program against the built binaries.
func TestDemo(t *testing.T) {
	needBinaries(t)
	dir := filepath.Dir(medBin)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goBin, "build", "-o", filepath.Join(dir, "medemo"), "../medemo").CombinedOutput(); err != nil {
		t.Fatalf("building medemo: %v\n%s", err, out)
	}
	res := runCmd(t, filepath.Join(dir, "medemo"), "--bin", dir)
	if res.code != 0 || !strings.Contains(res.stdout, "Done in") {
		t.Fatalf("demo failed (exit %d):\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}
