package main

// End-to-end tests of git-remote-mega: plain git (clone, ls-remote, pull,
// push) on mega:// URLs against real daemons. TestMain put the helper it
// built first on PATH; each git command gets MEGAENGINE_ROOT to pick the
// node it talks to, as a user's shell would.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
)

// megaGit runs git in dir with MEGAENGINE_ROOT=root (at most 60 s) and a
// fixed identity, and returns what it did.
func megaGit(tb testing.TB, root, dir string, args ...string) result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MEGAENGINE_ROOT="+root, "LC_ALL=C", "LANGUAGE=C", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org",
		"GIT_CONFIG_GLOBAL=/dev/null")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := errors.AsType[*exec.ExitError](err); err != nil && !ok {
		tb.Fatalf("running git %v: %v", args, err)
	}
	checkHelperOutput(tb, args, stderr.String())
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// mustMegaGit is megaGit for commands that must succeed; it returns stdout.
func mustMegaGit(tb testing.TB, root, dir string, args ...string) string {
	tb.Helper()
	r := megaGit(tb, root, dir, args...)
	if r.code != 0 {
		tb.Fatalf("git %v in %s (root %s): exit %d\nstdout:\n%s\nstderr:\n%s", args, dir, root, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// checkHelperOutput fails on what a user must never see from the helper:
// a Go panic or stack trace, or a data race report.
func checkHelperOutput(tb testing.TB, args []string, stderr string) {
	tb.Helper()
	for _, bad := range []string{"panic:", "goroutine ", "WARNING: DATA RACE", ".go:"} {
		if strings.Contains(stderr, bad) {
			tb.Errorf("git %v printed %q:\n%s", args, bad, stderr)
		}
	}
}

// megaLines are the lines of stderr the helper wrote (they all say "mega: ").
func megaLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "mega: ") {
			out = append(out, l)
		}
	}
	return out
}

// oneFatal checks that a failed git command exited non-zero with exactly one
// line from the helper, a fatal one containing want.
func oneFatal(tb testing.TB, what string, r result, want string) {
	tb.Helper()
	lines := megaLines(r.stderr)
	if r.code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "fatal: mega: ") || !strings.Contains(lines[0], want) {
		tb.Fatalf("%s: exit %d; want non-zero and one line \"fatal: mega: …%s…\"; stderr:\n%s", what, r.code, want, r.stderr)
	}
}

type namespaceJSON struct {
	Node string `json:"node"`
	Seq  uint64 `json:"seq"`
	Refs []struct {
		Name string `json:"name"`
		OID  string `json:"oid"`
	} `json:"refs"`
}

// namespaceRefs returns node's signed refs of repo as root's daemon holds
// them ("name oid" lines, sorted), and its seq (0: none).
func namespaceRefs(tb testing.TB, root, repo, node string) (string, uint64, error) {
	var d struct {
		Namespaces []namespaceJSON `json:"namespaces"`
	}
	if err := mecliJSON(tb, &d, "--root", root, "repo", "show", repo); err != nil {
		return "", 0, err
	}
	for _, ns := range d.Namespaces {
		if ns.Node == node {
			var lines []string
			for _, r := range ns.Refs {
				lines = append(lines, r.Name+" "+r.OID)
			}
			slices.Sort(lines)
			return strings.Join(lines, "\n"), ns.Seq, nil
		}
	}
	return "", 0, nil
}

// waitNamespace waits until root's daemon holds node's signed refs of repo
// with ref = oid ("" : without ref).
func waitNamespace(tb testing.TB, root, repo, node, ref, oid string) {
	tb.Helper()
	testutil.WaitForState(tb, root+" to hold "+node+"'s "+ref+" = "+oid, 20*time.Second, func() (bool, string) {
		refs, _, err := namespaceRefs(tb, root, repo, node)
		if err != nil {
			return false, err.Error()
		}
		found := ""
		for _, l := range strings.Split(refs, "\n") {
			if name, o, _ := strings.Cut(l, " "); name == ref {
				found = o
			}
		}
		return found == oid, refs
	})
}

