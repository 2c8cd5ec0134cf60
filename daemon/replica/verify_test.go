package replica

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// tamper edits n's replica of repo with git, as someone with the disk
// could: an evil branch and a moved main in ns.
func tamper(t *testing.T, n *node, repo identity.RepoID, ns string) {
	t.Helper()
	dir := n.Dir(repo)
	p := "refs/namespaces/" + ns + "/refs/heads/"
	parent := git(t, dir, "rev-parse", p+"main~1")
	git(t, dir, "update-ref", p+"evil", parent)
	git(t, dir, "update-ref", p+"main", parent)
}

// A middle node whose replica was tampered with on disk serves neither
// through the fetch server nor to git-remote-mega (Locate), records the
// error and resets the namespace to the signed refs.
func TestTamperedReplicaNotServed(t *testing.T) {
	owner, mid, repo, _ := pair(t, 0, nil)
	if _, err := fetch(t, mid, owner, repo); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := Namespace(owner.key.ID())
	signed, _ := mustBare(t, owner, repo).Refs(ctx, ns)
	if _, err := mid.Locate(ctx, Target{Repo: repo}); err != nil {
		t.Fatalf("locate before tampering: %v", err)
	}
	tamper(t, mid, repo, ns)

	// The fetch server leaves the namespace out.
	far := newNode(t, &pipeNet{t: t, server: mid.Service}, nil)
	res, err := fetch(t, far, mid, repo)
	if err != nil || res.Namespaces != 0 {
		t.Fatalf("fetch from the tampered node: %+v, %v; want no namespace served", res, err)
	}
	if got, _ := mustBare(t, mid, repo).Refs(ctx, ns); !equalRefs(got, signed) {
		t.Fatalf("after the refused fetch the namespace is %v, want it reset to %v", got, signed)
	}
	info, _ := mid.Info(ctx, repo)
	if !strings.Contains(info.LastError, "refs/heads/evil") || !strings.Contains(info.LastError, "refs/heads/main") {
		t.Fatalf("last error %q, want the evil and moved refs named", info.LastError)
	}

	// Tampered again: git-remote-mega's Locate refuses, and repairs.
	tamper(t, mid, repo, ns)
	if _, err := mid.Locate(ctx, Target{Repo: repo}); !errors.Is(err, ErrTampered) {
		t.Fatalf("locate of a tampered namespace: %v, want ErrTampered", err)
	}
	if _, err := mid.Locate(ctx, Target{Repo: repo}); err != nil {
		t.Fatalf("locate after the repair: %v", err)
	}
	if res, err := fetch(t, far, mid, repo); err != nil || res.Namespaces != 1 {
		t.Fatalf("fetch after the repair: %+v, %v", res, err)
	}
}
