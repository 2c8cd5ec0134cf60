package replica

import (
	"sync"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Readers and the writer of a replica's object files. Everything that
// reads pack files by name or adds a pack holds the replica's lock shared:
// serving a fetch (pack-objects), receiving one (index-pack), linking the
// packs into a clone, a git-remote-mega serving upload-pack (Hold). The
// background repack holds it exclusively, and only takes it when nobody
// holds it (TryLock), so a repack never makes a reader wait, and a reader
// never sees a pack disappear under it.
type replicaLocks struct {
	mu    sync.Mutex
	locks map[identity.RepoID]*sync.RWMutex
}

func (l *replicaLocks) get(repo identity.RepoID) *sync.RWMutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = map[identity.RepoID]*sync.RWMutex{}
	}
	m := l.locks[repo]
	if m == nil {
		m = &sync.RWMutex{}
		l.locks[repo] = m
	}
	return m
}

// read takes repo's lock shared and returns what releases it.
func (s *Service) readLock(repo identity.RepoID) (release func()) {
	m := s.locks.get(repo)
	m.RLock()
	return sync.OnceFunc(m.RUnlock)
}

// Hold keeps repo's object files in place (no repack removes a pack) until
// release is called: git-remote-mega holds it while git upload-pack reads
// the replica.
func (s *Service) Hold(repo identity.RepoID) (release func()) { return s.readLock(repo) }

// tryWriteLock takes repo's lock exclusively if nobody holds it.
func (s *Service) tryWriteLock(repo identity.RepoID) (release func(), ok bool) {
	m := s.locks.get(repo)
	if !m.TryLock() {
		return nil, false
	}
	return m.Unlock, true
}
