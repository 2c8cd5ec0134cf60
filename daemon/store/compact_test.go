package store

import (
	"encoding/binary"
	"testing"
	"time"
)

// Badger runs no compactor of its own: without the store's, level 0 fills
// up to its stall limit after l0Stall flushes, and every write after the
// next two memtables waits forever. Writing three times what level 0 and
// the memtables hold must finish, with tables compacted out of level 0.
func TestWritesPastLevel0StallLimit(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	opt := Options("", nil)
	const valueSize = 64 << 10 // well below the value log's threshold: the values go into the tables
	total := 3 * (l0Stall + opt.NumMemtables) * int(opt.MemTableSize)
	origin := newID(t)
	done := make(chan error, 1)
	go func() {
		raw := make([]byte, valueSize)
		for i := range total / valueSize {
			subject := binary.BigEndian.AppendUint32(nil, uint32(i))
			if _, err := s.Put(Announcement{Type: 2, Origin: origin, Subject: subject, Timestamp: 1, Raw: raw}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("writing %d MiB did not finish: writes stalled (levels: %s)", total>>20, s.db.LevelsToString())
	}
	if levels := s.db.Levels(); levels[len(levels)-1].NumTables == 0 {
		t.Fatalf("nothing was compacted into the last level: %s", s.db.LevelsToString())
	}
	n := 0
	if err := s.Each(2, nil, func(Announcement) error { n++; return nil }); err != nil || n != total/valueSize {
		t.Fatalf("read back %d announcements (%v), wrote %d", n, err, total/valueSize)
	}
}
