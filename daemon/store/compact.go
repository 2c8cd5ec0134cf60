package store

import "time"

// The store compacts its own database. Badger's compactors each wake every
// 50 ms for as long as the database is open, written or not: on an idle
// node they were nearly all the CPU it used. So Badger runs with none
// (NumCompactors 0) and the store's compactor sleeps until a write: it
// then looks at level 0 compactPoll later, and again every compactPoll
// while writes go on, and flattens the tree when level 0 holds more than
// l0Tables tables (Badger's NumLevelZeroTables).
//
// Writes never stall for good. Badger stops adding flushed memtables to
// level 0 while it holds l0Stall tables, and once both memtables are full
// a write waits for room. While any write is under way (waiting or not) the
// compactor keeps looking, so it sees level 0 past l0Tables < l0Stall and
// empties it. A flush that finishes after the compactor went back to sleep
// leaves level 0 one table larger; the next write, or the next start,
// wakes the compactor again (TestWritesPastLevel0StallLimit).
const (
	compactPoll = time.Second
	// l0Tables is Badger's NumLevelZeroTables: level 0 is compacted once
	// it holds more. With 1, Flatten compacts level 0 even while it is
	// the only level with data (a young database).
	l0Tables = 1
	// l0Stall is Badger's NumLevelZeroTablesStall: at this many tables in
	// level 0 flushes wait, and writes once both memtables are full.
	l0Stall = 4
)

// startCompactor starts the compactor; Open calls it. It looks once soon
// after the start, as memtables left by the last run are flushed at open.
func (s *Store) startCompactor() {
	s.wrote = make(chan struct{}, 1)
	s.closing = make(chan struct{})
	s.compacted = make(chan struct{})
	s.wake()
	go s.compactor()
}

// stopCompactor waits for the compactor to stop; Close calls it before
// closing the database (Flatten must not run concurrently with Close).
func (s *Store) stopCompactor() {
	close(s.closing)
	<-s.compacted
}

// write runs one database write, keeping the compactor awake while it
// lasts.
func (s *Store) write(fn func() error) error {
	s.writing.Add(1)
	defer s.writing.Add(-1)
	s.wake()
	return fn()
}

// wake tells the compactor a write began.
func (s *Store) wake() {
	select {
	case s.wrote <- struct{}{}:
	default: // already told
	}
}

func (s *Store) compactor() {
	defer close(s.compacted)
	for {
		select {
		case <-s.closing:
			return
		case <-s.wrote:
		}
		if !s.compactWhileWriting() {
			return
		}
	}
}

// compactWhileWriting checks level 0 every compactPoll until a check finds
// that nothing was written since the one before and no write is under way.
// It reports false when the store is closing.
func (s *Store) compactWhileWriting() bool {
	t := time.NewTimer(compactPoll)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return false
		case <-t.C:
		}
		s.compactLevel0()
		select {
		case <-s.wrote:
		default:
			if s.writing.Load() == 0 {
				return true
			}
		}
		t.Reset(compactPoll)
	}
}

// compactLevel0 flattens the tree if level 0 holds more than l0Tables
// tables. A failure is logged; the next check tries again.
func (s *Store) compactLevel0() {
	if s.db.Levels()[0].NumTables <= l0Tables {
		return
	}
	if err := s.db.Flatten(1); err != nil {
		s.log.Warn("compacting the routing database failed; trying again at the next check", "err", err)
	}
}
