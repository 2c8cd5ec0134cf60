package gitstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A replica whose largest pack got a bitmap: a full pack of every tip, also
// of tips outside the bitmap (a later import), is complete, and git's own
// check of the bitmap against a walk passes.
func TestBitmapCoversTheLargestPack(t *testing.T) {
	ctx := ctxT(t)
	p := newReplicaPair(t, &Runner{}, 20)
	if !p.src.BitmapDue(1) {
		t.Fatal("a replica without a bitmap is not due for one")
	}
	if p.src.BitmapDue(1 << 40) {
		t.Fatal("a bitmap is due for a pack below the minimum size")
	}
	if err := p.src.WriteBitmap(ctx); err != nil {
		t.Fatal(err)
	}
	if p.src.BitmapDue(1) {
		t.Fatal("still due after WriteBitmap")
	}
	tip := refOIDs(p.refs)[0]
	gitT(t, p.src.Dir, "rev-list", "--test-bitmap", tip)

	p.g.commits(3, 5, 3)
	refs, err := p.src.Import(ctx, p.g.dir, nsA)
	if err != nil {
		t.Fatal(err)
	}
	if p.src.BitmapDue(1) {
		t.Fatal("a small new pack made the bitmap of the largest due again")
	}
	var full bytes.Buffer
	if _, err := p.src.PackObjects(ctx, refOIDs(refs), nil, &full, PackOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
	if err := p.dst.IndexPack(ctx, &full, IndexOptions{SelfContained: true}); err != nil {
		t.Fatalf("the full pack of tips outside the bitmap: %v", err)
	}
	if err := p.dst.Connected(ctx, refOIDs(refs)); err != nil {
		t.Fatal(err)
	}
}

// Rolling the bitmapped pack up with another (two packs of about one
// size) leaves a replica git reads without complaint, due for a new
// bitmap of the new largest pack.
func TestRepackOfTheBitmappedPack(t *testing.T) {
	ctx := ctxT(t)
	b := newBare(t, &Runner{})
	one, two := newGenRepoSeeded(t, 100, 75, 1), newGenRepoSeeded(t, 100, 75, 2)
	one.commits(1, 0, 0)
	two.commits(1, 0, 0)
	if _, err := b.Import(ctx, one.dir, nsA); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteBitmap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Import(ctx, two.dir, nsB); err != nil {
		t.Fatal(err)
	}
	if packs, _ := b.Packs(); len(packs) != 2 {
		t.Fatalf("%d packs after two imports, want 2", len(packs))
	}
	if err := b.Repack(ctx); err != nil {
		t.Fatal(err)
	}
	if packs, _ := b.Packs(); len(packs) != 1 {
		t.Fatalf("%d packs after the repack, want the two rolled into 1", len(packs))
	}
	gitT(t, b.Dir, "fsck", "--strict", "--no-dangling")
	if !b.BitmapDue(1) {
		t.Fatal("the new largest pack is not due for a bitmap")
	}
	if err := b.WriteBitmap(ctx); err != nil {
		t.Fatal(err)
	}
	gitT(t, b.Dir, "rev-list", "--test-bitmap", one.head())
}

// A bitmap write that fails (here: over a lock a killed write left)
// leaves no temporary file behind.
func TestFailedBitmapWriteRemovesItsTemporaries(t *testing.T) {
	p := newReplicaPair(t, &Runner{}, 3)
	dir := filepath.Join(p.src.Dir, "objects", "pack")
	left := []string{"multi-pack-index.lock", "tmp_bitmap_AbC123"}
	for _, name := range left {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("cut short"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.src.WriteBitmap(ctxT(t)); err == nil {
		t.Fatal("a bitmap write over another's lock reported success")
	}
	for _, name := range left {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s is still there after the failed write", name)
		}
	}
	if !p.src.BitmapDue(1) {
		t.Fatal("a failed write left a bitmap")
	}
}
