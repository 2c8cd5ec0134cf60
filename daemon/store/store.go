// Package store keeps a node's routing tables in Badger: the newest signed
// announcement per (type, subject, origin), and when each node was last
// heard from. The node table and the repository table are views over these:
// node announcements have an empty subject, repository announcements have
// the repository id as subject, so the holders of a repository are one
// prefix scan. Raw signed bytes are kept so they can be handed to peers
// unchanged (the snapshot exchange) and re-verified on read.
package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Key prefixes. Append only: a byte, once used, keeps its meaning.
const (
	prefixAnnouncement = 'a' // 'a' type subjectLen subject origin → ts(8) ‖ raw
	prefixLastSeen     = 's' // 's' origin → unix ms (8)
	prefixMeta         = 'm' // 'm' name → value
	prefixPeer         = 'p' // 'p' origin → unix ms (8) of the last link to it
)

// schemaVersion is stored under m"schema"; Open refuses a newer one.
const schemaVersion = 1

// MaxSubjectLen bounds the subject of an announcement (a repo id is 34 bytes).
const MaxSubjectLen = 255

// Announcement is one stored signed message (gossip's type: the engine
// builds without Badger, this package implements its Store).
type Announcement = gossip.Announcement

// Store is the routing-table database. Its methods are safe for concurrent use.
type Store struct {
	db    *badger.DB
	log   *slog.Logger
	guard func() error // refuses writes while the disk is low; nil: never

	// The node table's bound (bound.go).
	maxNodes int
	onEvict  func([]identity.NodeID)
	nodes    atomic.Int64 // node announcements stored
	evictMu  sync.Mutex

	// The compactor (compact.go).
	writing   atomic.Int64  // writes under way
	wrote     chan struct{} // a write began since the compactor last looked
	closing   chan struct{} // closed by Close
	compacted chan struct{} // closed when the compactor has stopped
}

// GuardWrites makes every write (Put, Touch, the repository records) call
// check first and fail with its error: the node passes its free-space
// guard, because Badger faults instead of failing on a full disk. Deletes
// are not guarded: they are what frees space. Call it before the store is
// used concurrently.
func (s *Store) GuardWrites(check func() error) { s.guard = check }

// Options returns Badger options sized for a small daemon: the defaults
// reserve hundreds of MB under load, these stay near 150 MB at worst.
// Badger runs no compactor of its own: the store's compacts (compact.go).
// There are no caches either: they only pay for decompressing or
// decrypting blocks and indexes, and the tables are neither compressed
// nor encrypted (blocks are read straight from the mapped files, indexes
// stay in memory), while each cache runs goroutines that wake on timers.
func Options(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithNumCompactors(0).
		WithNumLevelZeroTables(l0Tables).
		WithNumLevelZeroTablesStall(l0Stall).
		WithBaseTableSize(2 << 20).
		WithCompression(options.None).
		WithMetricsEnabled(false)
}

// Open opens (creating if needed) the database in dir.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := badger.Open(Options(dir, log))
	if err != nil {
		return nil, fmt.Errorf("opening routing database %s: %w", dir, err)
	}
	s := &Store{db: db, log: log, maxNodes: MaxNodes}
	s.startCompactor()
	if err := cmp.Or(s.checkSchema(), s.countNodes()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) checkSchema() error {
	key := []byte{prefixMeta, 's', 'c', 'h', 'e', 'm', 'a'}
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(key, binary.BigEndian.AppendUint32(nil, schemaVersion))
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 4 || binary.BigEndian.Uint32(v) > schemaVersion {
				return fmt.Errorf("routing database has schema %x, newer than this daemon understands (%d)", v, schemaVersion)
			}
			return nil
		})
	})
}

// Close stops the compactor, then flushes and closes the database.
func (s *Store) Close() error {
	s.stopCompactor()
	return s.db.Close()
}

