package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// patchJSON is the part of mecli patch show --json these tests read.
type patchJSON struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	State     string `json:"state"`
	Author    string `json:"author"`
	Head      string `json:"head"`
	Revisions []struct {
		ID   string `json:"id"`
		Base string `json:"base"`
		Head string `json:"head"`
	} `json:"revisions"`
	Reviews []struct {
		Author   string `json:"author"`
		Revision string `json:"revision"`
		Verdict  string `json:"verdict"`
		Summary  string `json:"summary"`
	} `json:"reviews"`
	Merge *struct {
		Author string `json:"author"`
	} `json:"merge"`
}

// waitPatchOn waits until root's node shows patch id in a state for which
// ok holds.
func waitPatchOn(t *testing.T, root, repo, id, what string, ok func(patchJSON) bool) patchJSON {
	t.Helper()
	var p patchJSON
	testutil.WaitForState(t, root+" to show "+what, 30*time.Second, func() (bool, string) {
		p = patchJSON{}
		if err := mecliJSON(t, &p, "--root", root, "patch", "show", id, "--repo", repo); err != nil {
			return false, err.Error()
		}
		return ok(p), p.State
	})
	return p
}

// mecliIn runs mecli in dir (the working copy commands read it).
func mecliIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mecliBin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mecli %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

var openedPatch = regexp.MustCompile(`mega: opened patch ([0-9a-f]{64})`)

// Two real daemons and plain git: node 2 clones, commits on a branch and
// pushes it to refs/patches; node 1 lists the patch and accepts it; node 2
// sees the verdict; a second push adds a revision both nodes see; node 1
// checks the patch out in its shared working repository and fast-forwards
// main to it, and both nodes show the patch merged.
func TestPatchThroughGit(t *testing.T) {
	needBinaries(t)
	r1, r2 := tempRoot(t), tempRoot(t)
	did1, did2 := authInit(t, r1), authInit(t, r2)
	n1 := startNode1(t, r1, "delegate")
	startNode2(t, r2, "contributor", n1.stdoutField(t, "address"))
	src := newSourceRepo(t)
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", r1, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	repo := added.RepoID
	main := gitIn(t, src, "rev-parse", "main")
	testutil.WaitForState(t, "node 2 to replicate the repository", 20*time.Second, func() (bool, string) {
		r, ok, why := repoOn(t, r2, repo)
		return ok && r.Replica == "up-to-date" && r.Head == main, why + " " + r.Replica
	})
	work := t.TempDir()
	mustMegaGit(t, r2, work, "clone", "mega://"+strings.TrimPrefix(repo, "did:repo:"), "clone")
	clone := filepath.Join(work, "clone")
	gitIn(t, clone, "switch", "-q", "-c", "relay")
	head := commitFile(t, clone, "relay.txt", "relay\n", "Relay fallback")

	r := megaGit(t, r2, clone, "push", "origin", "HEAD:refs/patches", "-o", `patch.message=Relay fallback\n\nDial through a relay.`)
	m := openedPatch.FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil {
		t.Fatalf("git push HEAD:refs/patches: exit %d\n%s", r.code, r.stderr)
	}
	id := m[1]
	if up := gitIn(t, clone, "config", "branch.relay.merge"); up != "refs/heads/patches/"+id {
		t.Errorf("the branch's upstream is %q, want patches/%s", up, id)
	}
	var list []patchJSON
	testutil.WaitForState(t, "node 1 to list the patch", 30*time.Second, func() (bool, string) {
		list = nil
		err := mecliJSON(t, &list, "--root", r1, "patch", "list", "--repo", repo)
		return err == nil && len(list) == 1 && list[0].ID == id, fmt.Sprint(err)
	})
	if p := list[0]; p.Title != "Relay fallback" || p.State != "open" || p.Author != did2 {
		t.Fatalf("node 1 lists %+v", p)
	}
	p := waitPatchOn(t, r1, repo, id, "the patch", func(p patchJSON) bool { return len(p.Revisions) == 1 })
	if rv := p.Revisions[0]; rv.Head != head || rv.Base != main {
		t.Fatalf("revision %+v, want base %s head %s", rv, main, head)
	}

	mecliIn(t, src, "--root", r1, "patch", "review", id[:8], "--accept", "--summary", "Ship it", "--comment", "relay.txt:1:nice")
	waitPatchOn(t, r2, repo, id, "the verdict", func(p patchJSON) bool {
		return len(p.Reviews) == 1 && p.Reviews[0].Verdict == "accept" && p.Reviews[0].Author == did1 && p.Reviews[0].Summary == "Ship it"
	})

	head2 := commitFile(t, clone, "relay.txt", "relay, locked\n", "Lock the relay table")
	r = megaGit(t, r2, clone, "push") // to the upstream the first push set
	if r.code != 0 || !strings.Contains(r.stderr, "mega: revised patch "+id) {
		t.Fatalf("a plain git push to the patch branch: exit %d\n%s", r.code, r.stderr)
	}
	for _, root := range []string{r1, r2} {
		waitPatchOn(t, root, repo, id, "the second revision", func(p patchJSON) bool { return len(p.Revisions) == 2 && p.Head == head2 })
	}

	out := mecliIn(t, src, "--root", r1, "patch", "checkout", id[:8])
	if got := gitIn(t, src, "rev-parse", "patch/"+id[:7]); got != head2 || !strings.Contains(out, "patch/"+id[:7]) {
		t.Fatalf("patch checkout: branch at %s, want %s; printed %q", got, head2, out)
	}

	// Node 1 fast-forwards main to the patch; its watcher publishes main
	// and the node records the merge; both nodes show the patch merged.
	gitIn(t, src, "merge", "-q", "--ff-only", "patch/"+id[:7])
	for _, root := range []string{r1, r2} {
		waitPatchOn(t, root, repo, id, "the merge", func(p patchJSON) bool { return p.State == "merged" })
	}
	checkDraftPush(t, r1, r2, repo, clone)

	var merged []patchJSON
	if err := mecliJSON(t, &merged, "--root", r2, "patch", "list", "--state", "merged", "--repo", repo); err != nil || len(merged) != 1 {
		t.Fatalf("patch list --state merged on node 2: %v %+v", err, merged)
	}
	checkDelegateMerges(t, r1, r2, repo, clone, did2)
}

