package replica

import (
	"context"
	"fmt"
	"os"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Remove makes the node let go of repo: it stops sharing, watching and
// seeding it, tells the network it no longer holds it (a withdrawn
// RepoAnnouncement replaces its last one at every node), forgets what it
// recorded of it (clones, errors, a repository it only heard of), and,
// unless keepReplica, deletes the replica, its document and its signed refs.
// With keepReplica the replica stays on disk, unseeded. What remains is a
// tombstone: the repository is not replicated again until seeded, shared
// or cloned, and is listed only while others announce it.
func (s *Service) Remove(ctx context.Context, repo identity.RepoID, keepReplica bool) error {
	if s.Syncing(repo) {
		return errorf(ErrConflict, "%s is syncing now; try again when it is done", repo)
	}
	release, ok := s.tryWriteLock(repo, nil) // nobody reads or adds packs meanwhile
	if !ok {
		return errorf(ErrConflict, "%s is in use (served or cloned) now; try again in a moment", repo)
	}
	defer release()
	doc, err := s.Doc(repo)
	held := err == nil
	if held {
		ann := &wire.RepoAnnouncement{Repo: repo, Doc: doc.Digest(), Withdrawn: true}
		if err := s.cfg.Announce(ann); err != nil {
			return fmt.Errorf("withdrawing %s: %w", repo, err)
		}
	}
	s.mu.Lock()
	known := s.states[repo] != nil && !s.states[repo].Removed
	delete(s.states, repo)
	delete(s.workRefs, repo)
	delete(s.watching, repo)
	delete(s.lastSeq, repo)
	delete(s.docs, repo)
	s.mu.Unlock()
	if !held && !known {
		return errorf(ErrNotFound, "this node holds nothing of %s", repo)
	}
	if err := s.store.ForgetRepo(repo, keepReplica); err != nil {
		return err
	}
	// A tombstone keeps --replicate all from fetching it straight back.
	if err := s.updateState(repo, func(st *repoState) { st.Seed, st.Removed = seedNo, true }); err != nil {
		return err
	}
	if !keepReplica {
		s.forgetBare(repo)
		if err := os.RemoveAll(s.Dir(repo)); err != nil {
			return fmt.Errorf("deleting the replica of %s: %w", repo, err)
		}
	}
	s.followChanged()
	s.log.Info("repository removed", "repo", repo, "kept_replica", keepReplica)
	return nil
}
