package gitstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CheckoutCommit fetches ref of namespace ns (a patch branch) into the
// working copy workdir as refs/remotes/origin/<ref without refs/heads/>,
// checks that commit head came with it, and points the local branch at
// head: a fast-forward merge if branch is checked out, else a (forced)
// branch update. Git runs with the user's environment, as in PullInto.
func (b *Bare) CheckoutCommit(ctx context.Context, ns, ref, head, workdir, branch string) error {
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	if err := errors.Join(checkRefName(ref), checkRefName("refs/heads/"+branch), CheckOID(head)); err != nil {
		return err
	}
	gitdir, bare, err := b.r.IsRepo(ctx, workdir)
	if err != nil {
		return err
	}
	if bare {
		return fmt.Errorf("checking out into %s: %w: a bare repository has no work tree", workdir, ErrNotRepo)
	}
	dir, err := absPath(workdir)
	if err != nil {
		return err
	}
	git := func(args ...string) (string, error) {
		out, err := b.r.run(ctx, call{args: args, dir: dir, userEnv: true})
		return strings.TrimSpace(string(out)), err
	}
	tracking := "refs/remotes/origin/" + strings.TrimPrefix(ref, "refs/heads/")
	if _, err := git(fetchArgs(b.Dir, false, "+"+nsPrefix(ns)+ref+":"+tracking)...); err != nil {
		return fmt.Errorf("fetching %s into %s: %w", ref, workdir, err)
	}
	if _, err := git("rev-parse", "--verify", "--quiet", head+"^{commit}"); err != nil {
		return fmt.Errorf("checking out into %s: commit %s did not come with %s: %w", workdir, head, ref, err)
	}
	current, _ := b.r.headBranch(ctx, gitdir, "HEAD", true)
	if current == branch {
		if _, err := git("merge", "--ff-only", "--quiet", head); err != nil {
			return fmt.Errorf("fast-forwarding %s in %s: %w", branch, workdir, err)
		}
		return nil
	}
	if _, err := git("branch", "--force", "--no-track", "--end-of-options", branch, head); err != nil {
		return fmt.Errorf("setting branch %s in %s: %w", branch, workdir, err)
	}
	return nil
}
