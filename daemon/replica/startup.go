package replica

import (
	"context"
	"os"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Start-up hygiene (spec/repo.md §5.2): a daemon killed in the middle of a
// fetch, a push or a repack leaves temporary files that git never removes,
// a sync half done and, perhaps, pushed refs not yet signed.

// sweep removes what interrupted git operations left in every replica,
// and replica directories of a first fetch that never finished (no
// document was stored: nothing in them was verified). It runs in New,
// before anything is served.
func (s *Service) sweep() {
	for _, repo := range s.heldOnDisk() {
		dir := s.Dir(repo)
		if _, ok, err := s.store.RepoDoc(repo); err == nil && !ok {
			s.log.Info("removing a replica whose first fetch never finished", "repo", repo)
			if err := os.RemoveAll(dir); err != nil {
				s.log.Warn("removing a replica whose first fetch never finished failed", "repo", repo, "err", err)
			}
			continue
		}
		swept, err := gitstore.SweepTemporaries(dir)
		if err != nil {
			s.log.Warn("removing temporary files of interrupted git operations failed", "repo", repo, "err", err)
		}
		if len(swept) > 0 {
			s.log.Info("removed temporary files of interrupted git operations", "repo", repo, "files", len(swept))
		}
	}
}

// resume runs at the start of Serve: publish what was pushed but not
// signed, announce what the node holds, and sync at once every seeded
// repository that is behind or was never completed, instead of waiting
// for the periodic pass.
func (s *Service) resume(ctx context.Context) {
	s.publishPending(ctx)
	s.announceHeld()
	s.resync()
}

// publishPending signs and announces this node's namespace of every
// replica where it differs from the node's signed refs: a push that was
// received but not published (the daemon stopped in between). Repositories
// shared from a working repository are left to the watcher.
func (s *Service) publishPending(ctx context.Context) {
	for _, repo := range s.heldOnDisk() {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.Doc(repo); err != nil || s.state(repo).Path != "" {
			continue
		}
		bare, err := s.openBare(repo)
		if err != nil {
			continue
		}
		refs, err := bare.Refs(ctx, Namespace(s.id))
		if err != nil {
			continue
		}
		raw, _, ok, _ := s.store.SignedRefs(repo, s.id)
		if !ok && len(refs) == 0 {
			continue // nothing of ours here
		}
		if ok && s.signedEqual(raw, refs) {
			continue
		}
		if _, err := s.Publish(ctx, repo); err != nil {
			s.noteError(repo, err)
			continue
		}
		s.log.Info("published refs pushed before the restart", "repo", repo)
	}
}

// signedEqual reports whether raw signed refs name exactly refs' branches,
// tags and collaborative objects.
func (s *Service) signedEqual(raw []byte, refs []gitstore.Ref) bool {
	sr, err := wire.UnmarshalSignedRefs(raw)
	if err != nil {
		return false
	}
	return slices.Equal(fromWireRefs(sr.Refs()), signable(refs))
}

// signable keeps the branches, tags and collaborative objects of refs,
// the refs signed refs hold.
func signable(refs []gitstore.Ref) []gitstore.Ref {
	return slices.DeleteFunc(slices.Clone(refs), func(r gitstore.Ref) bool {
		return !isBranchOrTag(r.Name)
	})
}

func isBranchOrTag(name string) bool {
	return strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/") || isCobRef(name)
}
