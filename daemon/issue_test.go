package daemon

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/internal/testutil"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// sharedRepo shares a working repository on owner and waits until every
// other node holds a replica of it.
func sharedRepo(t *testing.T, ctx context.Context, owner *running, others ...*running) string {
	t.Helper()
	info, err := owner.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range others {
		testutil.WaitFor(t, n.cfg.Alias+" to replicate the repository", 20*time.Second, func() bool {
			got, err := n.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID})
			return err == nil && got.Replica == rpc.ReplicaUpToDate
		})
	}
	return info.RepoID
}

// waitIssue waits until n shows issue id of repo in a state for which ok
// holds, and returns it.
func waitIssue(t *testing.T, ctx context.Context, n *running, repo, id, what string, ok func(rpc.IssueDetail) bool) rpc.IssueDetail {
	t.Helper()
	var d rpc.IssueDetail
	testutil.WaitForState(t, n.cfg.Alias+" to show "+what, 20*time.Second, func() (bool, string) {
		var err error
		d, err = n.IssueShow(ctx, rpc.IssueIDParams{RepoID: repo, ID: id})
		if err != nil {
			return false, err.Error()
		}
		return ok(d), d.Title
	})
	return d
}

func commentBodies(d rpc.IssueDetail) []string {
	var out []string
	for _, c := range d.Comments {
		out = append(out, c.Body)
	}
	return out
}

// An issue opened on a node that is no delegate reaches the delegate and a
// node that never met its author; the delegate's label reaches everyone;
// a comment written concurrently on two nodes converges to one state; and
// a node restarted from disk still shows the issue.
func TestIssuesConverge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rootA := shortRoot(t)
	cfgA := fastCfg(rootA, "delegate")
	activity := make(chan *wire.ActivityAnnouncement, 16)
	cfgA.onAccepted = func(_ *wire.Envelope, body wire.Body) {
		if aa, ok := body.(*wire.ActivityAnnouncement); ok {
			select {
			case activity <- aa:
			default:
			}
		}
	}
	a := start(t, cfgA)
	b := start(t, fastCfg(shortRoot(t), "author", a))
	c := start(t, fastCfg(shortRoot(t), "stranger", a))
	repo := sharedRepo(t, ctx, a, b, c)

	events, unsubscribe := c.Subscribe([]string{rpc.EventCobChanged})
	defer unsubscribe()
	opened, err := b.IssueOpen(ctx, rpc.IssueOpenParams{RepoID: repo, Title: "Clone hangs", Body: "After the handshake."})
	if err != nil {
		t.Fatal(err)
	}
	id := opened.Change
	if opened.Issue.ID != id || opened.Issue.Author != b.ID().String() || opened.Issue.State != rpc.IssueOpen {
		t.Fatalf("issue.open: %+v", opened)
	}
	// The new head was announced at once.
	select {
	case aa := <-activity:
		if aa.Repo.String() != repo || len(aa.Heads) != 1 || cob.ChangeID(aa.Heads[0]).String() != id {
			t.Fatalf("activity announcement %+v, want repo %s head %s", aa, repo, id)
		}
	case <-ctx.Done():
		t.Fatal("no ActivityAnnouncement reached the delegate")
	}
	for _, n := range []*running{a, c} {
		waitIssue(t, ctx, n, repo, id[:8], "the issue", func(d rpc.IssueDetail) bool { return d.Title == "Clone hangs" && d.Body == "After the handshake." })
	}
	select {
	case ev := <-events:
		if ev.Repo != repo || ev.ObjectType != "issue" || ev.Object != id {
			t.Fatalf("cob.changed event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no cob.changed event on the stranger")
	}
	// Labels are the delegate's to give; the author's attempt is refused.
	if _, err := b.IssueLabel(ctx, rpc.IssueLabelParams{RepoID: repo, ID: id, Add: []string{"bug"}}); !rpc.IsCode(err, rpc.CodePermission) {
		t.Fatalf("a non-delegate labelled: %v", err)
	}
	if _, err := a.IssueLabel(ctx, rpc.IssueLabelParams{RepoID: repo, ID: id, Add: []string{"bug"}}); err != nil {
		t.Fatal(err)
	}
	waitIssue(t, ctx, b, repo, id, "the label", func(d rpc.IssueDetail) bool { return slices.Equal(d.Labels, []string{"bug"}) })
	waitIssue(t, ctx, c, repo, id, "the label", func(d rpc.IssueDetail) bool { return slices.Equal(d.Labels, []string{"bug"}) })

	// Concurrent comments on B and C converge everywhere.
	commentConcurrently(t, ctx, repo, id, []*running{b, c}, []*running{a, b, c})
	list, err := c.IssueList(ctx, rpc.IssueListParams{RepoID: repo, State: rpc.IssueOpen})
	if err != nil || len(list) != 1 || list[0].CommentCount != 2 {
		t.Fatalf("issue.list on the stranger: %+v, %v", list, err)
	}

	// Restarted from disk, alone, A still shows it.
	a.stop(t)
	again := start(t, cfg(rootA, "delegate"))
	d, err := again.IssueShow(ctx, rpc.IssueIDParams{RepoID: repo, ID: id})
	if err != nil || len(d.Comments) != 2 || d.Title != "Clone hangs" {
		t.Fatalf("after a restart: %+v, %v", d, err)
	}
}

