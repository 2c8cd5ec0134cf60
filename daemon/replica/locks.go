package replica

import (
	"context"
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Readers and the writer of a replica's object files. Everything that
// reads pack files by name or adds a pack holds the replica's lock shared:
// serving a fetch (pack-objects), receiving one (index-pack), linking the
// packs into a clone, a git-remote-mega serving upload-pack (Hold). The
// background repack holds it exclusively, and only takes it when nobody
// holds it (TryLock), so a reader never sees a pack disappear under it.
// A reader that comes while the repack runs stops it (the repack is tried
// again later). Only a repack that readers put off repackStops times in a
// row makes new readers wait: at most gateWait for it to start (then for
// it to run).
type replicaLocks struct {
	mu    sync.Mutex
	locks map[identity.RepoID]*replicaLock
}

// replicaLock is one replica's lock; stop, while a repack holds it
// exclusively, cancels that repack; gate, while a repack that may not be
// put off any longer waits for the readers to finish, holds new readers
// back (at most gateWait), so that one comes.
type replicaLock struct {
	rw   sync.RWMutex
	stop context.CancelFunc
	gate chan struct{}
}

// gateWait is the longest a new reader waits at a closed gate, and the
// longest a repack waits there for the readers before it gives up.
const gateWait = 2 * time.Second

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
	gate := m.gate
	s.locks.mu.Unlock()
	if gate != nil {
		t := time.NewTimer(gateWait)
		select {
		case <-gate:
		case <-t.C:
		}
		t.Stop()
	}
	m.rw.RLock()
	return sync.OnceFunc(m.rw.RUnlock)
}

// Hold keeps repo's object files in place (no repack removes a pack) until
// release is called: git-remote-mega holds it while git upload-pack reads
// the replica.
func (s *Service) Hold(repo identity.RepoID) (release func()) { return s.readLock(repo) }

// waitWriteLock takes repo's lock exclusively once the readers it has now
// are done, holding new readers back meanwhile (at most gateWait), or
// gives up after gateWait. A repack that readers kept putting off takes
// it so.
func (s *Service) waitWriteLock(repo identity.RepoID) (release func(), ok bool) {
	m := s.locks.get(repo)
	gate := make(chan struct{})
	s.locks.mu.Lock()
	if m.gate != nil {
		s.locks.mu.Unlock()
		return nil, false
	}
	m.gate = gate
	s.locks.mu.Unlock()
	open := func() {
		s.locks.mu.Lock()
		m.gate = nil
		s.locks.mu.Unlock()
		close(gate)
	}
	deadline := time.Now().Add(gateWait)
	for !m.rw.TryLock() {
		if time.Now().After(deadline) {
			open()
			return nil, false
		}
		time.Sleep(10 * time.Millisecond) // the readers' own work: no event says when the last one ends
	}
	return func() { m.rw.Unlock(); open() }, true
}

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