// checkDraftPush: a push without patch.message takes the first commit's
// subject and body; -o patch.draft opens a draft.
func checkDraftPush(t *testing.T, r1, r2, repo, clone string) {
	t.Helper()
	gitIn(t, clone, "switch", "-q", "-c", "docs", "origin/main")
	os.WriteFile(filepath.Join(clone, "DOCS.md"), []byte("docs\n"), 0o644)
	gitIn(t, clone, "add", "DOCS.md")
	gitIn(t, clone, "commit", "-q", "-m", "Add docs", "-m", "How to use it.")
	r := megaGit(t, r2, clone, "push", "origin", "HEAD:refs/patches", "-o", "patch.draft")
	m := openedPatch.FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil {
		t.Fatalf("git push -o patch.draft: exit %d\n%s", r.code, r.stderr)
	}
	var draft struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		State       string `json:"state"`
	}
	testutil.WaitForState(t, "node 1 to show the draft", 30*time.Second, func() (bool, string) {
		err := mecliJSON(t, &draft, "--root", r1, "patch", "show", m[1], "--repo", repo)
		return err == nil, fmt.Sprint(err)
	})
	if draft.Title != "Add docs" || draft.Description != "How to use it." || draft.State != "draft" {
		t.Fatalf("the draft: %+v", draft)
	}
}

// identityJSON is the part of mecli repo show --json checkDelegateMerges reads.
type identityJSON struct {
	Delegates  []string `json:"delegates"`
	DocVersion uint64   `json:"doc_version"`
	Namespaces []struct {
		Node string `json:"node"`
		Refs []struct {
			Name string `json:"name"`
			OID  string `json:"oid"`
		} `json:"refs"`
	} `json:"namespaces"`
}

func identityOn(t *testing.T, root, repo string) identityJSON {
	t.Helper()
	var id identityJSON
	if err := mecliJSON(t, &id, "--root", root, "repo", "show", repo); err != nil {
		t.Logf("repo show: %v", err)
	}
	return id
}

// checkDelegateMerges: node 1 makes node 2 a delegate with a new identity
// version; node 2 pushes a patch and then its own main containing it, and
// both nodes show it merged by node 2. Removed again, node 2's main holding
// the next patch merges nothing.
func checkDelegateMerges(t *testing.T, r1, r2, repo, clone, did2 string) {
	t.Helper()
	mecliIn(t, clone, "--root", r1, "repo", "delegate", "add", did2, repo)
	testutil.WaitForState(t, "node 2 to hold identity version 2", 30*time.Second, func() (bool, string) {
		id := identityOn(t, r2, repo)
		return id.DocVersion == 2 && len(id.Delegates) == 2, fmt.Sprint(id.Delegates)
	})
	from := "origin/main" // not the draft's branch: its patch stays out of node 2's main
	openAndPushMain := func(branch, msg string) (string, string) {
		gitIn(t, clone, "switch", "-q", "-c", branch, from)
		from = branch
		head := commitFile(t, clone, branch+".txt", msg+"\n", msg)
		r := megaGit(t, r2, clone, "push", "origin", "HEAD:refs/patches", "-o", "patch.message="+msg)
		m := openedPatch.FindStringSubmatch(r.stderr)
		if r.code != 0 || m == nil {
			t.Fatalf("git push HEAD:refs/patches: exit %d\n%s", r.code, r.stderr)
		}
		if r := megaGit(t, r2, clone, "push", "origin", "HEAD:refs/heads/main"); r.code != 0 {
			t.Fatalf("git push HEAD:main into node 2's namespace: exit %d\n%s", r.code, r.stderr)
		}
		return m[1], head
	}
	id, _ := openAndPushMain("by-delegate", "A delegate's fix")
	for _, root := range []string{r1, r2} {
		p := waitPatchOn(t, root, repo, id, "the added delegate's merge", func(p patchJSON) bool { return p.State == "merged" })
		if p.Merge == nil || p.Merge.Author != did2 {
			t.Fatalf("merged by %+v, want %s", p.Merge, did2)
		}
	}

	mecliIn(t, clone, "--root", r1, "repo", "delegate", "remove", did2, repo)
	testutil.WaitForState(t, "node 2 to hold identity version 3", 30*time.Second, func() (bool, string) {
		id := identityOn(t, r2, repo)
		return id.DocVersion == 3 && len(id.Delegates) == 1, fmt.Sprint(id.Delegates)
	})
	id, head := openAndPushMain("by-former", "A former delegate's fix")
	testutil.WaitForState(t, "node 1 to fetch node 2's main", 30*time.Second, func() (bool, string) {
		for _, ns := range identityOn(t, r1, repo).Namespaces {
			for _, r := range ns.Refs {
				if ns.Node == did2 && r.Name == "refs/heads/main" && r.OID == head {
					return true, ""
				}
			}
		}
		return false, "not yet"
	})
	for _, root := range []string{r1, r2} {
		if p := waitPatchOn(t, root, repo, id, "the patch", func(patchJSON) bool { return true }); p.State != "open" {
			t.Fatalf("%s: a removed delegate's main merged the patch: %s", root, p.State)
		}
	}
}
