package daemon

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// waitIdentity waits until n holds version of repo's identity document.
func waitIdentity(t *testing.T, ctx context.Context, n *running, repo string, version uint64) rpc.RepoDetail {
	t.Helper()
	var d rpc.RepoDetail
	testutil.WaitForState(t, n.cfg.Alias+fmt.Sprintf(" to hold identity version %d", version), 20*time.Second, func() (bool, string) {
		var err error
		d, err = n.RepoShow(ctx, rpc.RepoIDParams{RepoID: repo})
		if err != nil {
			return false, err.Error()
		}
		return d.DocVersion == version, d.Name
	})
	return d
}

// moveMain points n's own main at head in its replica, as a push would,
// and publishes it.
func moveMain(t *testing.T, ctx context.Context, n *running, repo, head string) {
	t.Helper()
	r, _ := identity.ParseRepoID(repo)
	testutil.Git(t, n.replica.Dir(r), "update-ref", "refs/namespaces/"+replica.Namespace(n.ID())+"/refs/heads/main", head)
	if _, err := n.RepoPublish(ctx, rpc.RepoIDParams{RepoID: repo}); err != nil {
		t.Fatal(err)
	}
}

// A delegate added by a new identity version can merge a patch; once
// removed its merge is signed again by the creator, and it can neither
// merge nor sign a version; with a threshold of
// two, a rename proposed on one node is applied when the other delegate
// makes the same change.
func TestDelegatesChangeWithTheIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "creator"))
	b := start(t, fastCfg(shortRoot(t), "contributor", a))
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	repo := info.RepoID
	testutil.WaitFor(t, "the contributor to replicate the repository", 20*time.Second, func() bool {
		got, err := b.RepoShow(ctx, rpc.RepoIDParams{RepoID: repo})
		return err == nil && got.Replica == rpc.ReplicaUpToDate
	})
	add := rpc.RepoDelegateParams{RepoID: repo, Delegate: b.ID().String()}
	if res, err := a.RepoEdit(ctx, rpc.RepoEditParams{RepoID: repo, AddDelegate: add.Delegate}); err != nil || !res.Applied {
		t.Fatalf("adding a delegate: %+v %v", res, err)
	}
	if d := waitIdentity(t, ctx, b, repo, 2); !slices.Equal(d.Delegates, []string{a.ID().String(), b.ID().String()}) {
		t.Fatalf("the contributor sees delegates %v", d.Delegates)
	}

	// Added, the contributor merges its own patch by publishing a main that contains it.
	base, head := commitInReplica(t, b, a.ID(), repo, "a delegate's fix")
	p1, err := b.PatchOpen(ctx, rpc.PatchOpenParams{RepoID: repo, Title: "Fix", Base: base, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	moveMain(t, ctx, b, repo, head)
	d := waitPatch(t, ctx, a, repo, p1.Change, "the added delegate's merge", func(d rpc.PatchDetail) bool { return d.State == rpc.PatchMerged })
	if d.Merge.Author != b.ID().String() {
		t.Fatalf("merged by %s", d.Merge.Author)
	}

	// Removed, it cannot: its published main holds the next patch, which stays open.
	if _, err := a.RepoEdit(ctx, rpc.RepoEditParams{RepoID: repo, RemoveDelegate: add.Delegate}); err != nil {
		t.Fatal(err)
	}
	waitIdentity(t, ctx, b, repo, 3)
	// Its earlier merge no longer counts; the creator signed it again, so
	// the patch stays merged on both nodes.
	for _, n := range []*running{a, b} {
		d := waitPatch(t, ctx, n, repo, p1.Change, "the earlier merge, ratified", func(d rpc.PatchDetail) bool {
			return d.State == rpc.PatchMerged && d.Merge.Author == a.ID().String()
		})
		if d.Merge.Commit != head {
			t.Fatalf("%s: ratified as %s, want %s", n.cfg.Alias, d.Merge.Commit, head)
		}
	}
	_, head2 := commitInReplica(t, b, b.ID(), repo, "a former delegate's fix")
	p2, err := b.PatchOpen(ctx, rpc.PatchOpenParams{RepoID: repo, Title: "Another", Base: head, Head: head2})
	if err != nil {
		t.Fatal(err)
	}
	moveMain(t, ctx, b, repo, head2)
	testutil.WaitFor(t, "the creator to fetch the former delegate's main", 20*time.Second, func() bool {
		got, err := a.RepoShow(ctx, rpc.RepoIDParams{RepoID: repo})
		if err != nil {
			return false
		}
		i := slices.IndexFunc(got.Namespaces, func(ns rpc.NamespaceRefs) bool { return ns.Node == b.ID().String() })
		return i >= 0 && slices.ContainsFunc(got.Namespaces[i].Refs, func(r rpc.RefInfo) bool { return r.Name == "refs/heads/main" && r.OID == head2 })
	})
	for _, n := range []*running{a, b} {
		if d := waitPatch(t, ctx, n, repo, p2.Change, "the patch", func(rpc.PatchDetail) bool { return true }); d.State != rpc.PatchOpen {
			t.Fatalf("%s: a removed delegate's branch merged the patch: %s", n.cfg.Alias, d.State)
		}
	}
	if _, err := b.RepoEdit(ctx, rpc.RepoEditParams{RepoID: repo, AddDelegate: b.ID().String()}); rpc.ErrorCode(err) != rpc.CodePermission {
		t.Fatalf("a former delegate signed a version: %v", err)
	}

	// Threshold two: a rename is a proposal until the other delegate makes it too.
	if _, err := a.RepoEdit(ctx, rpc.RepoEditParams{RepoID: repo, AddDelegate: add.Delegate}); err != nil {
		t.Fatal(err)
	}
	if res, err := a.RepoEdit(ctx, rpc.RepoEditParams{RepoID: repo, Threshold: 2}); err != nil || !res.Applied {
		t.Fatalf("raising the threshold: %+v %v", res, err)
	}
	waitIdentity(t, ctx, b, repo, 5)
	name := "renamed by two"
	res, err := a.RepoEdit(ctx, rpc.RepoEditParams{RepoID: repo, Name: &name})
	if err != nil || res.Applied || res.Missing != 1 {
		t.Fatalf("a rename with threshold 2: %+v %v", res, err)
	}
	testutil.WaitFor(t, "the other delegate to see the proposal", 20*time.Second, func() bool {
		got, err := b.RepoShow(ctx, rpc.RepoIDParams{RepoID: repo})
		return err == nil && got.Proposal != nil && got.Proposal.Name == name && got.Proposal.Missing == 1
	})
	if res, err := b.RepoEdit(ctx, rpc.RepoEditParams{RepoID: repo, Name: &name}); err != nil || !res.Applied || len(res.Identity.Signers) != 2 {
		t.Fatalf("the second signature: %+v %v", res, err)
	}
	if d := waitIdentity(t, ctx, a, repo, 6); d.Name != name || d.Proposal != nil {
		t.Fatalf("the creator holds %q, proposal %+v", d.Name, d.Proposal)
	}
}
