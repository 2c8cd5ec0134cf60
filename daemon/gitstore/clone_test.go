package gitstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upstream is a working repository imported into namespace nsA of a replica.
type upstream struct {
	work string
	b    *Bare
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{work: newWork(t), b: newBare(t, &Runner{})}
	commitFile(t, u.work, "README", "hello\n", "first")
	gitT(t, u.work, "tag", "-a", "-m", "release", "v1")
	gitT(t, u.work, "tag", "light")
	gitT(t, u.work, "branch", "dev")
	commitFile(t, u.work, "src/main.go", "package main\n", "second")
	u.sync(t)
	return u
}

func (u *upstream) sync(t *testing.T) {
	t.Helper()
	if _, err := u.b.Import(ctxT(t), u.work, nsA); err != nil {
		t.Fatal(err)
	}
}

func revParse(t *testing.T, dir string, revs ...string) string {
	t.Helper()
	return gitT(t, dir, append([]string{"rev-parse"}, revs...)...)
}

func TestCloneToAndPullInto(t *testing.T) {
	useTestUserEnv(t)
	ctx := ctxT(t)
	u := newUpstream(t)
	dest := filepath.Join(t.TempDir(), "clone")
	if err := u.b.CloneTo(ctx, nsA, dest, "mega://did:repo:zTest", "", nil); err != nil {
		t.Fatal(err)
	}
	// Same commits, branches and tags as the source.
	for _, pair := range [][2]string{
		{"HEAD", "refs/heads/main"},
		{"refs/remotes/origin/main", "refs/heads/main"},
		{"refs/remotes/origin/dev", "refs/heads/dev"},
		{"refs/tags/v1", "refs/tags/v1"},
		{"refs/tags/light", "refs/tags/light"},
	} {
		if got, want := revParse(t, dest, pair[0]), revParse(t, u.work, pair[1]); got != want {
			t.Errorf("clone %s = %s, source %s = %s", pair[0], got, pair[1], want)
		}
	}
	if got := gitT(t, dest, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Errorf("HEAD -> %s", got)
	}
	for key, want := range map[string]string{
		"remote.origin.url":   "mega://did:repo:zTest",
		"remote.origin.fetch": "+refs/heads/*:refs/remotes/origin/*",
		"branch.main.remote":  "origin",
		"branch.main.merge":   "refs/heads/main",
	} {
		if got := gitT(t, dest, "config", "--get", key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "src", "main.go")); err != nil || string(b) != "package main\n" {
		t.Fatalf("work tree: %q, %v", b, err)
	}
	if st := gitT(t, dest, "status", "--porcelain"); st != "" {
		t.Fatalf("clone is dirty:\n%s", st)
	}
	// No stray refs: the namespace prefix does not leak into the clone.
	if refs := gitT(t, dest, "for-each-ref", "--format=%(refname)"); strings.Contains(refs, "namespaces") {
		t.Fatalf("clone refs:\n%s", refs)
	}

	// Up to date: nothing happens.
	if updated, err := u.b.PullInto(ctx, nsA, dest); err != nil || updated {
		t.Fatalf("PullInto (up to date) = %v, %v", updated, err)
	}
	// A new commit and tag upstream, a deleted branch: fast-forward.
	c := commitFile(t, u.work, "src/main.go", "package main\n\nfunc main() {}\n", "third")
	gitT(t, u.work, "tag", "v2")
	gitT(t, u.work, "branch", "-D", "dev")
	u.sync(t)
	updated, err := u.b.PullInto(ctx, nsA, dest)
	if err != nil || !updated {
		t.Fatalf("PullInto = %v, %v", updated, err)
	}
	if got := revParse(t, dest, "HEAD"); got != c {
		t.Fatalf("HEAD = %s after pull, want %s", got, c)
	}
	if got := revParse(t, dest, "refs/tags/v2"); got != c {
		t.Fatalf("tag v2 = %s", got)
	}
	if out := gitT(t, dest, "for-each-ref", "--format=%(refname)", "refs/remotes/origin/dev"); out != "" {
		t.Fatalf("origin/dev not pruned: %s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "src", "main.go")); !strings.Contains(string(b), "func main") {
		t.Fatalf("work tree not updated: %q", b)
	}
	// Local commits on top (ahead only): left alone.
	local := commitFile(t, dest, "local.txt", "mine\n", "local")
	if updated, err := u.b.PullInto(ctx, nsA, dest); err != nil || updated {
		t.Fatalf("PullInto (ahead) = %v, %v", updated, err)
	}
	if got := revParse(t, dest, "HEAD"); got != local {
		t.Fatalf("HEAD moved: %s", got)
	}
}

func TestPullIntoDivergedLeavesWorkTree(t *testing.T) {
	useTestUserEnv(t)
	ctx := ctxT(t)
	u := newUpstream(t)
	dest := filepath.Join(t.TempDir(), "clone")
	if err := u.b.CloneTo(ctx, nsA, dest, "mega://x", "main", nil); err != nil {
		t.Fatal(err)
	}
	local := commitFile(t, dest, "README", "local change\n", "local")
	commitFile(t, u.work, "README", "upstream change\n", "upstream")
	u.sync(t)

	updated, err := u.b.PullInto(ctx, nsA, dest)
	if !errors.Is(err, ErrDiverged) || updated {
		t.Fatalf("PullInto (diverged) = %v, %v, want ErrDiverged", updated, err)
	}
	if !strings.Contains(err.Error(), "main") {
		t.Errorf("error does not name the branch: %v", err)
	}
	t.Logf("diverged: %v", err)
	if got := revParse(t, dest, "HEAD"); got != local {
		t.Fatalf("HEAD moved to %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "README")); string(b) != "local change\n" {
		t.Fatalf("work tree changed: %q", b)
	}
	if st := gitT(t, dest, "status", "--porcelain"); st != "" {
		t.Fatalf("work tree dirty:\n%s", st)
	}
}

func TestPullIntoBlockedByLocalChanges(t *testing.T) {
	useTestUserEnv(t)
	ctx := ctxT(t)
	u := newUpstream(t)
	dest := filepath.Join(t.TempDir(), "clone")
	if err := u.b.CloneTo(ctx, nsA, dest, "mega://x", "main", nil); err != nil {
		t.Fatal(err)
	}
	head := revParse(t, dest, "HEAD")
	if err := os.WriteFile(filepath.Join(dest, "README"), []byte("uncommitted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	commitFile(t, u.work, "README", "upstream change\n", "upstream")
	u.sync(t)

	updated, err := u.b.PullInto(ctx, nsA, dest)
	if !errors.Is(err, ErrLocalChanges) || updated {
		t.Fatalf("PullInto (dirty) = %v, %v, want ErrLocalChanges", updated, err)
	}
	t.Logf("dirty: %v", err)
	if got := revParse(t, dest, "HEAD"); got != head {
		t.Fatalf("HEAD moved to %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "README")); string(b) != "uncommitted\n" {
		t.Fatalf("local change lost: %q", b)
	}
}

func TestCloneToRefusals(t *testing.T) {
	useTestUserEnv(t)
	ctx := ctxT(t)
	u := newUpstream(t)
	// A non-empty destination is refused and left alone.
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := u.b.CloneTo(ctx, nsA, full, "mega://x", "main", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CloneTo(non-empty) = %v", err)
	}
	if _, err := os.Stat(filepath.Join(full, "keep")); err != nil {
		t.Fatal(err)
	}
	// An empty directory is fine; a branch the namespace lacks is refused
	// and the destination is left as it was.
	empty := t.TempDir()
	if err := u.b.CloneTo(ctx, nsA, empty, "mega://x", "nope", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CloneTo(missing branch) = %v", err)
	}
	missing := filepath.Join(t.TempDir(), "new")
	if err := u.b.CloneTo(ctx, nsB, missing, "mega://x", "", nil); err == nil {
		t.Fatal("CloneTo of an empty namespace succeeded")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed clone left %s behind: %v", missing, err)
	}
	if err := u.b.CloneTo(ctx, nsA, empty, "mega://x", "dev", nil); err != nil {
		t.Fatal(err)
	}
	if got := gitT(t, empty, "symbolic-ref", "--short", "HEAD"); got != "dev" {
		t.Fatalf("checked out %s, want dev", got)
	}
	// With SetHEAD, the namespace's HEAD picks the branch.
	if err := u.b.SetHEAD(ctx, nsA, "dev"); err != nil {
		t.Fatal(err)
	}
	viaHead := filepath.Join(t.TempDir(), "c")
	if err := u.b.CloneTo(ctx, nsA, viaHead, "mega://x", "", nil); err != nil {
		t.Fatal(err)
	}
	if got := gitT(t, viaHead, "symbolic-ref", "--short", "HEAD"); got != "dev" {
		t.Fatalf("checked out %s, want dev (the namespace's HEAD)", got)
	}
	// PullInto wants a work tree.
	if _, err := u.b.PullInto(ctx, nsA, u.b.Dir); !errors.Is(err, ErrNotRepo) {
		t.Fatalf("PullInto(bare) = %v", err)
	}
}

func TestUserEnvDropsRepoRedirects(t *testing.T) {
	t.Setenv("GIT_DIR", "/somewhere/else")
	t.Setenv("GIT_WORK_TREE", "/else")
	t.Setenv("GIT_INDEX_FILE", "/else/index")
	t.Setenv("GIT_NAMESPACE", "evil")
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
	t.Setenv("GIT_CONFIG_VALUE_0", "/evil")
	t.Setenv("GIT_AUTHOR_NAME", "Kept")
	env := strings.Join(userEnv(), "\n") + "\n"
	for _, k := range []string{"GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=", "GIT_NAMESPACE=", "GIT_CONFIG_COUNT=", "GIT_CONFIG_KEY_0=", "GIT_CONFIG_VALUE_0="} {
		if strings.Contains("\n"+env, "\n"+k) {
			t.Errorf("userEnv keeps %s", k)
		}
	}
	if !strings.Contains(env, "GIT_AUTHOR_NAME=Kept\n") || !strings.Contains(env, "LC_ALL=C\n") {
		t.Errorf("userEnv lost the user's identity or the C locale:\n%s", env)
	}
	// And the clean environment inherits nothing of the sort.
	clean := strings.Join((&Runner{}).cleanEnv(), "\n")
	if strings.Contains(clean, "GIT_DIR") || strings.Contains(clean, "Kept") || !strings.Contains(clean, "GIT_CONFIG_GLOBAL="+os.DevNull) {
		t.Errorf("cleanEnv:\n%s", clean)
	}
}

// CloneTo holds the replica while it reads the replica's objects, once,
// and lets go before the checkout (which reads the clone's own links).
func TestCloneToHoldsTheReplicaForItsObjectsOnly(t *testing.T) {
	useTestUserEnv(t)
	u := newUpstream(t)
	dest := filepath.Join(t.TempDir(), "clone")
	holds, released := 0, 0
	var atRelease []os.DirEntry
	hold := func() func() {
		holds++
		return func() {
			released++
			atRelease, _ = os.ReadDir(dest)
		}
	}
	if err := u.b.CloneTo(ctxT(t), nsA, dest, "mega://x", "main", hold); err != nil {
		t.Fatal(err)
	}
	if holds != 1 || released != 1 {
		t.Fatalf("held %d times, released %d times; want once", holds, released)
	}
	if len(atRelease) != 1 || atRelease[0].Name() != ".git" {
		t.Fatalf("at the release the clone held %v; want only .git (no checkout yet)", atRelease)
	}
	if entries, _ := os.ReadDir(dest); len(entries) < 2 {
		t.Fatalf("nothing checked out: %v", entries)
	}
}