// cloneState is what makes two working copies the same to a user: every
// ref (symbolic ones with their target), HEAD, the local configuration.
func cloneState(tb testing.TB, dir string) string {
	tb.Helper()
	refs := gitIn(tb, dir, "for-each-ref", "--format=%(refname) %(objectname) %(symref)")
	head := gitIn(tb, dir, "symbolic-ref", "HEAD")
	cfg := strings.Split(gitIn(tb, dir, "config", "--local", "--list"), "\n")
	slices.Sort(cfg)
	return "refs:\n" + refs + "\nHEAD: " + head + "\nconfig:\n" + strings.Join(cfg, "\n")
}

// newSourceRepo makes a working repository with three commits on main, a
// branch dev and an annotated tag v1.
func newSourceRepo(tb testing.TB) string {
	tb.Helper()
	src := filepath.Join(tb.TempDir(), "tiny")
	os.MkdirAll(src, 0o755)
	gitIn(tb, src, "init", "-q", "-b", "main")
	for _, f := range []string{"README.md", "a.txt", "b.txt"} {
		os.WriteFile(filepath.Join(src, f), []byte(f+"\n"), 0o644)
		gitIn(tb, src, "add", f)
		gitIn(tb, src, "commit", "-q", "-m", "add "+f)
	}
	gitIn(tb, src, "branch", "dev", "HEAD~1")
	gitIn(tb, src, "tag", "-a", "v1", "-m", "release 1")
	return src
}

func commitFile(tb testing.TB, dir, name, content, msg string) string {
	tb.Helper()
	os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	gitIn(tb, dir, "add", name)
	gitIn(tb, dir, "commit", "-q", "-m", msg)
	return gitIn(tb, dir, "rev-parse", "HEAD")
}

// TestGitRemote: two nodes; node1 shares a repository, node2 replicates it;
// plain git clones, pulls and pushes through mega:// URLs on both.
// sharesPacks checks that the clone holds the replica's pack files
// themselves (hard links: git clone mega:// and mecli repo clone of a
// replicated repository pack nothing again), and that git fsck passes.
func sharesPacks(tb testing.TB, clone, replica string) {
	tb.Helper()
	packs, _ := filepath.Glob(filepath.Join(replica, "objects", "pack", "*.pack"))
	theirs, _ := filepath.Glob(filepath.Join(clone, ".git", "objects", "pack", "*.pack"))
	if len(packs) == 0 || len(theirs) != len(packs) {
		tb.Fatalf("the clone has packs %v, the replica %v", theirs, packs)
	}
	for _, p := range packs {
		a, err1 := os.Stat(p)
		b, err2 := os.Stat(filepath.Join(clone, ".git", "objects", "pack", filepath.Base(p)))
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			tb.Errorf("the clone's %s is not the replica's (a hard link): %v %v", filepath.Base(p), err1, err2)
		}
	}
	if keeps, _ := filepath.Glob(filepath.Join(clone, ".git", "objects", "pack", "*.keep")); len(keeps) > 0 {
		tb.Errorf("the clone keeps %v", keeps)
	}
	gitIn(tb, clone, "fsck", "--strict", "--no-dangling")
}

