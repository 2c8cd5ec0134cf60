package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/collab"
	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/internal/testutil"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/rpc"
)

// writeIssues writes n issues (root changes by the node) into its own
// namespace of repo with one git fast-import, much faster than n calls of
// issue.open, which the benchmark does not measure.
func writeIssues(tb testing.TB, node *running, repo string, n int) {
	tb.Helper()
	rid, _ := parseRepo(repo)
	ns := replica.Namespace(node.ID())
	var in bytes.Buffer
	for i := range n {
		ch, err := cob.NewChange(node.key, cob.TypeIssue, cob.ObjectID{}, nil,
			[]cob.Action{&cob.Open{Title: fmt.Sprintf("Issue %d", i), Body: "Something is wrong."}}, time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		blob := ch.Marshal()
		fmt.Fprintf(&in, "blob\nmark :%d\ndata %d\n", i+1, len(blob))
		in.Write(blob)
		fmt.Fprintf(&in, "\ncommit refs/namespaces/%s/%s\ncommitter t <t> 0 +0000\ndata 0\nM 100644 :%d %s\n\n",
			ns, cob.RefName(cob.TypeIssue, ch.ID()), i+1, cob.BlobName)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Env = []string{"GIT_DIR=" + node.replica.Dir(rid), "HOME=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, out)
	}
}

// Listing the issues of a repository that has 1,000: cold (a new service,
// so every change is read through one cat-file process and folded) and
// warm (the folds are cached by heads: one git for-each-ref).
func BenchmarkIssueList1000(b *testing.B) {
	ctx := context.Background()
	n := start(b, fastCfg(shortRoot(b), "bench"))
	info, err := n.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(b)})
	if err != nil {
		b.Fatal(err)
	}
	writeIssues(b, n, info.RepoID, 1000)
	rid, _ := parseRepo(info.RepoID)
	list := func(svc *collab.Service) {
		issues, err := svc.Issues(ctx, rid)
		if err != nil || len(issues) != 1000 {
			b.Fatalf("listed %d issues: %v", len(issues), err)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			svc, err := collab.New(collab.Config{Key: n.key, Git: n.git, Replica: n.replica})
			if err != nil {
				b.Fatal(err)
			}
			list(svc)
		}
	})
	b.Run("warm", func(b *testing.B) {
		list(n.collab)
		for b.Loop() {
			list(n.collab)
		}
	})
	// fast-import and fetches leave loose refs, which for-each-ref reads
	// one file each; git gc (the replica's repacking) packs them.
	cmd := exec.Command("git", "pack-refs", "--all")
	cmd.Env = []string{"GIT_DIR=" + n.replica.Dir(rid), "HOME=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git pack-refs: %v\n%s", err, out)
	}
	b.Run("warm-packed-refs", func(b *testing.B) {
		list(n.collab)
		for b.Loop() {
			list(n.collab)
		}
	})
}

// The time from issue.comment on one node to the comment showing on a
// connected peer (loopback QUIC): the change is written and signed, the
// ActivityAnnouncement makes the peer fetch at once, the peer refolds and
// tells subscribers (cob.changed). Goal: under 0.5 s.
func BenchmarkCommentToPeer(b *testing.B) {
	ctx := context.Background()
	a := start(b, fastCfg(shortRoot(b), "writer"))
	p := start(b, fastCfg(shortRoot(b), "reader", a))
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(b)})
	if err != nil {
		b.Fatal(err)
	}
	testutil.WaitFor(b, "the peer to replicate", 20*time.Second, func() bool {
		got, err := p.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID})
		return err == nil && got.Replica == rpc.ReplicaUpToDate
	})
	opened, err := a.IssueOpen(ctx, rpc.IssueOpenParams{RepoID: info.RepoID, Title: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	id := opened.Change
	events, cancel := p.Subscribe([]string{rpc.EventCobChanged})
	defer cancel()
	want := 0
	shown := func() bool {
		d, err := p.IssueShow(ctx, rpc.IssueIDParams{RepoID: info.RepoID, ID: id})
		return err == nil && len(d.Comments) == want
	}
	for !shown() {
		<-events // the issue itself
	}
	for b.Loop() {
		want++
		if _, err := a.IssueComment(ctx, rpc.IssueCommentParams{RepoID: info.RepoID, ID: id, Body: fmt.Sprint("comment ", want)}); err != nil {
			b.Fatal(err)
		}
		for !shown() {
			select {
			case <-events:
			case <-time.After(10 * time.Second):
				b.Fatalf("comment %d did not reach the peer", want)
			}
		}
	}
}