func announcementKey(typ uint8, subject []byte, origin identity.NodeID) []byte {
	k := make([]byte, 0, 3+len(subject)+len(origin))
	k = append(k, prefixAnnouncement, typ, byte(len(subject)))
	k = append(k, subject...)
	return append(k, origin[:]...)
}

func parseAnnouncement(key, val []byte) (Announcement, error) {
	if len(key) < 3 || len(val) < 8 {
		return Announcement{}, errors.New("store: short announcement record")
	}
	n := int(key[2])
	if len(key) != 3+n+32 {
		return Announcement{}, errors.New("store: bad announcement key")
	}
	a := Announcement{
		Type:      key[1],
		Subject:   bytes.Clone(key[3 : 3+n]),
		Timestamp: binary.BigEndian.Uint64(val),
		Raw:       bytes.Clone(val[8:]),
	}
	copy(a.Origin[:], key[3+n:])
	return a, nil
}

// Put stores a if it is newer than what is stored for its (type, subject,
// origin). It reports whether a was stored; an older or equal timestamp is
// not stored (a replay, or a message already known).
func (s *Store) Put(a Announcement) (stored bool, err error) {
	if len(a.Subject) > MaxSubjectLen {
		return false, fmt.Errorf("store: subject of %d bytes exceeds %d", len(a.Subject), MaxSubjectLen)
	}
	key := announcementKey(a.Type, a.Subject, a.Origin)
	val := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(a.Raw)), a.Timestamp)
	val = append(val, a.Raw...)
	var added bool
	err = s.update(func(txn *badger.Txn) error {
		stored, added = false, false
		item, err := txn.Get(key)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			added = a.Type == uint8(wire.TypeNodeAnnouncement)
		case err != nil:
			return err
		default:
			var old uint64
			if err := item.Value(func(v []byte) error {
				if len(v) >= 8 {
					old = binary.BigEndian.Uint64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			if old >= a.Timestamp {
				return nil
			}
		}
		stored = true
		return txn.Set(key, val)
	})
	if err == nil && added {
		s.addedNode()
	}
	return stored, err
}

// update runs fn in a read-write transaction, retrying on conflicts. It
// asks the write guard first.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	if s.guard != nil {
		if err := s.guard(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return s.write(func() error {
		for range 16 {
			err := s.db.Update(fn)
			if !errors.Is(err, badger.ErrConflict) {
				return err
			}
		}
		return fmt.Errorf("store: transaction kept conflicting")
	})
}

// deleteKeys deletes keys in one batch. Deletes are not guarded: they are
// what frees space.
func (s *Store) deleteKeys(keys [][]byte) error {
	return s.write(func() error {
		wb := s.db.NewWriteBatch()
		defer wb.Cancel()
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return wb.Flush()
	})
}

// Get returns the stored announcement for (typ, subject, origin).
func (s *Store) Get(typ uint8, subject []byte, origin identity.NodeID) (a Announcement, ok bool, err error) {
	key := announcementKey(typ, subject, origin)
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			a, err = parseAnnouncement(key, v)
			ok = err == nil
			return err
		})
	})
	return a, ok, err
}

// Each calls fn for every stored announcement whose key starts with the
// given type and, if subject is non-nil, that subject. Pass typ 0 for all.
func (s *Store) Each(typ uint8, subject []byte, fn func(Announcement) error) error {
	prefix := []byte{prefixAnnouncement}
	if typ != 0 {
		prefix = append(prefix, typ)
		if subject != nil {
			prefix = append(prefix, byte(len(subject)))
			prefix = append(prefix, subject...)
		}
	}
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var a Announcement
			if err := item.Value(func(v []byte) error {
				var err error
				a, err = parseAnnouncement(item.Key(), v)
				return err
			}); err != nil {
				return err
			}
			if subject != nil && !bytes.Equal(a.Subject, subject) {
				continue
			}
			if err := fn(a); err != nil {
				return err
			}
		}
		return nil
	})
}