// commentConcurrently comments on issue id from every writer at once and
// waits until every reader shows all the comments, in the same state.
func commentConcurrently(t *testing.T, ctx context.Context, repo, id string, writers, readers []*running) {
	t.Helper()
	errs := make(chan error, len(writers))
	for _, n := range writers {
		go func() {
			_, err := n.IssueComment(ctx, rpc.IssueCommentParams{RepoID: repo, ID: id, Body: "from " + n.cfg.Alias})
			errs <- err
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var states []string
	for _, n := range readers {
		d := waitIssue(t, ctx, n, repo, id, "every comment", func(d rpc.IssueDetail) bool { return len(d.Comments) == len(writers) })
		for i := range d.Comments {
			d.Comments[i].AuthorAlias = "" // aliases are each node's knowledge
		}
		d.AuthorAlias = ""
		j, _ := json.Marshal(d)
		states = append(states, string(j))
	}
	for i := 1; i < len(states); i++ {
		if states[i] != states[0] {
			t.Fatalf("the nodes disagree:\n%s\n%s", states[0], states[i])
		}
	}
}

// A holder that writes changes whose blob does not verify, or whose commit
// does not repeat the blob's parents, into its own namespace and signs it
// gets its refs accepted (they are its own) but those changes are left
// out: every node shows the honest state.
func TestTamperedChangesAreLeftOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "delegate"))
	m := start(t, fastCfg(shortRoot(t), "mallory", a))
	c := start(t, fastCfg(shortRoot(t), "reader", a))
	repo := sharedRepo(t, ctx, a, m, c)
	opened, err := a.IssueOpen(ctx, rpc.IssueOpenParams{RepoID: repo, Title: "Honest"})
	if err != nil {
		t.Fatal(err)
	}
	id := opened.Change
	waitIssue(t, ctx, m, repo, id, "the issue", func(d rpc.IssueDetail) bool { return d.Title == "Honest" })

	// Mallory writes, by hand, two bad changes on top of the root.
	rid, _ := parseRepo(repo)
	obj, _ := cob.ParseChangeID(id)
	bare, err := m.git.OpenBare(m.replica.Dir(rid))
	if err != nil {
		t.Fatal(err)
	}
	rootCommit := ownRef(t, ctx, bare, replica.Namespace(a.ID()), id)
	parents := []*cob.Change{changeOf(t, ctx, bare, rootCommit)}
	forged, err := cob.NewChange(m.key, cob.TypeIssue, obj, parents, []cob.Action{&cob.Edit{Title: ptr("Forged title")}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	blob := forged.Marshal()
	blob[len(blob)-1] ^= 1 // the signature no longer verifies
	orphan, err := cob.NewChange(m.key, cob.TypeIssue, obj, parents, []cob.Action{&cob.Comment{Body: "grafted"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ns, ref := replica.Namespace(m.ID()), cob.RefName(cob.TypeIssue, obj)
	bad, err := bare.WriteChange(ctx, ns, ref, "", gitstore.ChangeCommit{BlobName: cob.BlobName, Blob: blob, Parents: []string{rootCommit}, Message: "x", Author: "m"})
	if err != nil {
		t.Fatal(err)
	}
	// A valid blob whose parent is the root, in a commit whose parent is
	// the forged commit instead: without the loader's check of commit
	// parents, the comment would show.
	if _, err := bare.WriteChange(ctx, ns, ref, bad, gitstore.ChangeCommit{BlobName: cob.BlobName, Blob: orphan.Marshal(), Parents: []string{bad}, Message: "x", Author: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := m.replica.PublishOwn(ctx, rid); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*running{a, c} {
		testutil.WaitFor(t, n.cfg.Alias+" to fetch mallory's namespace", 20*time.Second, func() bool {
			d, err := n.RepoShow(ctx, rpc.RepoIDParams{RepoID: repo})
			if err != nil {
				return false
			}
			return slices.ContainsFunc(d.Namespaces, func(r rpc.NamespaceRefs) bool {
				return r.Node == m.ID().String() && slices.ContainsFunc(r.Refs, func(ri rpc.RefInfo) bool { return ri.Name == ref })
			})
		})
		d, err := n.IssueShow(ctx, rpc.IssueIDParams{RepoID: repo, ID: id})
		if err != nil || d.Title != "Honest" || len(d.Comments) != 0 || !slices.Equal(d.Heads, []string{id}) {
			t.Fatalf("%s shows %+v, %v; want the honest state", n.cfg.Alias, d, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// ownRef is the commit of namespace ns's ref of issue id.
func ownRef(t *testing.T, ctx context.Context, bare *gitstore.Bare, ns, id string) string {
	t.Helper()
	refs, err := bare.RefsUnder(ctx, cob.RefPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if r.Namespace == ns && r.Name == cob.RefPrefix+"issue/"+id {
			return r.OID
		}
	}
	t.Fatalf("no ref of issue %s in namespace %s: %v", id, ns, refs)
	return ""
}

// changeOf reads the change of a commit.
func changeOf(t *testing.T, ctx context.Context, bare *gitstore.Bare, commit string) *cob.Change {
	t.Helper()
	o, err := bare.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	cm, err := o.ReadCommit(commit)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := o.ReadTree(cm.Tree)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := o.Read(entries[0].OID, cob.MaxChangeSize)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := cob.ParseChange(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// A holder whose replica has another author's cob ref moved to a change
// the author never made does not serve that namespace; a newcomer that
// reaches the network through it gets the author's change from the honest
// holder and never shows the planted one.
func TestTamperedNamespaceIsNotServed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := start(t, fastCfg(shortRoot(t), "delegate"))
	b := start(t, fastCfg(shortRoot(t), "author", a))
	m := start(t, fastCfg(shortRoot(t), "mallory", a))
	repo := sharedRepo(t, ctx, a, b, m)
	opened, err := b.IssueOpen(ctx, rpc.IssueOpenParams{RepoID: repo, Title: "Honest"})
	if err != nil {
		t.Fatal(err)
	}
	id := opened.Change
	waitIssue(t, ctx, m, repo, id, "the issue", func(d rpc.IssueDetail) bool { return d.Title == "Honest" })

	// Mallory plants a comment of her own in the author's namespace of her
	// replica, without (being able to) re-sign it.
	rid, _ := parseRepo(repo)
	obj, _ := cob.ParseChangeID(id)
	bare, err := m.git.OpenBare(m.replica.Dir(rid))
	if err != nil {
		t.Fatal(err)
	}
	nsB := replica.Namespace(b.ID())
	root := ownRef(t, ctx, bare, nsB, id)
	planted, err := cob.NewChange(m.key, cob.TypeIssue, obj, []*cob.Change{changeOf(t, ctx, bare, root)}, []cob.Action{&cob.Comment{Body: "planted"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.WriteChange(ctx, nsB, cob.RefName(cob.TypeIssue, obj), root, gitstore.ChangeCommit{
		BlobName: cob.BlobName, Blob: planted.Marshal(), Parents: []string{root}, Message: "x", Author: "m",
	}); err != nil {
		t.Fatal(err)
	}

	r := start(t, fastCfg(shortRoot(t), "newcomer", m))
	d := waitIssue(t, ctx, r, repo, id, "the issue", func(d rpc.IssueDetail) bool { return d.Title == "Honest" })
	if len(d.Comments) != 0 || !slices.Equal(d.Heads, []string{id}) {
		t.Fatalf("the newcomer shows %+v: the planted change was served", d)
	}
}
