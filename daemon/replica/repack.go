package replica

import (
	"context"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Background maintenance of replicas: every fetch and every import from a
// working repository adds a pack (or loose objects); the repacker rolls
// them up geometrically (gitstore.Bare.Repack) once a replica holds
// Config.RepackPacks packs or more, so reading a replica stays cheap. It
// repacks a replica only while nobody reads it or adds to it (the
// replica's lock, see locks.go): a repack never makes a clone, a fetch or
// a git-remote-mega wait, and waits for them instead (repackRetry). It
// starts only once no pack came in for repackQuiet: a repack holds the
// replica while it runs (a second on a large history), and a new pack is
// usually followed at once by peers fetching it, or by more commits.

// repackRetry is how soon a repack that found its replica in use tries again.
const repackRetry = 2 * time.Second

// repackQuiet is how long a replica must have had no new pack before it
// is repacked.
const repackQuiet = 2 * time.Second

// maxLooseBeforeRepack is how many loose objects (small imports from a
// working repository arrive loose) make a replica due for a repack.
const maxLooseBeforeRepack = 256

// repackSoon asks the repacker to look at repo.
func (s *Service) repackSoon(repo identity.RepoID) {
	select {
	case s.repackQ <- repo:
	default: // the queue is full: a later fetch asks again
	}
}

// repacker runs until ctx is done.
func (s *Service) repacker(ctx context.Context) {
	due := map[identity.RepoID]time.Time{} // repository → when it was last asked for
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case repo := <-s.repackQ:
			due[repo] = time.Now()
		case <-retry.C:
		}
		next := time.Duration(0)
		for repo, asked := range due {
			if ctx.Err() != nil {
				return
			}
			wait := repackQuiet - time.Since(asked)
			if wait <= 0 && s.repackIfDue(ctx, repo) {
				delete(due, repo)
				continue
			}
			if wait <= 0 {
				wait = repackRetry
			}
			if next == 0 || wait < next {
				next = wait
			}
		}
		if next > 0 {
			retry.Reset(next)
		}
	}
}

// repackIfDue repacks repo if it has piled up packs and nobody uses it.
// It reports false when the replica was in use (try again later).
func (s *Service) repackIfDue(ctx context.Context, repo identity.RepoID) bool {
	bare, err := s.openBare(repo)
	if err != nil {
		return true // gone: nothing to do
	}
	if packs, loose := bare.Packs(); len(packs) < s.cfg.RepackPacks && loose < maxLooseBeforeRepack {
		return true
	}
	release, ok := s.tryWriteLock(repo)
	if !ok {
		return false
	}
	defer release()
	start := time.Now()
	if err := bare.Repack(ctx); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("repacking a replica; will try after the next fetch", "repo", repo.String(), "err", err)
		}
		return true
	}
	packs, _ := bare.Packs()
	s.log.Debug("repacked a replica", "repo", repo.String(), "packs", len(packs), "took", time.Since(start))
	if s.cfg.OnRepacked != nil {
		s.cfg.OnRepacked(repo)
	}
	return true
}
