package gitstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

const nsA = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
const nsB = "z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"

func TestInitBareIdempotentAndConfigured(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	dir := filepath.Join(t.TempDir(), "repos", "x.git")
	b, err := r.InitBare(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Dir != dir {
		t.Fatalf("Dir = %q, want %q", b.Dir, dir)
	}
	for _, kv := range bareConfig {
		if got := gitT(t, dir, "config", "--get", kv[0]); got != kv[1] {
			t.Errorf("%s = %q, want %q", kv[0], got, kv[1])
		}
	}
	if got := gitT(t, dir, "rev-parse", "--is-bare-repository"); got != "true" {
		t.Fatalf("not bare: %s", got)
	}
	// Again: same repository, config repaired if someone changed it.
	gitT(t, dir, "config", "pack.useBitmaps", "true")
	commitInBare(t, b)
	if _, err := r.InitBare(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if got := gitT(t, dir, "config", "--get", "pack.useBitmaps"); got != "false" {
		t.Fatalf("pack.useBitmaps = %s after InitBare", got)
	}
	if _, err := r.OpenBare(dir); err != nil {
		t.Fatal(err)
	}

	// An empty directory is fine; a non-empty one that is no bare
	// repository, or a work tree, is refused by both.
	if _, err := r.InitBare(ctx, t.TempDir()); err != nil {
		t.Fatalf("InitBare(empty dir) = %v", err)
	}
	junk := t.TempDir()
	if err := os.WriteFile(filepath.Join(junk, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := newWork(t)
	for _, p := range []string{junk, work, filepath.Join(work, ".git")} {
		if _, err := r.InitBare(ctx, p); !errors.Is(err, ErrNotRepo) {
			t.Errorf("InitBare(%s) = %v, want ErrNotRepo", p, err)
		}
		if _, err := r.OpenBare(p); !errors.Is(err, ErrNotRepo) {
			t.Errorf("OpenBare(%s) = %v, want ErrNotRepo", p, err)
		}
	}
	if _, err := r.OpenBare(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrNotRepo) {
		t.Errorf("OpenBare(missing) = %v", err)
	}
}

// commitInBare puts a commit into namespace nsA of b through Import.
func commitInBare(t *testing.T, b *Bare) string {
	t.Helper()
	work := newWork(t)
	c := commitFile(t, work, "f", "x\n", "x")
	if _, err := b.Import(ctxT(t), work, nsA); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestImport(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	c1 := commitFile(t, work, "a.txt", "one\n", "one")
	gitT(t, work, "branch", "feature")
	gitT(t, work, "tag", "light")
	gitT(t, work, "tag", "-a", "-m", "annotated", "v1")
	c2 := commitFile(t, work, "a.txt", "two\n", "two")
	tagObj := gitT(t, work, "rev-parse", "refs/tags/v1")
	gitT(t, work, "update-ref", "refs/notes/commits", c1) // not imported

	refs, err := b.Import(ctx, work, nsA)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{"refs/heads/feature", c1},
		{"refs/heads/main", c2},
		{"refs/tags/light", c1},
		{"refs/tags/v1", tagObj},
	}
	if !slices.Equal(refs, want) {
		t.Fatalf("Import = %v, want %v", refs, want)
	}
	if got, err := b.Refs(ctx, nsA); err != nil || !slices.Equal(got, want) {
		t.Fatalf("Refs = %v, %v", got, err)
	}
	// The objects came along, the refs live in the namespace only.
	has, err := b.HasObjects(ctx, []string{c1, c2, tagObj, strings.Repeat("0", 40)})
	if err != nil {
		t.Fatal(err)
	}
	if !has[c1] || !has[c2] || !has[tagObj] || has[strings.Repeat("0", 40)] {
		t.Fatalf("HasObjects = %v", has)
	}
	if err := b.Connected(ctx, []string{c2, tagObj}); err != nil {
		t.Fatal(err)
	}
	if all := gitT(t, b.Dir, "for-each-ref", "--format=%(refname)"); strings.Contains(all, "\nrefs/heads/") || strings.HasPrefix(all, "refs/heads/") {
		t.Fatalf("refs outside the namespace:\n%s", all)
	}

	// The node's patch branches stay; the working repository's are not taken.
	gitT(t, b.Dir, "update-ref", "refs/namespaces/"+nsA+"/"+PatchBranches+"p1", c1)
	gitT(t, work, "branch", "patches/mine")
	refs, err = b.Import(ctx, work, nsA)
	if err != nil || !slices.Equal(refs, append([]Ref{{"refs/heads/feature", c1}, {"refs/heads/main", c2}, {PatchBranches + "p1", c1}}, want[2:]...)) {
		t.Fatalf("Import with patch branches = %v, %v", refs, err)
	}
	gitT(t, b.Dir, "update-ref", "-d", "refs/namespaces/"+nsA+"/"+PatchBranches+"p1")

	// A second namespace from another repository.
	other := newWork(t)
	c3 := commitFile(t, other, "b.txt", "b\n", "b")
	if _, err := b.Import(ctx, other, nsB); err != nil {
		t.Fatal(err)
	}
	if nss, err := b.Namespaces(ctx); err != nil || !slices.Equal(nss, []string{nsA, nsB}) {
		t.Fatalf("Namespaces = %v, %v", nss, err)
	}

	// Deleted branch and tags disappear on the next Import, a moved branch
	// moves; the other namespace is untouched.
	gitT(t, work, "branch", "-D", "feature")
	gitT(t, work, "tag", "-d", "light")
	gitT(t, work, "tag", "-d", "v1")
	gitT(t, work, "reset", "--quiet", "--hard", c1)
	refs, err = b.Import(ctx, work, nsA)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Ref{{"refs/heads/main", c1}}; !slices.Equal(refs, want) {
		t.Fatalf("Import after deletions = %v, want %v", refs, want)
	}
	if got, err := b.Refs(ctx, nsB); err != nil || !slices.Equal(got, []Ref{{"refs/heads/main", c3}}) {
		t.Fatalf("Refs(nsB) = %v, %v", got, err)
	}

	// A repository without commits empties the namespace.
	refs, err = b.Import(ctx, newWork(t), nsA)
	if err != nil || len(refs) != 0 {
		t.Fatalf("Import(empty) = %v, %v", refs, err)
	}
	if nss, _ := b.Namespaces(ctx); !slices.Equal(nss, []string{nsB}) {
		t.Fatalf("Namespaces = %v", nss)
	}
	// Not a repository.
	if _, err := b.Import(ctx, t.TempDir(), nsA); !errors.Is(err, ErrNotRepo) {
		t.Fatalf("Import(non-repo) = %v", err)
	}
}

func TestImportDropsRefsTheWireRejects(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	c := commitFile(t, work, "a", "a\n", "a")
	// Git accepts these names; the wire format does not (too long,
	// not UTF-8).
	gitT(t, work, "update-ref", "refs/heads/"+strings.Repeat("abcdefghi/", 110)+"x", c)
	gitT(t, work, "update-ref", "refs/tags/caf\xe9", c)
	refs, err := b.Import(ctx, work, nsA)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Ref{{"refs/heads/main", c}}; !slices.Equal(refs, want) {
		t.Fatalf("Import = %v, want %v", refs, want)
	}
	if got, _ := b.Refs(ctx, nsA); len(got) != 1 {
		t.Fatalf("namespace still holds %v", got)
	}
}

func TestUpdateRefsAtomic(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	c1 := commitFile(t, work, "a", "1\n", "1")
	c2 := commitFile(t, work, "a", "2\n", "2")
	c3 := commitFile(t, work, "a", "3\n", "3")
	if _, err := b.Import(ctx, work, nsB); err != nil { // brings the objects
		t.Fatal(err)
	}

	// Create from nothing.
	v1 := []Ref{{"refs/heads/main", c1}, {"refs/heads/old", c1}, {"refs/tags/t", c2}}
	if err := b.UpdateRefs(ctx, nsA, nil, v1); err != nil {
		t.Fatal(err)
	}
	assertRefs(t, b, nsA, v1)

	// A wrong expected value for one ref: nothing changes, not even the
	// refs whose expectations held.
	v2 := []Ref{{"refs/heads/main", c3}, {"refs/heads/new", c2}, {"refs/tags/t", c2}}
	wrong := []Ref{{"refs/heads/main", c1}, {"refs/heads/old", c2}, {"refs/tags/t", c2}}
	if err := b.UpdateRefs(ctx, nsA, wrong, v2); err == nil {
		t.Fatal("UpdateRefs with a wrong expected value succeeded")
	} else {
		t.Logf("wrong expectation: %v", err)
	}
	assertRefs(t, b, nsA, v1)
	// Expecting absence of a ref that exists fails too.
	if err := b.UpdateRefs(ctx, nsA, nil, []Ref{{"refs/heads/main", c2}}); err == nil {
		t.Fatal("creating an existing ref succeeded")
	}
	// A verify-only ref that moved fails the whole transaction.
	if err := b.UpdateRefs(ctx, nsA, []Ref{{"refs/heads/main", c1}, {"refs/tags/t", c1}}, []Ref{{"refs/heads/main", c2}, {"refs/tags/t", c1}}); err == nil {
		t.Fatal("UpdateRefs with a stale verified ref succeeded")
	}
	assertRefs(t, b, nsA, v1)
	// An object that is not in the repository cannot be a ref's value.
	if err := b.UpdateRefs(ctx, nsA, v1, append(slices.Clone(v1), Ref{"refs/heads/ghost", strings.Repeat("1", 40)})); err == nil {
		t.Fatal("UpdateRefs to a missing object succeeded")
	}
	assertRefs(t, b, nsA, v1)

	// Right expectations: update, create, delete, keep — all at once.
	if err := b.UpdateRefs(ctx, nsA, v1, v2); err != nil {
		t.Fatal(err)
	}
	assertRefs(t, b, nsA, v2)
	// Delete everything.
	if err := b.UpdateRefs(ctx, nsA, v2, nil); err != nil {
		t.Fatal(err)
	}
	assertRefs(t, b, nsA, nil)
	// nsB was never touched.
	assertRefs(t, b, nsB, []Ref{{"refs/heads/main", c3}})

	// Duplicates and invalid entries are refused.
	for _, bad := range [][]Ref{
		{{"refs/heads/a", c1}, {"refs/heads/a", c2}},
		{{"refs/heads/../x", c1}},
		{{"HEAD", c1}},
		{{"refs/heads/a", "HEAD"}},
	} {
		if err := b.UpdateRefs(ctx, nsA, nil, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateRefs(%v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func assertRefs(t *testing.T, b *Bare, ns string, want []Ref) {
	t.Helper()
	got, err := b.Refs(ctxT(t), ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("refs of %s = %v, want %v", ns, got, want)
	}
}

func TestSetHEADIsWhatUploadPackAdvertises(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	commitFile(t, work, "a", "a\n", "a")
	gitT(t, work, "branch", "dev")
	c := commitFile(t, work, "a", "b\n", "b")
	if _, err := b.Import(ctx, work, nsA); err != nil {
		t.Fatal(err)
	}
	if _, err := b.HEAD(ctx, nsA); !errors.Is(err, ErrDetached) {
		t.Fatalf("HEAD before SetHEAD = %v", err)
	}
	if err := b.SetHEAD(ctx, nsA, "main"); err != nil {
		t.Fatal(err)
	}
	if h, err := b.HEAD(ctx, nsA); err != nil || h != "main" {
		t.Fatalf("HEAD = %q, %v", h, err)
	}
	// Refs does not list the namespace's HEAD.
	if refs, _ := b.Refs(ctx, nsA); len(refs) != 2 {
		t.Fatalf("Refs = %v", refs)
	}
	// What the remote helper will serve: upload-pack with GIT_NAMESPACE.
	out := gitEnv(t, "", []string{"GIT_NAMESPACE=" + nsA}, "ls-remote", "--symref", b.Dir)
	if !strings.Contains(out, "ref: refs/heads/main\tHEAD") || !strings.Contains(out, c+"\tHEAD") {
		t.Fatalf("ls-remote --symref:\n%s", out)
	}
	if err := b.SetHEAD(ctx, nsA, "-x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetHEAD(-x) = %v", err)
	}
}

// gitEnv is gitT with extra environment variables.
func gitEnv(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := execGit(dir, args...)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestUserConfigDoesNotReachReplica(t *testing.T) {
	// A global config whose reference-transaction hook refuses every ref
	// update: git run with the daemon's environment must not see it.
	hooks := t.TempDir()
	hook := filepath.Join(hooks, "reference-transaction")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(cfg, []byte("[core]\n\thooksPath = "+hooks+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")

	r := &Runner{}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	c := commitFile(t, work, "a", "a\n", "a")
	if _, err := b.Import(ctx, work, nsA); err != nil {
		t.Fatalf("Import with a hostile user config: %v", err)
	}
	if err := b.UpdateRefs(ctx, nsA, []Ref{{"refs/heads/main", c}}, nil); err != nil {
		t.Fatalf("UpdateRefs with a hostile user config: %v", err)
	}
	// The hook does work where that config applies.
	cmd := execGit(b.Dir, "update-ref", "refs/heads/x", c)
	cmd.Env = append(cmd.Env, "GIT_CONFIG_GLOBAL="+cfg)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("the hook did not run: test is broken\n%s", out)
	}
}

// RefsUnder("refs/") lists, with one git process, every namespace's refs:
// the same as Namespaces and Refs together (a fetch's haves are their tips).
func TestRefsUnderAll(t *testing.T) {
	var started atomic.Int32
	r := &Runner{onStart: func(int) { started.Add(1) }}
	ctx := ctxT(t)
	b := newBare(t, r)
	if refs, err := b.RefsUnder(ctx, "refs/"); err != nil || len(refs) != 0 {
		t.Fatalf("RefsUnder of an empty replica = %#v, %v; want none", refs, err)
	}

	work := newWork(t)
	c1 := commitFile(t, work, "a.txt", "1\n", "one")
	gitT(t, work, "tag", "-a", "-m", "v1", "v1")
	tag := gitT(t, work, "rev-parse", "refs/tags/v1")
	c2 := commitFile(t, work, "a.txt", "2\n", "two")
	if _, err := b.Import(ctx, work, nsA); err != nil { // main c2, v1 tag
		t.Fatal(err)
	}
	c3 := commitFile(t, work, "a.txt", "3\n", "three")
	gitT(t, work, "branch", "dev", c1)
	if _, err := b.Import(ctx, work, nsB); err != nil { // main c3, dev c1, v1 tag again
		t.Fatal(err)
	}
	if err := b.SetHEAD(ctx, nsA, "main"); err != nil {
		t.Fatal(err)
	}
	// Refs that Namespaces and Refs do not see point at a blob, which must
	// not appear.
	blob := gitIn(t, b.Dir, []byte("outside\n"), "hash-object", "-w", "--stdin")
	for _, ref := range []string{"refs/outside/x", "refs/namespaces/not_valid/refs/tags/x", "refs/namespaces/" + nsA + "/other/x"} {
		gitT(t, b.Dir, "update-ref", ref, blob)
	}

	started.Store(0)
	all, err := b.RefsUnder(ctx, "refs/")
	if err != nil {
		t.Fatal(err)
	}
	if n := started.Load(); n != 1 {
		t.Errorf("RefsUnder ran %d git processes, want 1", n)
	}
	var got []string
	for _, r := range all {
		got = append(got, r.Namespace+" "+r.Name+" "+r.OID)
	}
	slices.Sort(got)

	var old []string
	nss, err := b.Namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		refs, err := b.Refs(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refs {
			old = append(old, ns+" "+r.Name+" "+r.OID)
		}
	}
	slices.Sort(old)
	if !slices.Equal(got, old) {
		t.Fatalf("RefsUnder = %v, Namespaces and Refs give %v", got, old)
	}
	want := []string{nsA + " refs/heads/main " + c2, nsA + " refs/tags/v1 " + tag,
		nsB + " refs/heads/dev " + c1, nsB + " refs/heads/main " + c3, nsB + " refs/tags/v1 " + tag}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("RefsUnder = %v, want %v", got, want)
	}
}

// Import moves objects by pack-objects and index-pack, not by git fetch
// (whose protocol, upload-pack and history walk cost more than the pack):
// with a git that refuses to fetch, imports of a new history, then of new
// commits, a deleted branch and a new tag on an old commit all work, and
// the replica is complete.
func TestImportWithoutFetch(t *testing.T) {
	bin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "git")
	body := "#!/bin/sh\nfor a; do [ \"$a\" = fetch ] && { echo no fetch >&2; exit 1; }; done\nexec " + bin + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Bin: script}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	c1 := commitFile(t, work, "a", "1\n", "one")
	gitT(t, work, "branch", "topic")
	if _, err := b.Import(ctx, work, nsA); err != nil {
		t.Fatal(err)
	}
	c2 := commitFile(t, work, "b", "2\n", "two")
	gitT(t, work, "branch", "-D", "topic")
	gitT(t, work, "tag", "old", c1)
	refs, err := b.Import(ctx, work, nsA)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{{"refs/heads/main", c2}, {"refs/tags/old", c1}}
	if !slices.Equal(refs, want) {
		t.Fatalf("Import = %v, want %v", refs, want)
	}
	assertRefs(t, b, nsA, want)
	gitT(t, b.Dir, "fsck", "--no-dangling")
}

// Import checks every object on the way in: a commit git fsck rejects (an
// author without an email) is not imported, by either way of copying.
func TestImportRefusesBadObjects(t *testing.T) {
	ctx := ctxT(t)
	b := newBare(t, &Runner{})
	work := newWork(t)
	commitFile(t, work, "a", "1\n", "one")
	if _, err := b.Import(ctx, work, nsA); err != nil {
		t.Fatal(err)
	}
	tree := gitT(t, work, "rev-parse", "HEAD^{tree}")
	bad := "tree " + tree + "\nauthor nobody 1700000000 +0000\ncommitter t <t@example.org> 1700000000 +0000\n\nbad\n"
	f := filepath.Join(t.TempDir(), "commit")
	os.WriteFile(f, []byte(bad), 0o644)
	c := gitT(t, work, "hash-object", "-t", "commit", "--literally", "-w", f)
	gitT(t, work, "update-ref", "refs/heads/bad", c)
	if _, err := b.Import(ctx, work, nsA); err == nil {
		t.Fatal("a commit that git fsck rejects was imported")
	}
	if refs, _ := b.Refs(ctx, nsA); slices.ContainsFunc(refs, func(r Ref) bool { return r.Name == "refs/heads/bad" }) {
		t.Fatalf("the bad branch is in the namespace: %v", refs)
	}
}

// HasObjects finds what the pack indexes and loose objects list without
// running git, and asks git only about the rest (here the missing id).
func TestHasObjectsReadsTheStore(t *testing.T) {
	var started atomic.Int32
	r := &Runner{onStart: func(int) { started.Add(1) }}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	c1 := commitFile(t, work, "a", "1\n", "one")
	c2 := commitFile(t, work, "b", "2\n", "two")
	if _, err := b.Import(ctx, work, nsA); err != nil { // a pack
		t.Fatal(err)
	}
	loose := gitIn(t, b.Dir, []byte("loose\n"), "hash-object", "-w", "--stdin")
	missing := strings.Repeat("0", 40)
	started.Store(0)
	has, err := b.HasObjects(ctx, []string{c1, c2, loose})
	if err != nil || !has[c1] || !has[c2] || !has[loose] {
		t.Fatalf("HasObjects = %v, %v", has, err)
	}
	if n := started.Load(); n != 0 {
		t.Errorf("HasObjects of listed objects ran %d git processes, want none", n)
	}
	has, err = b.HasObjects(ctx, []string{c1, missing})
	if err != nil || !has[c1] || has[missing] {
		t.Fatalf("HasObjects = %v, %v", has, err)
	}
	if n := started.Load(); n != 1 {
		t.Errorf("HasObjects with a missing id ran %d git processes, want 1", n)
	}
}
