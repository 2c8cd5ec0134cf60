package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/collab"
	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/internal/testutil"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// waitPatch waits until n shows patch id of repo in a state for which ok
// holds, and returns it.
func waitPatch(t *testing.T, ctx context.Context, n *running, repo, id, what string, ok func(rpc.PatchDetail) bool) rpc.PatchDetail {
	t.Helper()
	var d rpc.PatchDetail
	testutil.WaitForState(t, n.cfg.Alias+" to show "+what, 20*time.Second, func() (bool, string) {
		var err error
		d, err = n.PatchShow(ctx, rpc.PatchIDParams{RepoID: repo, ID: id})
		if err != nil {
			return false, err.Error()
		}
		return ok(d), d.State
	})
	return d
}

// commitInReplica writes a commit on top of the owner's main into n's
// replica of repo (as a push would) and returns main and the new commit.
func commitInReplica(t *testing.T, n *running, owner identity.NodeID, repo, msg string) (base, head string) {
	t.Helper()
	r, err := identity.ParseRepoID(repo)
	if err != nil {
		t.Fatal(err)
	}
	dir := n.replica.Dir(r)
	base = testutil.Git(t, dir, "rev-parse", "refs/namespaces/"+replica.Namespace(owner)+"/refs/heads/main")
	head = testutil.Git(t, dir, "commit-tree", "-p", base, "-m", msg, base+"^{tree}")
	return strings.TrimSpace(base), strings.TrimSpace(head)
}

// A patch opened on a node that is no delegate reaches the delegate with
// its code; the delegate's review reaches the author; a revision reaches
// the delegate; the delegate checks the latest revision out into its
// working repository.
func TestPatchesConverge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "delegate"))
	b := start(t, fastCfg(shortRoot(t), "author", a))
	work := workRepo(t)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: work})
	if err != nil {
		t.Fatal(err)
	}
	repo := info.RepoID
	testutil.WaitFor(t, "the author to replicate the repository", 20*time.Second, func() bool {
		got, err := b.RepoShow(ctx, rpc.RepoIDParams{RepoID: repo})
		return err == nil && got.Replica == rpc.ReplicaUpToDate
	})
	base, head := commitInReplica(t, b, a.ID(), repo, "fix the relay")
	opened, err := b.PatchOpen(ctx, rpc.PatchOpenParams{RepoID: repo, Title: "Relay fix", Base: base, Head: head, Draft: true})
	if err != nil {
		t.Fatal(err)
	}
	id := opened.Change
	if opened.Patch.State != rpc.PatchDraft || opened.Patch.Head != head || len(opened.Patch.Revisions) != 1 {
		t.Fatalf("patch.open: %+v", opened.Patch)
	}
	if ready, err := b.PatchReady(ctx, rpc.PatchIDParams{RepoID: repo, ID: id}); err != nil || ready.Patch.State != rpc.PatchOpen {
		t.Fatalf("patch.ready: %v %+v", err, ready.Patch.State)
	}
	waitPatch(t, ctx, a, repo, id[:8], "the patch", func(d rpc.PatchDetail) bool { return d.Title == "Relay fix" && d.State == rpc.PatchOpen })
	r, _ := identity.ParseRepoID(repo)
	testutil.Git(t, a.replica.Dir(r), "cat-file", "-e", head+"^{commit}") // the code travelled

	if _, err := a.PatchReview(ctx, rpc.PatchReviewParams{RepoID: repo, ID: id, Verdict: rpc.VerdictAccept, Summary: "LGTM",
		Comments: []rpc.PatchInlineComment{{Path: "a.txt", Start: 1, Body: "fine"}}}); err != nil {
		t.Fatal(err)
	}
	d := waitPatch(t, ctx, b, repo, id, "the verdict", func(d rpc.PatchDetail) bool { return len(d.Reviews) == 1 })
	if rv := d.Reviews[0]; rv.Verdict != rpc.VerdictAccept || rv.Author != a.ID().String() || rv.Revision != id ||
		len(rv.Comments) != 1 || rv.Comments[0].Commit != head || rv.Comments[0].End != 1 {
		t.Fatalf("review %+v", rv)
	}

	_, head2 := commitInReplica(t, b, a.ID(), repo, "fix the relay, again")
	if _, err := b.PatchRevise(ctx, rpc.PatchReviseParams{RepoID: repo, ID: id, Base: base, Head: head2}); err != nil {
		t.Fatal(err)
	}
	waitPatch(t, ctx, a, repo, id, "the second revision", func(d rpc.PatchDetail) bool { return len(d.Revisions) == 2 && d.Head == head2 })
	if _, err := a.PatchRevise(ctx, rpc.PatchReviseParams{RepoID: repo, ID: id, Base: base, Head: strings.Repeat("1", 40)}); rpc.ErrorCode(err) != rpc.CodeNotFound {
		t.Fatalf("a revision on a commit the replica lacks: %v", err)
	}

	co, err := a.PatchCheckout(ctx, rpc.PatchCheckoutParams{RepoID: repo, ID: id, Path: work})
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := cob.ParseChangeID(id)
	if co.Branch != PatchBranchName(obj) || co.Head != head2 || strings.TrimSpace(testutil.Git(t, work, "rev-parse", co.Branch)) != head2 {
		t.Fatalf("checkout %+v", co)
	}
	if got := testutil.Git(t, b.replica.Dir(r), "rev-parse", "refs/namespaces/"+replica.Namespace(b.ID())+"/"+collab.PatchBranch(obj)); strings.TrimSpace(got) != head2 {
		t.Fatalf("the author's patch branch is at %s, want %s", got, head2)
	}

	// The delegate fast-forwards main to the patch; its watcher publishes
	// main, and the node records the merge, which reaches the author.
	testutil.Git(t, work, "merge", "-q", "--ff-only", co.Branch)
	for _, n := range []*running{a, b} {
		d := waitPatch(t, ctx, n, repo, id, "the merge", func(d rpc.PatchDetail) bool { return d.State == rpc.PatchMerged })
		if m := d.Merge; m == nil || m.Author != a.ID().String() || m.Commit != head2 || m.Revision != d.Revisions[1].ID {
			t.Fatalf("merge %+v", d.Merge)
		}
	}
}

// A patch opened on the node that shares a working repository keeps its
// branch when the watcher imports the next commit of that repository.
func TestSharedRepoKeepsPatchBranches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "owner"))
	work := workRepo(t)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: work})
	if err != nil {
		t.Fatal(err)
	}
	repo := info.RepoID
	base, head := commitInReplica(t, a, a.ID(), repo, "a patch of the owner")
	opened, err := a.PatchOpen(ctx, rpc.PatchOpenParams{RepoID: repo, Title: "Own", Base: base, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := cob.ParseChangeID(opened.Change)
	branch := collab.PatchBranch(obj)
	testutil.Git(t, work, "commit", "-q", "--allow-empty", "-m", "next")
	next := strings.TrimSpace(testutil.Git(t, work, "rev-parse", "HEAD"))
	testutil.WaitForState(t, "the watcher to publish the next commit with the patch branch", 20*time.Second, func() (bool, string) {
		d, err := a.RepoShow(ctx, rpc.RepoIDParams{RepoID: repo})
		if err != nil || len(d.Namespaces) == 0 {
			return false, fmt.Sprint(err)
		}
		var main, patch string
		for _, r := range d.Namespaces[0].Refs {
			switch r.Name {
			case "refs/heads/main":
				main = r.OID
			case branch:
				patch = r.OID
			}
		}
		return main == next && patch == head, "main " + main + ", patch branch " + patch
	})
}