func TestGitRemote(t *testing.T) {
	needBinaries(t)
	began := time.Now()
	step := func(name string) { t.Logf("%6.2fs  %s", time.Since(began).Seconds(), name) }
	r1, r2 := tempRoot(t), tempRoot(t)
	did1, did2 := authInit(t, r1), authInit(t, r2)
	n1 := startNode1(t, r1, "node1")
	startNode2(t, r2, "node2", n1.stdoutField(t, "address"))
	work := t.TempDir()

	step("1. node1 shares a repository; node2 replicates it")
	src := newSourceRepo(t)
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", r1, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	id := added.RepoID
	short := strings.TrimPrefix(id, "did:repo:")
	url := "mega://" + short
	head := gitIn(t, src, "rev-parse", "main")
	testutil.WaitForState(t, "node2 to replicate the repository", 20*time.Second, func() (bool, string) {
		r, ok, why := repoOn(t, r2, id)
		return ok && r.Replica == "up-to-date" && r.Head == head, why + " " + r.Replica
	})

	step("1a. git clone mega://<id> on node2")
	r := megaGit(t, r2, work, "clone", url, "clone2")
	if r.code != 0 {
		t.Fatalf("git clone %s: exit %d\n%s", url, r.code, r.stderr)
	}
	clone2 := filepath.Join(work, "clone2")
	if got, want := refsOf(t, clone2, true), refsOf(t, src, false); got != want {
		t.Fatalf("the clone's refs differ from the original:\n got %s\nwant %s", got, want)
	}
	if b := gitIn(t, clone2, "symbolic-ref", "--short", "HEAD"); b != "main" {
		t.Errorf("the clone checked out %q, want main", b)
	}
	if got := gitIn(t, clone2, "rev-parse", "HEAD"); got != head {
		t.Errorf("the clone's HEAD is %s, want %s", got, head)
	}
	if got := gitIn(t, clone2, "symbolic-ref", "refs/remotes/origin/HEAD"); got != "refs/remotes/origin/main" {
		t.Errorf("origin/HEAD is %q", got)
	}
	if got := gitIn(t, clone2, "rev-list", "--count", "HEAD"); got != "3" {
		t.Errorf("the clone's history has %s commits, want 3", got)
	}

	replica := filepath.Join(r2, "repos", short+".git")
	sharesPacks(t, clone2, replica)

	step("1b. git ls-remote mega://<id> on node2 lists what the original has")
	got := mustMegaGit(t, r2, work, "ls-remote", url)
	if want := gitIn(t, src, "ls-remote", src); strings.TrimSpace(got) != want {
		t.Errorf("git ls-remote %s:\n%s\nwant (the original's):\n%s", url, got, want)
	}

	step("7. mecli repo clone and git clone make the same working copy")
	viaMecli := filepath.Join(work, "via-mecli")
	if res := runCmd(t, mecliBin, "--root", r2, "repo", "clone", "--repo-id", id, "--output", viaMecli); res.code != 0 {
		t.Fatalf("mecli repo clone: %+v", res)
	}
	sharesPacks(t, viaMecli, replica)
	if a, b := cloneState(t, viaMecli), cloneState(t, clone2); a != b {
		t.Errorf("mecli repo clone and git clone differ:\n--- mecli repo clone\n%s\n--- git clone\n%s", a, b)
	}
	// And the node records both alike: seeded, each a clone on main, up to date.
	info, _, _ := repoOn(t, r2, id)
	recorded := map[string]string{}
	for _, c := range info.Clones {
		recorded[c.Path] = c.Branch + " " + c.Status
	}
	if !info.Seeded || recorded[viaMecli] != "main up-to-date" || recorded[clone2] != recorded[viaMecli] {
		t.Errorf("node2 records the clones as %v (seeded %v); want both \"main up-to-date\"", recorded, info.Seeded)
	}

	step("2. node1 commits; node2 replicates it; git pull in node2's clone")
	head = commitFile(t, src, "c.txt", "c\n", "add c.txt")
	testutil.WaitForState(t, "node2 to replicate the new commit", 20*time.Second, func() (bool, string) {
		r, ok, why := repoOn(t, r2, id)
		return ok && r.Head == head, why + " head " + r.Head
	})
	mustMegaGit(t, r2, clone2, "pull")
	if got := gitIn(t, clone2, "rev-parse", "HEAD"); got != head {
		t.Fatalf("after git pull node2's clone is at %s, want %s", got, head)
	}

	step("3. git push from node2's clone publishes node2's namespace")
	pushed := commitFile(t, clone2, "d.txt", "from node2\n", "node2's change")
	r = megaGit(t, r2, clone2, "push", "origin", "main")
	if r.code != 0 {
		t.Fatalf("git push: exit %d\n%s", r.code, r.stderr)
	}
	if lines := megaLines(r.stderr); len(lines) != 1 || !strings.HasPrefix(lines[0], "mega: published 1 ref of "+id+" (seq ") {
		t.Errorf("git push should end with one \"mega: published 1 ref of %s (seq …)\" line; stderr:\n%s", id, r.stderr)
	}
	waitNamespace(t, r1, id, did2, "refs/heads/main", pushed)
	forkURL := "mega://" + id + "/" + did2 // the long form of both ids
	mustMegaGit(t, r1, work, "clone", forkURL, "fork1")
	fork1 := filepath.Join(work, "fork1")
	if got := gitIn(t, fork1, "rev-parse", "HEAD"); got != pushed {
		t.Fatalf("node1's clone of %s is at %s, want node2's pushed commit %s", forkURL, got, pushed)
	}
	if got := gitIn(t, fork1, "config", "remote.origin.url"); got != forkURL {
		t.Errorf("the fork's origin is %q, want %q", got, forkURL)
	}

	step("7b. the same for a fork: mecli repo clone --namespace and git clone mega://<id>/<node>")
	forkMecli := filepath.Join(work, "fork-mecli")
	if res := runCmd(t, mecliBin, "--root", r1, "repo", "clone", "--repo-id", id, "--namespace", did2, "--output", forkMecli); res.code != 0 {
		t.Fatalf("mecli repo clone --namespace: %+v", res)
	}
	mustMegaGit(t, r1, work, "clone", url+"/"+strings.TrimPrefix(did2, "did:key:"), "fork-git")
	if a, b := cloneState(t, forkMecli), cloneState(t, filepath.Join(work, "fork-git")); a != b {
		t.Errorf("mecli repo clone --namespace and git clone differ:\n--- mecli repo clone\n%s\n--- git clone\n%s", a, b)
	}

	step("3a. branches are created and deleted by push; only branches and tags are accepted")
	mustMegaGit(t, r2, clone2, "push", "origin", "main:topic")
	waitNamespace(t, r1, id, did2, "refs/heads/topic", pushed)
	mustMegaGit(t, r2, clone2, "push", "origin", ":topic")
	waitNamespace(t, r1, id, did2, "refs/heads/topic", "")
	r = megaGit(t, r2, clone2, "push", "origin", "HEAD:refs/notes/x")
	if r.code == 0 || !strings.Contains(r.stderr, "hidden ref") {
		t.Errorf("a push to refs/notes/x: exit %d, want a refusal; stderr:\n%s", r.code, r.stderr)
	}
	if refs, _, _ := namespaceRefs(t, r2, id, did2); strings.Contains(refs, "refs/notes") {
		t.Errorf("node2 signed %s", refs)
	}

	step("3b. pushing into another node's namespace is refused; an unknown namespace is not an empty repository")
	r = megaGit(t, r2, clone2, "push", "mega://"+short+"/"+strings.TrimPrefix(did1, "did:key:"), "main")
	oneFatal(t, "git push into node1's namespace", r, "you can only push to your own namespace ("+did2+")")
	stranger := "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw" // in no namespace of this network
	r = megaGit(t, r2, work, "ls-remote", url+"/"+stranger)
	oneFatal(t, "git ls-remote of a namespace nobody published", r, "no refs of "+stranger+" in "+id+" have reached this node")

	step("4. a non-fast-forward push is rejected by git; --force is accepted")
	before, seq, _ := namespaceRefs(t, r2, id, did2)
	gitIn(t, clone2, "commit", "-q", "--amend", "-m", "node2's change, rewritten")
	rewritten := gitIn(t, clone2, "rev-parse", "HEAD")
	r = megaGit(t, r2, clone2, "push", "origin", "main")
	if r.code == 0 || !strings.Contains(r.stderr, "[rejected]") || !strings.Contains(r.stderr, "non-fast-forward") {
		t.Fatalf("a non-fast-forward push: exit %d; want git's rejection; stderr:\n%s", r.code, r.stderr)
	}
	if after, seqAfter, _ := namespaceRefs(t, r2, id, did2); after != before || seqAfter != seq {
		t.Errorf("the rejected push changed node2's signed refs:\n%s (seq %d)\nwas\n%s (seq %d)", after, seqAfter, before, seq)
	}
	r = megaGit(t, r2, clone2, "push", "--force", "origin", "main")
	if r.code != 0 || !strings.Contains(r.stderr, "forced update") || !strings.Contains(r.stderr, "mega: published") {
		t.Fatalf("git push --force: exit %d\n%s", r.code, r.stderr)
	}
	waitNamespace(t, r1, id, did2, "refs/heads/main", rewritten)
	mustMegaGit(t, r1, fork1, "fetch")
	if got := gitIn(t, fork1, "rev-parse", "origin/main"); got != rewritten {
		t.Errorf("node1's fork clone fetched %s, want the forced %s", got, rewritten)
	}

	step("5. pushing on node1 into its own watched repository is refused; nothing changes")
	mustMegaGit(t, r1, work, "clone", url, "clone1")
	clone1 := filepath.Join(work, "clone1")
	if got := gitIn(t, clone1, "rev-parse", "HEAD"); got != head {
		t.Fatalf("node1's clone is at %s, want %s", got, head)
	}
	ownBefore, ownSeq, _ := namespaceRefs(t, r1, id, did1)
	commitFile(t, clone1, "e.txt", "e\n", "pushed by mistake")
	r = megaGit(t, r1, clone1, "push", "origin", "main")
	oneFatal(t, "git push into a watched repository", r, "commit there instead of pushing")
	if !strings.Contains(r.stderr, src) {
		t.Errorf("the refusal should name the working repository %s:\n%s", src, r.stderr)
	}
	if after, seqAfter, _ := namespaceRefs(t, r1, id, did1); after != ownBefore || seqAfter != ownSeq {
		t.Errorf("the refused push changed node1's signed refs:\n%s\nwas\n%s", after, ownBefore)
	}
	if got := mustMegaGit(t, r1, work, "ls-remote", url, "refs/heads/main"); !strings.HasPrefix(got, head+"\t") {
		t.Errorf("after the refused push node1 serves main = %q, want %s", got, head)
	}
	if got := gitIn(t, src, "rev-parse", "main"); got != head {
		t.Errorf("the working repository moved to %s", got)
	}
	step("done")
}

