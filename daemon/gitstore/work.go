package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Ref is one ref and the object it points to.
type Ref struct {
	// Name is the full ref name within a namespace: "refs/heads/main".
	Name string
	// OID is the object id in lowercase hex; for an annotated tag, the id
	// of the tag object.
	OID string
}

// IsRepo checks that path is a git repository: the top of a work tree
// (gitdir is then its .git directory), a bare repository, or a .git
// directory. Git does not look above path, so a subdirectory of a work tree
// is not accepted. gitdir is absolute. Errors wrap ErrNotRepo.
func (r *Runner) IsRepo(ctx context.Context, path string) (gitdir string, bare bool, err error) {
	abs, err := absPath(path)
	if err != nil {
		return "", false, err
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("%w: %s does not exist", ErrNotRepo, path)
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrNotRepo, err) // names the path
	}
	if !fi.IsDir() {
		return "", false, fmt.Errorf("%w: %s is not a directory", ErrNotRepo, path)
	}
	out, err := r.run(ctx, call{
		args: []string{"rev-parse", "--is-bare-repository", "--absolute-git-dir"},
		dir:  abs,
		// Stop discovery at path: a directory inside some other repository
		// must not be taken for that repository.
		env: []string{"GIT_CEILING_DIRECTORIES=" + filepath.Dir(abs)},
	})
	if err != nil {
		var ge *Error
		if errors.As(err, &ge) && ge.ExitCode > 0 {
			return "", false, fmt.Errorf("%w: %s", ErrNotRepo, path) // git's own words add nothing
		}
		return "", false, fmt.Errorf("%w: %s: %w", ErrNotRepo, path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[1] == "" {
		return "", false, fmt.Errorf("%w: %s: unexpected rev-parse output %q", ErrNotRepo, path, out)
	}
	return lines[1], lines[0] == "true", nil
}

// Work is what ReadWork read of a working (or bare) repository.
type Work struct {
	GitDir string // its git directory, absolute
	Refs   []Ref  // its branches and tags, as WorkRefs returns them
}

// ReadWork finds the git directory of the repository workdir and reads its
// branches and tags (see WorkRefs).
func (r *Runner) ReadWork(ctx context.Context, workdir string) (Work, error) {
	gitdir, _, err := r.IsRepo(ctx, workdir)
	if err != nil {
		return Work{}, err
	}
	refs, err := r.forEachRef(ctx, gitdir, "", "refs/heads/", "refs/tags/")
	if err != nil {
		return Work{}, err
	}
	return Work{GitDir: gitdir, Refs: refs}, nil
}

// WorkRefs returns the branches and tags (refs/heads/*, refs/tags/*) of a
// working or bare repository, sorted by name. An annotated tag gives the id
// of the tag object. Names are as git has them: callers that publish them
// check them with wire.CheckRefName.
func (r *Runner) WorkRefs(ctx context.Context, workdir string) ([]Ref, error) {
	w, err := r.ReadWork(ctx, workdir)
	return w.Refs, err
}

// forEachRef lists the refs under the given prefixes, with strip removed
// from the front of each name; names that do not then start with "refs/"
// (a namespace's HEAD) are left out. Sorted by name.
func (r *Runner) forEachRef(ctx context.Context, gitdir, strip string, prefixes ...string) ([]Ref, error) {
	args := append([]string{"for-each-ref", "--format=%(objectname) %(refname)"}, prefixes...)
	out, err := r.run(ctx, call{args: args, gitDir: gitdir})
	if err != nil {
		return nil, err
	}
	refs := []Ref{}
	for line := range strings.Lines(string(out)) {
		oid, name, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if !ok {
			return nil, fmt.Errorf("git for-each-ref: unexpected line %q", line)
		}
		name = strings.TrimPrefix(name, strip)
		if !strings.HasPrefix(name, "refs/") {
			continue
		}
		refs = append(refs, Ref{Name: name, OID: oid})
	}
	slices.SortFunc(refs, func(a, b Ref) int { return strings.Compare(a.Name, b.Name) })
	return refs, nil
}

// DefaultBranch returns the branch HEAD points to ("main" for
// refs/heads/main), whether or not it has commits yet. A detached HEAD is
// ErrDetached.
func (r *Runner) DefaultBranch(ctx context.Context, workdir string) (string, error) {
	gitdir, _, err := r.IsRepo(ctx, workdir)
	if err != nil {
		return "", err
	}
	return r.headBranch(ctx, gitdir, "HEAD", false)
}

// headBranch resolves the symbolic ref head (HEAD or a namespace's HEAD)
// to a short branch name. userEnv selects the user's environment.
func (r *Runner) headBranch(ctx context.Context, gitdir, head string, user bool) (string, error) {
	out, err := r.run(ctx, call{args: []string{"symbolic-ref", "--quiet", head}, gitDir: gitdir, userEnv: user})
	if err != nil {
		if exitCode(err) == 1 {
			return "", fmt.Errorf("%w: %s of %s", ErrDetached, head, gitdir)
		}
		return "", err
	}
	target := strings.TrimSpace(string(out))
	branch, ok := strings.CutPrefix(target, "refs/heads/")
	if !ok || checkBranch(branch) != nil {
		return "", fmt.Errorf("%w: %s of %s points to %q, not a branch", ErrDetached, head, gitdir, target)
	}
	return branch, nil
}

// RootCommit returns the root commit reached from tip by following first
// parents only (`rev-list --first-parent --max-parents=0`): for a history
// with several roots, the root of the mainline. tip is an object id or a
// full ref name. repo is a work tree, bare repository or .git directory.
func (r *Runner) RootCommit(ctx context.Context, repo, tip string) (string, error) {
	if err := checkRev(tip); err != nil {
		return "", err
	}
	gitdir, _, err := r.IsRepo(ctx, repo)
	if err != nil {
		return "", err
	}
	return r.rootCommit(ctx, gitdir, tip)
}

func (r *Runner) rootCommit(ctx context.Context, gitdir, tip string) (string, error) {
	out, err := r.run(ctx, call{
		args:   []string{"rev-list", "--first-parent", "--max-parents=0", "--end-of-options", tip},
		gitDir: gitdir,
	})
	if err != nil {
		return "", fmt.Errorf("finding the root commit of %s: %w", tip, err)
	}
	roots := strings.Fields(string(out))
	if len(roots) != 1 {
		return "", fmt.Errorf("finding the root commit of %s: found %d", tip, len(roots))
	}
	if err := CheckOID(roots[0]); err != nil {
		return "", fmt.Errorf("finding the root commit of %s: %w", tip, err)
	}
	return roots[0], nil
}
