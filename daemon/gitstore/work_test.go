package gitstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestVersion(t *testing.T) {
	r := &Runner{}
	major, minor, err := r.Version(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("git %d.%d", major, minor)
	if err := r.CheckVersion(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in           string
		major, minor int
	}{
		{"git version 2.39.5\n", 2, 39},
		{"git version 2.30.0.windows.1", 2, 30},
		{"git version 2.39.5 (Apple Git-143)", 2, 39},
	} {
		ma, mi, err := parseVersion(tc.in)
		if err != nil || ma != tc.major || mi != tc.minor {
			t.Errorf("parseVersion(%q) = %d, %d, %v", tc.in, ma, mi, err)
		}
	}
	for _, bad := range []string{"", "hub version 2.1", "git version two.x"} {
		if _, _, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
	// A git that cannot be found is a clear error, not a panic.
	err = (&Runner{Bin: filepath.Join(t.TempDir(), "no-git")}).CheckVersion(ctxT(t))
	if err == nil {
		t.Fatal("CheckVersion with a missing binary succeeded")
	}
}

func TestIsRepo(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	work := newWork(t)
	commitFile(t, work, "sub/a.txt", "a\n", "first")

	gitdir, bare, err := r.IsRepo(ctx, work)
	if err != nil || bare || gitdir != filepath.Join(work, ".git") {
		t.Fatalf("IsRepo(work) = %q, %v, %v", gitdir, bare, err)
	}
	b := newBare(t, r)
	gitdir, bare, err = r.IsRepo(ctx, b.Dir)
	if err != nil || !bare || gitdir != b.Dir {
		t.Fatalf("IsRepo(bare) = %q, %v, %v", gitdir, bare, err)
	}
	// Not repositories: a subdirectory of a work tree (git must not look
	// upwards), a plain directory, a file, a missing path.
	file := filepath.Join(work, "sub", "a.txt")
	for _, p := range []string{filepath.Join(work, "sub"), t.TempDir(), file, filepath.Join(t.TempDir(), "missing")} {
		if _, _, err := r.IsRepo(ctx, p); !errors.Is(err, ErrNotRepo) {
			t.Errorf("IsRepo(%s) = %v, want ErrNotRepo", p, err)
		}
	}
}

func TestWorkRefsAndDefaultBranch(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	work := newWork(t)
	c1 := commitFile(t, work, "a.txt", "one\n", "one")
	gitT(t, work, "branch", "feature")
	gitT(t, work, "tag", "light")
	gitT(t, work, "tag", "-a", "-m", "annotated", "v1.0")
	c2 := commitFile(t, work, "a.txt", "two\n", "two")
	tagObj := gitT(t, work, "rev-parse", "refs/tags/v1.0")
	if tagObj == c1 {
		t.Fatal("annotated tag has no tag object")
	}
	// Other refs are not listed.
	gitT(t, work, "update-ref", "refs/notes/commits", c1)
	gitT(t, work, "update-ref", "refs/remotes/origin/main", c1)

	refs, err := r.WorkRefs(ctx, work)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{"refs/heads/feature", c1},
		{"refs/heads/main", c2},
		{"refs/tags/light", c1},
		{"refs/tags/v1.0", tagObj},
	}
	if !slices.Equal(refs, want) {
		t.Fatalf("WorkRefs = %v, want %v", refs, want)
	}

	branch, err := r.DefaultBranch(ctx, work)
	if err != nil || branch != "main" {
		t.Fatalf("DefaultBranch = %q, %v", branch, err)
	}
	gitT(t, work, "checkout", "--quiet", "--detach", c1)
	if _, err := r.DefaultBranch(ctx, work); !errors.Is(err, ErrDetached) {
		t.Fatalf("DefaultBranch on a detached HEAD = %v, want ErrDetached", err)
	}

	// An empty repository has no refs and still a default branch.
	empty := newWork(t)
	refs, err = r.WorkRefs(ctx, empty)
	if err != nil || len(refs) != 0 {
		t.Fatalf("WorkRefs(empty) = %v, %v", refs, err)
	}
	if b, err := r.DefaultBranch(ctx, empty); err != nil || b != "main" {
		t.Fatalf("DefaultBranch(empty) = %q, %v", b, err)
	}
}

func TestRootCommitFirstParent(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	work := newWork(t)
	root1 := commitFile(t, work, "a.txt", "a\n", "root one")
	commitFile(t, work, "a.txt", "a2\n", "on main")

	// A second history with its own root, merged into main: main's
	// first-parent chain still ends at root1.
	gitT(t, work, "checkout", "--quiet", "--orphan", "other")
	gitT(t, work, "rm", "--quiet", "-rf", "--cached", ".")
	if err := os.Remove(filepath.Join(work, "a.txt")); err != nil {
		t.Fatal(err)
	}
	root2 := commitFile(t, work, "b.txt", "b\n", "root two")
	gitT(t, work, "checkout", "--quiet", "main")
	gitT(t, work, "merge", "--quiet", "--allow-unrelated-histories", "-m", "merge other", "other")
	// A merge the other way round: on "other", main is the second parent.
	gitT(t, work, "checkout", "--quiet", "other")
	gitT(t, work, "merge", "--quiet", "--no-ff", "-m", "merge main", "main")
	gitT(t, work, "checkout", "--quiet", "main")
	// An orphan branch that nothing merges.
	gitT(t, work, "checkout", "--quiet", "--orphan", "lonely")
	root3 := commitFile(t, work, "c.txt", "c\n", "root three")
	gitT(t, work, "checkout", "--quiet", "main")

	if n := gitT(t, work, "rev-list", "--count", "--max-parents=0", "main"); n != "2" {
		t.Fatalf("main has %s roots, want 2", n)
	}
	for _, tc := range []struct{ tip, want string }{
		{"refs/heads/main", root1},
		{gitT(t, work, "rev-parse", "main"), root1},
		{"refs/heads/other", root2},
		{"refs/heads/lonely", root3},
	} {
		got, err := r.RootCommit(ctx, work, tc.tip)
		if err != nil || got != tc.want {
			t.Errorf("RootCommit(%s) = %q, %v, want %s", tc.tip, got, err, tc.want)
		}
	}
	// The same from a bare copy.
	bare := filepath.Join(t.TempDir(), "copy.git")
	gitT(t, "", "clone", "--quiet", "--bare", work, bare)
	if got, err := r.RootCommit(ctx, bare, "refs/heads/main"); err != nil || got != root1 {
		t.Errorf("RootCommit(bare) = %q, %v", got, err)
	}
	// Unknown tips are errors.
	for _, tip := range []string{"refs/heads/nope", "0123456789abcdef0123456789abcdef01234567"} {
		if _, err := r.RootCommit(ctx, work, tip); err == nil {
			t.Errorf("RootCommit(%s) succeeded", tip)
		}
	}
}
