package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// checkURL accepts a remote URL to store in a working copy's config.
func checkURL(u string) error {
	if u == "" || strings.HasPrefix(u, "-") {
		return invalid("remote URL %q", clip(u))
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c < 0x20 || c == 0x7f {
			return invalid("remote URL %q: control character", clip(u))
		}
	}
	return nil
}

// CloneTo makes a working copy at dest from namespace ns, as git clone
// would from a remote: the namespace's branches become refs/remotes/origin/*
// and its tags refs/tags/*; remote "origin" gets URL originURL (e.g.
// mega://<repo-id>) and the usual fetch refspec; branch is checked out,
// tracking origin/<branch>. An empty branch means the namespace's HEAD (see
// SetHEAD), else "main", else "master", else its only branch.
//
// dest must not exist or be an empty directory; on failure it is removed
// (or emptied) again. Git runs with the user's environment (minus variables
// that point it at another repository), so the user's configuration applies
// to the new working copy.
//
// hold, if not nil, is called before the replica's object files are read
// (linked, or fetched from) and what it returns once they were: the caller
// keeps a repack from removing packs meanwhile, and only as long (the
// checkout reads the clone's own links).
func (b *Bare) CloneTo(ctx context.Context, ns, dest, originURL, branch string, hold func() (release func())) (err error) {
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	if err := checkURL(originURL); err != nil {
		return err
	}
	if branch != "" {
		if err := checkBranch(branch); err != nil {
			return err
		}
	}
	abs, err := absPath(dest)
	if err != nil {
		return err
	}
	refs, err := b.Refs(ctx, ns)
	if err != nil {
		return err
	}
	if branch == "" {
		if branch, err = b.pickBranch(ctx, ns, refs); err != nil {
			return err
		}
	} else if !hasRef(refs, "refs/heads/"+branch) {
		return fmt.Errorf("cloning namespace %s: %w: it has no branch %q", ns, ErrInvalid, branch)
	}

	undo, err := prepareDest(abs, dest)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	run := func(args ...string) error {
		_, err := b.r.run(ctx, call{args: args, dir: abs, userEnv: true})
		return err
	}
	steps := [][]string{
		{"init", "--quiet", "--initial-branch=" + branch},
		{"config", "remote.origin.url", originURL},
		{"config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return fmt.Errorf("cloning namespace %s into %s: %w", ns, dest, err)
		}
	}
	// As git clone --local does: hard-link the replica's objects, then write
	// the refs directly. The replica's objects were verified when they
	// arrived, so the connectivity walk a fetch would do (seconds for a
	// large history) is not needed. If any object cannot be linked (another
	// file system, say), a fetch copies what is needed instead.
	if err := b.cloneObjects(ctx, ns, abs, refs, run, hold); err != nil {
		return fmt.Errorf("cloning namespace %s into %s: %w", ns, dest, err)
	}
	steps = [][]string{
		{"symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/" + branch},
		{"checkout", "--quiet", "-b", branch, "--track", "origin/" + branch},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return fmt.Errorf("cloning namespace %s into %s: %w", ns, dest, err)
		}
	}
	return nil
}

// cloneObjects gives the clone at abs the replica's objects and ns's refs,
// holding the replica (hold) meanwhile.
func (b *Bare) cloneObjects(ctx context.Context, ns, abs string, refs []Ref, run func(...string) error, hold func() func()) error {
	if hold != nil {
		defer hold()()
	}
	if b.linkObjects(filepath.Join(abs, ".git", "objects")) {
		return b.writeCloneRefs(ctx, abs, refs)
	}
	p := nsPrefix(ns)
	return run(fetchArgs(b.Dir, false, "+"+p+"refs/heads/*:refs/remotes/origin/*", "+"+p+"refs/tags/*:refs/tags/*")...)
}

// prepareDest makes abs an empty directory to clone into (dest is how the
// caller named it) and returns what undoes that after a failure: removing
// the directory it created, or emptying the one that existed.
func prepareDest(abs, dest string) (undo func(), err error) {
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("cloning: %w", err)
		}
		return func() { _ = os.RemoveAll(abs) }, nil
	case err != nil:
		return nil, fmt.Errorf("cloning: %w", err)
	case len(entries) > 0:
		return nil, fmt.Errorf("cloning: %w: %s exists and is not empty", ErrInvalid, dest)
	}
	return func() { emptyDir(abs) }, nil
}

// fetchArgs is a quiet fetch from the bare repository at src; prune
// deletes local refs (matching the refspecs' destinations) that src lacks.
func fetchArgs(src string, prune bool, refspecs ...string) []string {
	args := []string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head"}
	if prune {
		args = append(args, "--prune")
	}
	return append(append(args, "--end-of-options", src), refspecs...)
}

