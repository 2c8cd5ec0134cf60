package replica

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// commitWork commits a change of name in the working repository work and
// returns the commit.
func commitWork(t *testing.T, work, name, content string) string {
	t.Helper()
	os.WriteFile(filepath.Join(work, name), []byte(content), 0o644)
	git(t, work, "add", name)
	git(t, work, "commit", "-q", "-m", "change "+name)
	return git(t, work, "rev-parse", "HEAD")
}

// An update whose pack leaves out an object the new commit needs (here
// its parent, and that parent's new blob), which the client does not have
// either, is refused and changes nothing: the update needs no history
// walk, because index-pack checks every link of the objects it receives.
func TestUpdateRefusesPackMissingObjects(t *testing.T) {
	owner, client, repo, pn := pair(t, 0, nil)
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	before := nsRefs(t, client, repo)
	work := owner.state(repo).Path
	c2 := commitWork(t, work, "b.txt", "only in the parent\n")
	c3 := commitWork(t, work, "c.txt", "in the child\n")
	publish(t, owner, repo, work)
	// A complete pack of c3 alone, with no deltas against c2.
	cmd := exec.Command("git", "pack-objects", "--revs", "--stdout", "-q")
	cmd.Dir = work
	cmd.Stdin = strings.NewReader(c3 + "\n^" + c2 + "\n")
	pack, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pn.tamper = func(i int, typ byte, payload []byte) (byte, []byte, bool) {
		switch typ {
		case wire.FramePack:
			if i != 1 {
				return typ, nil, false // one frame holds the small pack
			}
			return typ, pack, true
		case wire.FrameEnd:
			d := sha256.Sum256(pack)
			out, err := cborx.Marshal(wire.FetchEnd{Size: uint64(len(pack)), Digest: d[:]})
			if err != nil {
				t.Error(err)
			}
			return typ, out, true
		}
		return typ, payload, true
	}
	if _, err := fetch(t, client, owner, repo); err == nil {
		t.Fatal("an update whose pack lacks the new commit's parent was accepted")
	} else if !strings.Contains(err.Error(), "did not receive expected object") {
		t.Fatalf("refused for another reason: %v", err)
	}
	if after := nsRefs(t, client, repo); !equalRefs(before, after) {
		t.Fatalf("refs changed: %v, were %v", after, before)
	}
	if has, _ := mustBare(t, client, repo).HasObjects(context.Background(), []string{c3}); has[c3] {
		t.Error("the incomplete pack was kept")
	}
}

// publish runs what the watcher runs for a change in work.
func publish(t *testing.T, owner *node, repo identity.RepoID, work string) {
	t.Helper()
	refs, err := owner.git.ReadWork(context.Background(), work)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.publishWork(context.Background(), repo, work, refs); err != nil {
		t.Fatal(err)
	}
}

// nsRefs are the refs of every namespace of the client's replica.
func nsRefs(t *testing.T, c *node, repo identity.RepoID) []gitstore.Ref {
	t.Helper()
	refs, err := mustBare(t, c, repo).RefsUnder(context.Background(), "refs/")
	if err != nil {
		t.Fatal(err)
	}
	out := []gitstore.Ref{}
	for _, r := range refs {
		out = append(out, gitstore.Ref{Name: r.Namespace + "/" + r.Name, OID: r.OID})
	}
	return out
}

// countingGit is a Runner whose git logs each command's name to a file.
func countingGit(t *testing.T) (r *gitstore.Runner, count func() []string) {
	t.Helper()
	dir := t.TempDir()
	bin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	script := filepath.Join(dir, "git")
	body := "#!/bin/sh\necho \"$*\" >> " + log + "\nexec " + bin + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return &gitstore.Runner{Bin: script}, func() []string {
		raw, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.Split(strings.TrimSpace(string(raw)), "\n")
	}
}

// A one-commit update runs few git processes on either side, once the
// replica was fetched before: the fetching node lists its refs once (the
// haves, reused for the ref transaction), indexes the pack, checks the
// signed tips are present and moves the refs; the serving node checks the
// haves and packs. No history walk, no second listing, no check that the
// replica is one, no HEAD read, no listing to check the namespace it has
// just published equals its signed refs.
func TestUpdateRunsFewGitProcesses(t *testing.T) {
	ownerGit, ownerRan := countingGit(t)
	owner := newNode(t, &pipeNet{t: t}, func(c *Config) { c.Git = ownerGit })
	work := workRepo(t, 0)
	repo, _, err := owner.Share(context.Background(), work, "work", "")
	if err != nil {
		t.Fatal(err)
	}
	clientGit, clientRan := countingGit(t)
	client := newNode(t, &pipeNet{t: t, server: owner.Service}, func(c *Config) { c.Git = clientGit })
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	head := commitWork(t, work, "b.txt", "new\n")
	publish(t, owner, repo, work)
	ownerRan()
	clientRan()
	res, err := fetch(t, client, owner, repo)
	fetched, served := clientRan(), ownerRan()
	if err != nil || res.Namespaces != 1 {
		t.Fatalf("update: %+v, %v", res, err)
	}
	if got := nsRefs(t, client, repo); !strings.Contains(strings.Join(refOIDsOf(got), " "), head) {
		t.Fatalf("the update did not arrive: %v", got)
	}
	for _, side := range []struct {
		name string
		ran  []string
		max  int
	}{{"fetching", fetched, 3}, {"serving", served, 1}} {
		if len(side.ran) > side.max {
			t.Errorf("the %s node ran %d git processes, want at most %d:\n%s", side.name, len(side.ran), side.max, strings.Join(side.ran, "\n"))
		}
	}
}

func refOIDsOf(refs []gitstore.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.OID
	}
	return out
}
