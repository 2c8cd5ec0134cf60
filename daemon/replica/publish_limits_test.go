package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// longRef is a branch name of about n bytes, in path parts a file system
// accepts.
func longRef(n int) string {
	parts := []string{}
	for l := 0; l < n; l += 101 {
		parts = append(parts, strings.Repeat("x", 100))
	}
	return strings.Join(parts, "/")
}

// A branch over wire's name limit is left out of the publication, and
// repo add says so, naming it.
func TestShareWarnsOfUnpublishableBranch(t *testing.T) {
	work := workRepo(t, 0)
	name := longRef(1100)
	git(t, work, "branch", name)
	n := newNode(t, &pipeNet{t: t}, nil)
	repo, _, err := n.Share(context.Background(), work, "work", "")
	if err != nil {
		t.Fatalf("share: %v", err)
	}
	info, _ := n.Info(context.Background(), repo)
	if !strings.Contains(info.LastError, "not published") || !strings.Contains(info.LastError, name[:60]) {
		t.Fatalf("last error %q, want the long branch named", info.LastError)
	}
	refs, _ := n.Namespaces(repo)
	if len(refs) != 1 || len(refs[0].Refs) != 2 {
		t.Fatalf("signed refs %+v, want main and v1", refs)
	}
}

// More refs than signed refs carry is ErrInvalid with the limit, and
// nothing is published.
func TestShareRefusesTooManyRefs(t *testing.T) {
	work := workRepo(t, 0)
	head := git(t, work, "rev-parse", "HEAD")
	// Written as packed-refs: 4100 loose refs take seconds to create.
	var in strings.Builder
	in.WriteString("# pack-refs with: peeled fully-peeled sorted \n")
	for i := range 4100 {
		fmt.Fprintf(&in, "%s refs/heads/b%04d\n", head, i)
	}
	if err := os.WriteFile(filepath.Join(work, ".git", "packed-refs"), []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(git(t, work, "for-each-ref"), "\n") + 1; n < 4100 {
		t.Fatalf("%d refs", n)
	}
	n := newNode(t, &pipeNet{t: t}, nil)
	_, _, err := n.Share(context.Background(), work, "work", "")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("share of 4102 refs: %v, want ErrInvalid naming the limit", err)
	}
}