func hasRef(refs []Ref, name string) bool {
	for _, r := range refs {
		if r.Name == name {
			return true
		}
	}
	return false
}

// pickBranch chooses the branch CloneTo checks out when none is given.
func (b *Bare) pickBranch(ctx context.Context, ns string, refs []Ref) (string, error) {
	if h, err := b.HEAD(ctx, ns); err == nil && hasRef(refs, "refs/heads/"+h) {
		return h, nil
	}
	for _, c := range []string{"main", "master"} {
		if hasRef(refs, "refs/heads/"+c) {
			return c, nil
		}
	}
	var branches []string
	for _, r := range refs {
		if br, ok := strings.CutPrefix(r.Name, "refs/heads/"); ok {
			branches = append(branches, br)
		}
	}
	if len(branches) == 1 {
		return branches[0], nil
	}
	return "", fmt.Errorf("cloning namespace %s: %w: no HEAD and %d branches, name one", ns, ErrInvalid, len(branches))
}

// emptyDir removes what is inside dir.
func emptyDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// PullInto brings the working copy workdir up to date with namespace ns:
// it fetches the namespace's branches into refs/remotes/origin/* (pruning
// those that are gone) and its tags into refs/tags/* (an existing tag with
// another value is an error, as with git fetch), then fast-forwards the
// current branch to its upstream. updated reports whether the branch moved.
//
// The current branch must have an upstream. If it has commits its upstream
// lacks while the upstream moved on too, the error wraps ErrDiverged; if
// local changes block the fast-forward, ErrLocalChanges. In both cases the
// branch and the work tree are left as they were. A branch that is only
// ahead is left alone. Git runs with the user's environment, as in CloneTo.
func (b *Bare) PullInto(ctx context.Context, ns, workdir string) (updated bool, err error) {
	if err := CheckNamespace(ns); err != nil {
		return false, err
	}
	gitdir, bare, err := b.r.IsRepo(ctx, workdir)
	if err != nil {
		return false, err
	}
	if bare {
		return false, fmt.Errorf("pulling into %s: %w: a bare repository has no work tree", workdir, ErrNotRepo)
	}
	dir, err := absPath(workdir)
	if err != nil {
		return false, err
	}
	git := func(args ...string) (string, error) {
		out, err := b.r.run(ctx, call{args: args, dir: dir, userEnv: true})
		return strings.TrimSpace(string(out)), err
	}
	p := nsPrefix(ns)
	if _, err := git(fetchArgs(b.Dir, true, "+"+p+"refs/heads/*:refs/remotes/origin/*")...); err != nil {
		return false, fmt.Errorf("pulling into %s: %w", workdir, err)
	}
	if _, err := git(fetchArgs(b.Dir, false, p+"refs/tags/*:refs/tags/*")...); err != nil {
		return false, fmt.Errorf("pulling tags into %s: %w", workdir, err)
	}

	branch, err := b.r.headBranch(ctx, gitdir, "HEAD", true)
	if err != nil {
		return false, fmt.Errorf("pulling into %s: %w", workdir, err)
	}
	upstream, err := git("rev-parse", "--symbolic-full-name", branch+"@{upstream}")
	if err != nil || upstream == "" {
		return false, fmt.Errorf("pulling into %s: branch %s has no upstream (git branch --set-upstream-to=origin/%s): %w", workdir, branch, branch, err)
	}
	head, err := git("rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return false, fmt.Errorf("pulling into %s: %w", workdir, err)
	}
	if checkRefName(upstream) != nil {
		return false, fmt.Errorf("pulling into %s: upstream of %s is %q", workdir, branch, upstream)
	}
	up, err := git("rev-parse", "--verify", upstream+"^{commit}")
	if err == nil {
		err = errors.Join(CheckOID(head), CheckOID(up))
	}
	if err != nil {
		return false, fmt.Errorf("pulling into %s: %w", workdir, err)
	}
	return b.fastForward(ctx, dir, workdir, branch, upstream, head, up)
}

