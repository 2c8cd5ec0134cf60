package replica

import (
	"context"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Background maintenance of replicas: every fetch and every import from a
// working repository adds a pack (or loose objects); the repacker rolls
// them up geometrically (gitstore.Bare.Repack) once a replica holds
// Config.RepackPacks packs or more, so reading a replica stays cheap, and
// gives the largest pack a reachability bitmap (gitstore.Bare.WriteBitmap)
// once it holds Config.BitmapMinPack bytes or more, so a full clone from
// it starts sending at once. It
// repacks a replica only while nobody reads it or adds to it (the
// replica's lock, see locks.go): a repack never makes a clone, a fetch or
// a git-remote-mega wait (one that comes stops it), and waits for them
// instead (repackRetry). It starts only once no pack came in for
// repackQuiet: a new pack is usually followed at once by peers fetching
// it, or by more commits, and a repack takes a second on a large history.
// A replica read so often that readers stopped or put off its repack
// repackStops times in a row is repacked once without stopping: new
// readers wait (at most gateWait) for the readers of the moment to finish
// and the repack to run. Packs must not pile up on the busiest replicas.

// repackRetry is how soon a repack that found its replica in use tries again.
const repackRetry = 500 * time.Millisecond

// repackQuiet is how long a replica must have had no new pack before it
// is repacked.
const repackQuiet = 2 * time.Second

// repackStops is how many repacks of a replica readers may stop or put
// off in a row,
// and repackRetryStopped how soon one is tried again after a stop.
const (
	repackStops        = 3
	repackRetryStopped = 200 * time.Millisecond
)

// How a repack attempt ended.
type repackOutcome int

const (
	repackDone    repackOutcome = iota // repacked, or nothing to do
	repackBusy                         // the replica was in use: not started
	repackStopped                      // a reader came and stopped it
)

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
	stops := map[identity.RepoID]int{}     // repacks stopped in a row
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
			if wait <= 0 {
				wait = repackRetry
				switch s.repackIfDue(ctx, repo, stops[repo] < repackStops) {
				case repackDone:
					delete(due, repo)
					delete(stops, repo)
					continue
				case repackStopped:
					stops[repo]++
					wait = repackRetryStopped
				case repackBusy:
					stops[repo]++ // put off by readers as much as a stop
				}
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

// repackIfDue repacks repo if it has piled up packs and nobody uses it;
// stoppable: a reader that comes meanwhile stops it.
func (s *Service) repackIfDue(ctx context.Context, repo identity.RepoID, stoppable bool) repackOutcome {
	bare, err := s.openBare(repo)
	if err != nil {
		return repackDone // gone: nothing to do
	}
	packs, loose := bare.Packs()
	roll := len(packs) >= s.cfg.RepackPacks || loose >= maxLooseBeforeRepack
	if !roll && !bare.BitmapDue(s.cfg.BitmapMinPack) {
		return repackDone
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var release func()
	var ok bool
	if stoppable {
		release, ok = s.tryWriteLock(repo, stop)
	} else {
		release, ok = s.waitWriteLock(repo) // readers put it off too often: now they wait for it
	}
	if !ok {
		return repackBusy
	}
	defer release()
	start := time.Now()
	if roll {
		err = bare.Repack(rctx)
	}
	if err == nil && bare.BitmapDue(s.cfg.BitmapMinPack) {
		err = bare.WriteBitmap(rctx)
	}
	if err != nil {
		if ctx.Err() == nil && rctx.Err() != nil {
			s.log.Debug("a reader stopped the repack of a replica; trying later", "repo", repo.String())
			return repackStopped
		}
		if ctx.Err() == nil {
			s.log.Warn("repacking a replica failed; trying again after the next fetch", "repo", repo, "err", err)
		}
		return repackDone
	}
	packs, _ = bare.Packs()
	s.log.Debug("repacked a replica", "repo", repo, "packs", len(packs), "took", time.Since(start))
	if s.cfg.OnRepacked != nil {
		s.cfg.OnRepacked(repo)
	}
	return repackDone
}
