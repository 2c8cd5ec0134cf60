package gitstore

import (
	"os"
	"path/filepath"
	"testing"
)

// CloneTo hard-links the replica's objects instead of copying them, and the
// clone is still complete and independent of later replica changes.
func TestCloneToLinksObjects(t *testing.T) {
	useTestUserEnv(t)
	ctx := ctxT(t)
	u := newUpstream(t)
	dest := filepath.Join(t.TempDir(), "clone")
	if err := u.b.CloneTo(ctx, nsA, dest, "mega://did:repo:zTest", "", nil); err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Glob(filepath.Join(u.b.Dir, "objects", "pack", "pack-*.pack"))
	if len(src) == 0 {
		t.Fatal("the replica has no pack")
	}
	linked := 0
	for _, p := range src {
		a, err1 := os.Stat(p)
		b, err2 := os.Stat(filepath.Join(dest, ".git", "objects", "pack", filepath.Base(p)))
		if err1 == nil && err2 == nil && os.SameFile(a, b) {
			linked++
		}
	}
	if linked != len(src) {
		t.Fatalf("%d of %d packs hard-linked", linked, len(src))
	}
	gitT(t, dest, "fsck", "--strict", "--no-dangling")
	// Removing the replica's pack does not break the clone (it holds a link).
	for _, p := range src {
		os.Remove(p)
	}
	gitT(t, dest, "fsck", "--strict", "--no-dangling")
}
