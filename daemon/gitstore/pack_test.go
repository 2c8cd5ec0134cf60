package gitstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// replicaPair is a source replica holding a generated history in nsA and
// an empty destination replica.
type replicaPair struct {
	g        *genRepo
	src, dst *Bare
	refs     []Ref
}

func newReplicaPair(tb testing.TB, r *Runner, commits int) *replicaPair {
	tb.Helper()
	g := newGenRepo(tb, 100, 75)
	g.commits(commits, 5, 3)
	src := newBare(tb, r)
	refs, err := src.Import(ctxT(tb), g.dir, nsA)
	if err != nil {
		tb.Fatal(err)
	}
	return &replicaPair{g: g, src: src, dst: newBare(tb, r), refs: refs}
}

func TestPackIndexRoundTrip(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	p := newReplicaPair(t, r, 20)
	tips := refOIDs(p.refs)

	// Full transfer: no haves.
	var full bytes.Buffer
	n, err := p.src.PackObjects(ctx, tips, nil, &full, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || full.Len() == 0 {
		t.Fatalf("full pack: %d objects, %d bytes", n, full.Len())
	}
	fullLen := full.Len()
	if err := p.dst.Connected(ctx, tips); !errors.Is(err, ErrMissingObjects) {
		t.Fatalf("Connected before the pack = %v, want ErrMissingObjects", err)
	}
	if err := p.dst.IndexPack(ctx, &full, IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.dst.Connected(ctx, tips); err != nil {
		t.Fatal(err)
	}
	if err := p.dst.UpdateRefs(ctx, nsA, nil, p.refs); err != nil {
		t.Fatal(err)
	}
	assertRefs(t, p.dst, nsA, p.refs)

	// A one-line change: a thin pack against the previous tips.
	p.g.oneLine()
	refs2, err := p.src.Import(ctx, p.g.dir, nsA)
	if err != nil {
		t.Fatal(err)
	}
	var upd bytes.Buffer
	n2, err := p.src.PackObjects(ctx, refOIDs(refs2), tips, &upd, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("content %d KB in %d objects: full pack %d bytes; one-line update: %d objects, %d bytes",
		p.g.contentSize()/1024, n, fullLen, n2, upd.Len())
	// commit, root tree, one subtree, one blob (as a delta).
	if n2 != 4 {
		t.Errorf("update pack has %d objects, want 4", n2)
	}
	if upd.Len() > 2048 {
		t.Errorf("update pack is %d bytes, want < 2 KB", upd.Len())
	}
	// The pack is thin: its delta base is not in it, so index-pack alone
	// (without --fix-thin) into an empty repository fails.
	thinCheck := exec.Command("git", "index-pack", "--stdin")
	thinCheck.Dir = newBare(t, r).Dir
	thinCheck.Env = testEnv(t.TempDir())
	thinCheck.Stdin = bytes.NewReader(upd.Bytes())
	if out, err := thinCheck.CombinedOutput(); err == nil {
		t.Errorf("update pack indexed without its bases: not thin?\n%s", out)
	}

	if err := p.dst.IndexPack(ctx, bytes.NewReader(upd.Bytes()), IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.dst.Connected(ctx, refOIDs(refs2)); err != nil {
		t.Fatal(err)
	}
	if err := p.dst.UpdateRefs(ctx, nsA, p.refs, refs2); err != nil {
		t.Fatal(err)
	}
	assertRefs(t, p.dst, nsA, refs2)
	gitT(t, p.dst.Dir, "fsck", "--strict", "--no-progress")
	if err := p.dst.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if packs, _ := filepath.Glob(filepath.Join(p.dst.Dir, "objects", "pack", "*.pack")); len(packs) != 1 {
		t.Fatalf("after GC: packs %v, want one", packs)
	}
	assertRefs(t, p.dst, nsA, refs2)

	// The same pack twice is harmless.
	if err := p.dst.IndexPack(ctx, bytes.NewReader(upd.Bytes()), IndexOptions{}); err != nil {
		t.Fatalf("indexing the same pack again: %v", err)
	}

	// Nothing to send: wants contained in haves.
	var none bytes.Buffer
	if n, err := p.src.PackObjects(ctx, tips, refOIDs(refs2), &none, PackOptions{}); err != nil || n != 0 || none.Len() != 0 {
		t.Fatalf("PackObjects(old, have new) = %d, %v, %d bytes", n, err, none.Len())
	}
	if n, err := p.src.PackObjects(ctx, nil, tips, &none, PackOptions{}); err != nil || n != 0 || none.Len() != 0 {
		t.Fatalf("PackObjects(no wants) = %d, %v", n, err)
	}
	// Wants the sender does not have are an error, and nothing is written.
	var nothing bytes.Buffer
	if _, err := p.src.PackObjects(ctx, []string{strings.Repeat("cd", 20)}, nil, &nothing, PackOptions{}); err == nil || nothing.Len() != 0 {
		t.Fatalf("PackObjects(unknown want) = %v, %d bytes", err, nothing.Len())
	} else {
		t.Logf("unknown want: %v", err)
	}
	// Haves the sender does not have are ignored (a full pack again).
	var again bytes.Buffer
	if _, err := p.src.PackObjects(ctx, tips, []string{strings.Repeat("ab", 20)}, &again, PackOptions{}); err != nil || again.Len() != fullLen {
		t.Fatalf("PackObjects with an unknown have: %v, %d bytes, want %d", err, again.Len(), fullLen)
	}
}

func TestPackObjectsIgnoresBitmaps(t *testing.T) {
	// STACK.md: with reachability bitmaps, a thin pack carries whole blobs
	// instead of deltas against what the receiver has. PackObjects turns
	// them off even where the repository's config turns them on.
	r := &Runner{}
	ctx := ctxT(t)
	p := newReplicaPair(t, r, 20)
	gitT(t, p.src.Dir, "config", "pack.useBitmaps", "true")
	gitT(t, p.src.Dir, "repack", "-a", "-d", "-b", "-q")
	p.g.oneLine()
	refs2, err := p.src.Import(ctx, p.g.dir, nsA)
	if err != nil {
		t.Fatal(err)
	}
	// The penalty shows for new objects that are not deltas already: the
	// import brought a pack (transfer.fsckObjects makes fetch keep packs)
	// in which the blob is a delta that bitmaps would reuse; explode it.
	packs, err := filepath.Glob(filepath.Join(p.src.Dir, "objects", "pack", "*.idx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range packs {
		base := strings.TrimSuffix(idx, ".idx")
		if _, err := os.Stat(base + ".bitmap"); err == nil {
			continue
		}
		data, err := os.ReadFile(base + ".pack")
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(os.Remove(idx), os.Remove(base+".pack")); err != nil {
			t.Fatal(err)
		}
		gitIn(t, p.src.Dir, data, "unpack-objects", "-q")
	}
	var ours bytes.Buffer
	if _, err := p.src.PackObjects(ctx, refOIDs(refs2), refOIDs(p.refs), &ours, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	in := strings.Join(refOIDs(refs2), "\n") + "\n^" + strings.Join(refOIDs(p.refs), "\n^") + "\n"
	withBitmaps := gitIn(t, p.src.Dir, []byte(in), "-c", "pack.useBitmaps=true", "pack-objects", "--stdout", "--thin", "--revs", "--delta-base-offset", "-q")
	t.Logf("one-line update: %d bytes without bitmaps, %d bytes with them", ours.Len(), len(withBitmaps))
	if ours.Len() > 1024 || ours.Len()*2 > len(withBitmaps) {
		t.Errorf("our pack is %d bytes, git's with bitmaps %d: want < 1 KB and less than half", ours.Len(), len(withBitmaps))
	}
}

func TestIndexPackBadInputLeavesNothing(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	p := newReplicaPair(t, r, 3)
	var full bytes.Buffer
	if _, err := p.src.PackObjects(ctx, refOIDs(p.refs), nil, &full, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	// A thin update pack, for a repository that lacks its bases.
	p.g.oneLine()
	refs2, err := p.src.Import(ctx, p.g.dir, nsA)
	if err != nil {
		t.Fatal(err)
	}
	var thin bytes.Buffer
	if _, err := p.src.PackObjects(ctx, refOIDs(refs2), refOIDs(p.refs), &thin, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	errStream := errors.New("stream reset by peer")
	b := full.Bytes()
	for _, tc := range []struct {
		name string
		rd   func() io.Reader
		opt  IndexOptions
		is   error
	}{
		{name: "truncated", rd: func() io.Reader { return bytes.NewReader(b[:len(b)/2]) }},
		{name: "truncated in the trailer", rd: func() io.Reader { return bytes.NewReader(b[:len(b)-3]) }},
		{name: "garbage", rd: func() io.Reader { return strings.NewReader("this is not a pack\n") }},
		{name: "empty", rd: func() io.Reader { return strings.NewReader("") }},
		{name: "corrupt", rd: func() io.Reader {
			c := slices.Clone(b)
			c[len(c)/2] ^= 0xff
			return bytes.NewReader(c)
		}},
		{name: "trailing data", rd: func() io.Reader { return io.MultiReader(bytes.NewReader(b), strings.NewReader("junk")) }},
		{name: "much trailing data", rd: func() io.Reader { return io.MultiReader(bytes.NewReader(b), bytes.NewReader(make([]byte, 1<<20))) }},
		{name: "reader error", rd: func() io.Reader { return io.MultiReader(bytes.NewReader(b[:len(b)/2]), errReader{errStream}) }, is: errStream},
		{name: "thin without bases", rd: func() io.Reader { return bytes.NewReader(thin.Bytes()) }},
		{name: "too large", rd: func() io.Reader { return bytes.NewReader(b) }, opt: IndexOptions{MaxInputSize: int64(len(b) / 2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := packDirState(t, p.dst)
			err := p.dst.IndexPack(ctx, tc.rd(), tc.opt)
			if err == nil {
				t.Fatal("IndexPack succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			t.Logf("%v", err)
			if after := packDirState(t, p.dst); !slices.Equal(before, after) {
				t.Errorf("objects changed: before %v, after %v", before, after)
			}
		})
	}
	// After all that, the good pack still goes in.
	if err := p.dst.IndexPack(ctx, bytes.NewReader(b), IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.dst.Connected(ctx, refOIDs(p.refs)); err != nil {
		t.Fatal(err)
	}
}

// MaxInputSize refuses a pack one byte over the limit, keeps nothing of
// it, and accepts the same pack at exactly the limit.
func TestIndexPackMaxInputSize(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	p := newReplicaPair(t, r, 3)
	var pack bytes.Buffer
	if _, err := p.src.PackObjects(ctx, refOIDs(p.refs), nil, &pack, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	size := int64(pack.Len())
	before := packDirState(t, p.dst)

	err := p.dst.IndexPack(ctx, bytes.NewReader(pack.Bytes()), IndexOptions{MaxInputSize: size - 1})
	if err == nil {
		t.Fatalf("IndexPack accepted a %d-byte pack with MaxInputSize %d", size, size-1)
	}
	var ge *Error
	if !errors.As(err, &ge) || !strings.Contains(ge.Stderr, "exceeds maximum allowed size") {
		t.Fatalf("IndexPack over the limit = %v, want index-pack's size error", err)
	}
	for _, pattern := range []string{"objects/incoming-*", "objects/pack/tmp_*"} {
		if left, _ := filepath.Glob(filepath.Join(p.dst.Dir, pattern)); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	}
	if after := packDirState(t, p.dst); !slices.Equal(before, after) {
		t.Errorf("objects changed: before %v, after %v", before, after)
	}
	if err := p.dst.Connected(ctx, refOIDs(p.refs)); !errors.Is(err, ErrMissingObjects) {
		t.Fatalf("objects of the refused pack are present: Connected = %v", err)
	}

	if err := p.dst.IndexPack(ctx, bytes.NewReader(pack.Bytes()), IndexOptions{MaxInputSize: size}); err != nil {
		t.Fatalf("IndexPack at exactly the limit: %v", err)
	}
	if err := p.dst.Connected(ctx, refOIDs(p.refs)); err != nil {
		t.Fatal(err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestConnectedFindsMissingObjects(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	work := newWork(t)
	root := commitFile(t, work, "a.txt", "a\n", "root")
	tip := commitFile(t, work, "a.txt", "b\n", "tip")
	blob := gitT(t, work, "rev-parse", "HEAD:a.txt")

	// A tip that is not there at all.
	b := newBare(t, r)
	ghost := strings.Repeat("1", 40)
	if err := b.Connected(ctx, []string{ghost}); !errors.Is(err, ErrMissingObjects) || !strings.Contains(err.Error(), ghost) {
		t.Fatalf("Connected(ghost) = %v", err)
	}

	// A pack without the tip's parent: IndexPack (--strict) refuses it;
	// stored anyway (plain index-pack), Connected names the parent.
	noParent := gitIn(t, work, []byte(tip+"\n^"+root+"\n"), "pack-objects", "--revs", "--stdout", "-q")
	if err := b.IndexPack(ctx, strings.NewReader(noParent), IndexOptions{}); err == nil {
		t.Fatal("IndexPack --strict accepted a pack whose commit lacks its parent")
	} else {
		t.Logf("strict index-pack: %v", err)
	}
	gitIn(t, b.Dir, []byte(noParent), "index-pack", "--stdin")
	err := b.Connected(ctx, []string{tip})
	if !errors.Is(err, ErrMissingObjects) || !strings.Contains(err.Error(), root) {
		t.Fatalf("Connected(tip without parent) = %v, want ErrMissingObjects naming %s", err, root)
	}
	t.Logf("missing parent: %v", err)

	// A commit and its tree without the blob.
	b2 := newBare(t, r)
	tree := gitT(t, work, "rev-parse", "HEAD^{tree}")
	rootTree := gitT(t, work, "rev-parse", root+"^{tree}")
	gitIn(t, b2.Dir, []byte(gitIn(t, work, []byte(root+"\n"+rootTree+"\n"), "pack-objects", "--stdout", "-q")), "index-pack", "--stdin")
	err = b2.Connected(ctx, []string{root})
	rootBlob := gitT(t, work, "rev-parse", root+":a.txt")
	if !errors.Is(err, ErrMissingObjects) || !strings.Contains(err.Error(), rootBlob) {
		t.Fatalf("Connected(without blob) = %v, want ErrMissingObjects naming %s", err, rootBlob)
	}
	_, _ = tree, blob

	// Complete: fine, and tips reachable from existing refs are trivially so.
	b3 := newBare(t, r)
	if _, err := b3.Import(ctx, work, nsA); err != nil {
		t.Fatal(err)
	}
	if err := b3.Connected(ctx, []string{tip, root}); err != nil {
		t.Fatal(err)
	}
}

func TestProgress(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	p := newReplicaPair(t, r, 3)
	type report struct {
		stage       string
		done, total int
	}
	var mu sync.Mutex
	var reports []report
	rec := func(stage string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, report{stage, done, total})
	}
	var pack bytes.Buffer
	n, err := p.src.PackObjects(ctx, refOIDs(p.refs), nil, &pack, PackOptions{Progress: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.dst.IndexPack(ctx, &pack, IndexOptions{Progress: rec}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	last := map[string]report{}
	for _, r := range reports {
		last[r.stage] = r
	}
	t.Logf("%d reports, last per stage: %v", len(reports), last)
	for _, stage := range []string{"Counting objects", "Receiving objects"} {
		if r, ok := last[stage]; !ok || r.done != n || r.total != n {
			t.Errorf("stage %q: last report %v, want %d/%d", stage, r, n, n)
		}
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct {
	limit int
	n     int
}

var errSink = errors.New("peer went away")

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		return 0, errSink
	}
	f.n += len(p)
	return len(p), nil
}

func TestPackObjectsWriterError(t *testing.T) {
	rec := &pidRecorder{}
	r := &Runner{onStart: rec.add}
	p := newReplicaPair(t, r, 3)
	_, err := p.src.PackObjects(ctxT(t), refOIDs(p.refs), nil, &failingWriter{limit: 100}, PackOptions{})
	if !errors.Is(err, errSink) {
		t.Fatalf("PackObjects into a failing writer = %v", err)
	}
	rec.assertGroupsGone(t)
}

// A repack that fails or is stopped takes pack-objects' temporary files
// (written in objects/pack before they are renamed) with it, as well as
// its own .tmp-* ones.
func TestFailedRepackRemovesItsTemporaries(t *testing.T) {
	b := newBare(t, &Runner{})
	dir := filepath.Join(b.Dir, "objects", "pack")
	left := []string{"tmp_pack_AbC123", "tmp_idx_AbC123", ".tmp-42-pack-x.pack"}
	for _, name := range left {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("cut short"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the repack is stopped before it ends
	if err := b.Repack(ctx); err == nil {
		t.Fatal("a stopped repack reported success")
	}
	for _, name := range left {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s is still there after the failed repack", name)
		}
	}
}
