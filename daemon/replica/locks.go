package replica

import (
	"context"
	"sync"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Readers and the writer of a replica's object files. Everything that
// reads pack files by name or adds a pack holds the replica's lock shared:
// serving a fetch (pack-objects), receiving one (index-pack), linking the
// packs into a clone, a git-remote-mega serving upload-pack (Hold). The
// background repack holds it exclusively, and only takes it when nobody
// holds it (TryLock), so a reader never sees a pack disappear under it.
// A reader that comes while the repack runs stops it (the repack is tried
// again later): a repack never makes a reader wait.
type replicaLocks struct {
	mu    sync.Mutex
	locks map[identity.RepoID]*replicaLock
}

// replicaLock is one replica's lock; stop, while a repack holds it
// exclusively, cancels that repack.
type replicaLock struct {
	rw   sync.RWMutex
	stop context.CancelFunc
}

func (l *replicaLocks) get(repo identity.RepoID) *replicaLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = map[identity.RepoID]*replicaLock{}
	}
	m := l.locks[repo]
	if m == nil {
		m = &replicaLock{}
		l.locks[repo] = m
	}
	return m
}

// readLock takes repo's lock shared, stopping a repack that holds it, and
// returns what releases it.
func (s *Service) readLock(repo identity.RepoID) (release func()) {
	m := s.locks.get(repo)
	s.locks.mu.Lock()
	if m.stop != nil {
		m.stop()
	}
	s.locks.mu.Unlock()
	m.rw.RLock()
	return sync.OnceFunc(m.rw.RUnlock)
}

// Hold keeps repo's object files in place (no repack removes a pack) until
// release is called: git-remote-mega holds it while git upload-pack reads
// the replica.
func (s *Service) Hold(repo identity.RepoID) (release func()) { return s.readLock(repo) }

// tryWriteLock takes repo's lock exclusively if nobody holds it. stop, if
// not nil, is called when a reader comes meanwhile (a repack's cancel).
func (s *Service) tryWriteLock(repo identity.RepoID, stop context.CancelFunc) (release func(), ok bool) {
	m := s.locks.get(repo)
	if !m.rw.TryLock() {
		return nil, false
	}
	s.locks.mu.Lock()
	m.stop = stop
	s.locks.mu.Unlock()
	return func() {
		s.locks.mu.Lock()
		m.stop = nil
		s.locks.mu.Unlock()
		m.rw.Unlock()
	}, true
}