// fastForward moves branch (at head) in the working copy dir to its
// upstream's commit up, if that is a fast-forward; see PullInto.
func (b *Bare) fastForward(ctx context.Context, dir, workdir, branch, upstream, head, up string) (bool, error) {
	if head == up {
		return false, nil
	}
	git := func(args ...string) error {
		_, err := b.r.run(ctx, call{args: args, dir: dir, userEnv: true})
		return err
	}
	isAncestor := func(a, d string) (bool, error) {
		err := git("merge-base", "--is-ancestor", a, d)
		switch {
		case err == nil:
			return true, nil
		case exitCode(err) == 1:
			return false, nil
		}
		return false, err
	}
	if ahead, err := isAncestor(up, head); err != nil {
		return false, fmt.Errorf("pulling into %s: %w", workdir, err)
	} else if ahead {
		return false, nil
	}
	if ff, err := isAncestor(head, up); err != nil {
		return false, fmt.Errorf("pulling into %s: %w", workdir, err)
	} else if !ff {
		short := strings.TrimPrefix(upstream, "refs/remotes/")
		return false, fmt.Errorf("pulling into %s: %w: %s and %s each have commits the other lacks; merge or rebase %s yourself", workdir, ErrDiverged, branch, short, branch)
	}
	if err := git("merge", "--ff-only", "--quiet", "--no-edit", up); err != nil {
		var ge *Error
		if errors.As(err, &ge) && (strings.Contains(ge.Stderr, "would be overwritten") || strings.Contains(ge.Stderr, "untracked working tree files")) {
			return false, fmt.Errorf("pulling into %s: %w: commit or stash them, then pull again: %w", workdir, ErrLocalChanges, err)
		}
		return false, fmt.Errorf("pulling into %s: %w", workdir, err)
	}
	return true, nil
}

// linkObjects hard-links every object file of the replica into a new
// repository's object directory (see LinkObjects) and reports whether
// everything was linked.
func (b *Bare) linkObjects(dst string) bool {
	_, err := b.LinkObjects(dst)
	return err == nil
}

// LinkObjects hard-links every object file of the replica (loose objects,
// and each pack with its .rev before its .idx, so git never sees an index
// without its pack) into the object directory dst of another repository
// (a clone being made), and returns the linked packs' paths in dst. Object
// files are never modified in place, so sharing them is safe, as with git
// clone --local. It fails if any file cannot be linked (dst on another file
// system, say); what was linked stays (the caller removes the clone). The
// caller keeps a repack from deleting packs meanwhile.
func (b *Bare) LinkObjects(dst string) ([]string, error) {
	src := filepath.Join(b.Dir, "objects")
	dirs, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("linking objects: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 || CheckOID(d.Name()+strings.Repeat("0", 38)) != nil {
			continue // info/, pack/ (below), incoming-*/ quarantines
		}
		if err := linkLoose(filepath.Join(src, d.Name()), filepath.Join(dst, d.Name())); err != nil {
			return nil, err
		}
	}
	packs, _ := filepath.Glob(filepath.Join(src, "pack", "pack-*.pack"))
	if err := os.MkdirAll(filepath.Join(dst, "pack"), 0o755); err != nil {
		return nil, fmt.Errorf("linking objects: %w", err)
	}
	var linked []string
	for _, pack := range packs {
		base := strings.TrimSuffix(pack, ".pack")
		name := filepath.Join(dst, "pack", filepath.Base(base))
		if _, err := os.Stat(base + ".idx"); err != nil {
			continue // being written right now: not part of the replica yet
		}
		exts := []string{".pack", ".rev", ".idx"}
		for _, ext := range exts {
			if _, err := os.Stat(base + ext); ext == ".rev" && err != nil {
				continue
			}
			if err := os.Link(base+ext, name+ext); err != nil {
				return nil, fmt.Errorf("linking objects: %w", err)
			}
		}
		linked = append(linked, name+".pack")
	}
	return linked, nil
}

// linkLoose links the loose objects of one fan-out directory.
func linkLoose(src, dst string) error {
	files, err := os.ReadDir(src)
	if err == nil {
		err = os.MkdirAll(dst, 0o755)
	}
	if err != nil {
		return fmt.Errorf("linking objects: %w", err)
	}
	for _, f := range files {
		if strings.HasPrefix(f.Name(), "tmp_") {
			continue
		}
		if err := os.Link(filepath.Join(src, f.Name()), filepath.Join(dst, f.Name())); err != nil {
			return fmt.Errorf("linking objects: %w", err)
		}
	}
	return nil
}

// writeCloneRefs creates a clone's refs/remotes/origin/* and refs/tags/*
// from a namespace's refs, in one transaction.
func (b *Bare) writeCloneRefs(ctx context.Context, dir string, refs []Ref) error {
	var in strings.Builder
	for _, r := range refs {
		name, ok := strings.CutPrefix(r.Name, "refs/heads/")
		switch {
		case ok:
			name = "refs/remotes/origin/" + name
		case strings.HasPrefix(r.Name, "refs/tags/"):
			name = r.Name
		default:
			continue
		}
		fmt.Fprintf(&in, "create %s\x00%s\x00", name, r.OID)
	}
	_, err := b.r.run(ctx, call{args: []string{"update-ref", "--stdin", "-z"}, dir: dir, stdin: strings.NewReader(in.String())})
	return err
}
