package gitstore

import (
	"errors"
	"strings"
	"testing"
)

// The read-only views parse what git prints without trusting message
// content: a commit message that imitates cat-file's own output does not
// confuse Commits; Blob stays within its cap; CommitOf peels tags and
// refuses what is no commit.
func TestReadViews(t *testing.T) {
	r := &Runner{}
	work := newWork(t)
	first := commitFile(t, work, "dir/a.txt", "alpha\n", "first")
	fake := strings.Repeat("0", 40)
	second := commitFile(t, work, "big.txt", strings.Repeat("x", 10000), "second\n\n"+fake+" commit 5\nhello\n")
	gitT(t, work, "tag", "-a", "-m", "annotated", "v1")
	b := newBare(t, r)
	refs, err := b.Import(ctxT(t), work, "ns1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)

	commits, err := b.Log(ctx, second, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 2 || commits[0].OID != second || commits[1].OID != first || commits[0].Parents[0] != first {
		t.Fatalf("Log: %+v", commits)
	}
	c := commits[0]
	if c.Subject() != "second" || !strings.Contains(c.Message, fake+" commit 5\nhello") || c.Author.Name != "Test Author" || c.Author.When.IsZero() {
		t.Errorf("commit parsed as %+v", c)
	}
	if skipped, err := b.Log(ctx, second, 1, 10); err != nil || len(skipped) != 1 || skipped[0].OID != first {
		t.Errorf("Log skipping one: %v, %v", skipped, err)
	}

	root, err := b.Tree(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if len(root) != 2 || root[0].Name != "big.txt" || root[0].Size != 10000 || root[1].Name != "dir" || root[1].Type != "tree" || root[1].Size != -1 {
		t.Fatalf("Tree: %+v", root)
	}
	data, cut, err := b.Blob(ctx, root[0].OID, 100)
	if err != nil || len(data) != 100 || !cut {
		t.Errorf("Blob capped at 100: %d bytes, cut %v, %v", len(data), cut, err)
	}
	if _, _, err := b.Blob(ctx, root[1].OID, 100); err == nil {
		t.Errorf("Blob of a tree succeeded")
	}

	var tag string
	for _, ref := range refs {
		if ref.Name == "refs/tags/v1" {
			tag = ref.OID
		}
	}
	if got, err := b.CommitOf(ctx, tag); err != nil || got != second {
		t.Errorf("CommitOf the annotated tag: %q, %v; want %s", got, err, second)
	}
	for _, bad := range []string{root[0].OID, fake} {
		if _, err := b.CommitOf(ctx, bad); !errors.Is(err, ErrMissingObjects) {
			t.Errorf("CommitOf %s: %v, want ErrMissingObjects", bad, err)
		}
		if _, err := b.Commits(ctx, []string{bad}); !errors.Is(err, ErrMissingObjects) {
			t.Errorf("Commits %s: %v, want ErrMissingObjects", bad, err)
		}
	}
	if _, err := b.Tree(ctx, "--output=/tmp/x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Tree of an option: %v, want ErrInvalid", err)
	}

	patch, cut, err := b.Diff(ctx, first, second, 1<<20)
	if err != nil || cut || !strings.Contains(string(patch), "+++ b/big.txt") || strings.Contains(string(patch), "dir/a.txt") {
		t.Errorf("Diff: cut %v, %v\n%s", cut, err, patch)
	}
	if patch, _, err := b.Diff(ctx, "", first, 1<<20); err != nil || !strings.Contains(string(patch), "+alpha") {
		t.Errorf("Diff of the root commit: %v\n%s", err, patch)
	}
}