func lastSeenKey(id identity.NodeID) []byte { return append([]byte{prefixLastSeen}, id[:]...) }

// Touch records that id was heard from at t (kept only if newer).
func (s *Store) Touch(id identity.NodeID, t time.Time) error {
	return s.setNewer(lastSeenKey(id), t)
}

// setNewer stores t (unix ms) under key unless a later time is there.
func (s *Store) setNewer(key []byte, t time.Time) error {
	ms := uint64(t.UnixMilli())
	return s.update(func(txn *badger.Txn) error {
		if item, err := txn.Get(key); err == nil {
			newer := false
			if err := item.Value(func(v []byte) error {
				newer = len(v) == 8 && binary.BigEndian.Uint64(v) >= ms
				return nil
			}); err != nil || newer {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(key, binary.BigEndian.AppendUint64(nil, ms))
	})
}

// LastSeen returns when id was last heard from.
func (s *Store) LastSeen(id identity.NodeID) (t time.Time, ok bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(lastSeenKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == 8 {
				t, ok = time.UnixMilli(int64(binary.BigEndian.Uint64(v))), true
			}
			return nil
		})
	})
	return t, ok, err
}

// Expire forgets every node not heard from since cutoff: its last-seen
// record and all announcements it originated. A node never touched counts
// as last heard at its newest announcement's timestamp. It returns the
// nodes removed.
func (s *Store) Expire(cutoff time.Time) ([]identity.NodeID, error) {
	newest := map[identity.NodeID]uint64{}
	if err := s.Each(0, nil, func(a Announcement) error {
		newest[a.Origin] = max(newest[a.Origin], a.Timestamp)
		return nil
	}); err != nil {
		return nil, err
	}
	// Nodes with only a last-seen record count too.
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLastSeen}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var id identity.NodeID
			copy(id[:], it.Item().Key()[1:])
			if _, ok := newest[id]; !ok {
				newest[id] = 0
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var gone []identity.NodeID
	for id, ts := range newest {
		last := time.UnixMilli(int64(ts))
		if seen, ok, err := s.LastSeen(id); err != nil {
			return nil, err
		} else if ok && seen.After(last) {
			last = seen
		}
		if last.Before(cutoff) {
			gone = append(gone, id)
		}
	}
	if err := s.forget(gone...); err != nil {
		return nil, err
	}
	return gone, nil
}

// forget deletes everything the nodes ids originated, and what the store
// knows of them.
func (s *Store) forget(ids ...identity.NodeID) error {
	if len(ids) == 0 {
		return nil
	}
	set := make(map[identity.NodeID]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	var keys [][]byte
	var nodes int64
	if err := s.Each(0, nil, func(a Announcement) error {
		if set[a.Origin] {
			keys = append(keys, announcementKey(a.Type, a.Subject, a.Origin))
			if a.Type == uint8(wire.TypeNodeAnnouncement) {
				nodes++
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		keys = append(keys, lastSeenKey(id), peerKey(id))
	}
	if err := s.deleteKeys(keys); err != nil {
		return err
	}
	s.nodes.Add(-nodes)
	return nil
}

// ForgetSubject deletes every announcement of type typ about subject (a
// repository nobody reachable holds, say), whatever its origin.
func (s *Store) ForgetSubject(typ uint8, subject []byte) error {
	var keys [][]byte
	if err := s.Each(typ, subject, func(a Announcement) error {
		keys = append(keys, announcementKey(a.Type, a.Subject, a.Origin))
		return nil
	}); err != nil {
		return err
	}
	return s.deleteKeys(keys)
}

// badgerLogger sends Badger's logs to slog: its info chatter at debug level.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + trim(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + trim(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug("badger: " + trim(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug("badger: " + trim(fmt.Sprintf(f, a...))) }

func trim(s string) string { return string(bytes.TrimRight([]byte(s), "\n")) }
