package gitstore

import (
	"context"
	"strings"
)

// WorkHead returns the branch checked out in a working copy and the commit
// it points at.
func (r *Runner) WorkHead(ctx context.Context, workdir string) (branch, oid string, err error) {
	gitdir, _, err := r.IsRepo(ctx, workdir)
	if err != nil {
		return "", "", err
	}
	branch, err = r.headBranch(ctx, gitdir, "HEAD", true)
	if err != nil {
		return "", "", err
	}
	out, err := r.run(ctx, call{args: []string{"rev-parse", "--verify", "HEAD^{commit}"}, gitDir: gitdir})
	if err != nil {
		return "", "", err
	}
	return branch, strings.TrimSpace(string(out)), nil
}

// RemoteURL returns the URL of a working copy's remote ("" if unset).
func (r *Runner) RemoteURL(ctx context.Context, workdir, remote string) (string, error) {
	gitdir, _, err := r.IsRepo(ctx, workdir)
	if err != nil {
		return "", err
	}
	if err := checkBranch(remote); err != nil {
		return "", err
	}
	out, err := r.run(ctx, call{args: []string{"config", "--get", "remote." + remote + ".url"}, gitDir: gitdir})
	if err != nil && exitCode(err) == 1 {
		return "", nil // not set
	}
	return strings.TrimSpace(string(out)), err
}

// IsAncestor reports whether commit a is an ancestor of (or equal to) b in
// the replica. Both must be object ids.
func (b *Bare) IsAncestor(ctx context.Context, a, c string) (bool, error) {
	if err := checkOIDs([]string{a, c}); err != nil {
		return false, err
	}
	_, err := b.r.run(ctx, call{args: []string{"merge-base", "--is-ancestor", a, c}, gitDir: b.Dir})
	if err == nil {
		return true, nil
	}
	if exitCode(err) == 1 {
		return false, nil
	}
	return false, err
}

// WorkIsAncestor reports whether commit a is an ancestor of (or equal to)
// commit c in the working copy at workdir; known is false when the working
// copy lacks one of them.
func (r *Runner) WorkIsAncestor(ctx context.Context, workdir, a, c string) (is, known bool, err error) {
	if err := checkOIDs([]string{a, c}); err != nil {
		return false, false, err
	}
	gitdir, _, err := r.IsRepo(ctx, workdir)
	if err != nil {
		return false, false, err
	}
	for _, oid := range []string{a, c} {
		if _, err := r.run(ctx, call{args: []string{"cat-file", "-e", oid + "^{commit}"}, gitDir: gitdir}); err != nil {
			if exitCode(err) > 0 {
				return false, false, nil
			}
			return false, false, err
		}
	}
	_, err = r.run(ctx, call{args: []string{"merge-base", "--is-ancestor", a, c}, gitDir: gitdir})
	if err == nil {
		return true, true, nil
	}
	if exitCode(err) == 1 {
		return false, true, nil
	}
	return false, false, err
}