// TestGitRemoteErrors: each failure is one readable line from git and a
// non-zero exit, and leaves nothing behind.
func TestGitRemoteErrors(t *testing.T) {
	needBinaries(t)
	r1 := tempRoot(t)
	authInit(t, r1)
	startNode1(t, r1, "node1").stdoutField(t, "socket")
	work := t.TempDir()

	// A well-formed id nobody holds.
	creator, err := identity.ParseNodeID("did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw")
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := identity.NewRepoID(make([]byte, 20), creator)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, root string
		args       []string
		want       string
		dir        string // must not exist afterwards
	}{
		{"clone an unknown repository", r1, []string{"clone", "mega://" + unknown.String(), "unknown"},
			"no node is known to hold " + unknown.String(), "unknown"},
		{"clone a malformed id", r1, []string{"clone", "mega://not-an-id", "bad"},
			`invalid URL "mega://not-an-id": "not-an-id" is not a repository id`, "bad"},
		{"clone a malformed node", r1, []string{"clone", "mega://" + unknown.String() + "/z6Mkfoo", "badnode"},
			`"z6Mkfoo" is not a node id`, "badnode"},
		{"ls-remote an unknown repository", r1, []string{"ls-remote", "mega://" + unknown.String()},
			"no node is known to hold", ""},
		{"ls-remote with no daemon", tempRoot(t), []string{"ls-remote", "mega://" + unknown.String()},
			"no daemon running for root", ""},
		{"clone with no daemon", tempRoot(t), []string{"clone", "mega://" + unknown.String(), "nodaemon"},
			"start one with 'med", "nodaemon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := megaGit(t, tc.root, work, tc.args...)
			oneFatal(t, "git "+strings.Join(tc.args, " "), r, tc.want)
			if tc.dir != "" {
				if _, err := os.Stat(filepath.Join(work, tc.dir)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the failed clone left %s behind (%v)", tc.dir, err)
				}
			}
		})
	}
}
