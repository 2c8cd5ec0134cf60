// Package diskspace keeps a node from filling the filesystem that holds its
// root. A Guard reads the free space (statfs) at most once per CheckInterval
// and answers Low/Check from that reading, so writers can ask before every
// write; below the floor they refuse new data. The Guard also holds a
// reserve: a preallocated file in the root that is deleted at shutdown, so
// that the database's last flush finds room even when something else filled
// the disk meanwhile. Badger writes through mmap into sparse files and dies
// with SIGBUS, not an error, when the filesystem is full (spec/node.md,
// "Disk space"); this package is how the node stays clear of that.
package diskspace

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

const (
	// MaxDefaultFloor and DefaultFloorPercent make the default floor:
	// 5 % of the filesystem, at most 1 GiB, at least MinFloor.
	MaxDefaultFloor     = 1 << 30
	DefaultFloorPercent = 5
	// MinFloor is the least free space the database needs beyond what is
	// already written: a memtable's write-ahead log (a sparse 16 MiB file)
	// and the table a flush writes (8 MiB), with room to spare. It is also
	// the space, besides the reserve, that New requires to start.
	MinFloor = 32 << 20
	// ReserveSize is the size of the reserve file: room for the flush of
	// both memtables (2 × 8 MiB), a new log and the manifest at shutdown.
	ReserveSize = 64 << 20
	// ReserveName is the reserve file's name in the root.
	ReserveName = "reserve"
	// CheckInterval is how old a free-space reading may be.
	CheckInterval = time.Second
	// FillRate is the fastest the guard expects a filesystem to fill, in
	// bytes per second (a fast local disk writing flat out). Serve reads
	// the free space again before the room above the floor could be gone
	// at this rate, and at least every MaxServeWait.
	FillRate = 1 << 30
	// MaxServeWait bounds how long Serve leaves a reading alone.
	MaxServeWait = time.Minute
)

// ErrLow is wrapped by every error this package returns for a lack of
// space (test with errors.Is).
var ErrLow = errors.New("disk space low")

// ErrReleased is returned by Check once the reserve was released for
// shutdown: nothing new is written after that.
var ErrReleased = errors.New("disk reserve released: the node is shutting down")

// LowError is Check's answer below the floor.
type LowError struct {
	Path        string // the guarded directory
	Free, Floor uint64 // bytes
}

func (e *LowError) Error() string {
	return fmt.Sprintf("disk space low: %s has %s free, below the floor of %s", e.Path, Bytes(e.Free), Bytes(e.Floor))
}

// Is makes errors.Is(err, ErrLow) hold.
func (e *LowError) Is(target error) bool { return target == ErrLow }

// DefaultFloor is the floor for a filesystem of total bytes.
func DefaultFloor(total uint64) uint64 {
	return max(min(total/100*DefaultFloorPercent, MaxDefaultFloor), MinFloor)
}

// Config configures a Guard.
type Config struct {
	Dir     string       // the directory to guard (the node's root); required
	Floor   uint64       // bytes that must stay free; 0: DefaultFloor of Dir's filesystem
	Reserve int64        // size of the reserve file; 0: ReserveSize; negative: no reserve
	Log     *slog.Logger // transitions are logged here; default: discard

	now    func() time.Time                             // default time.Now
	statfs func(string) (free, total uint64, err error) // default Free
}

// State is the last reading.
type State struct {
	Free    uint64 // bytes available on Dir's filesystem
	Total   uint64 // the filesystem's size
	Floor   uint64 // the floor in force
	Reserve bool   // the reserve file is in place
	Low     bool   // new data is refused
}

// Guard answers whether there is room for new data. Safe for concurrent use.
type Guard struct {
	cfg     Config
	reserve string // the reserve file's path

	mu       sync.Mutex
	checked  time.Time
	state    State
	known    bool // a reading succeeded (Free works on this system)
	released bool
}

// New reads the free space of cfg.Dir and puts the reserve in place. It
// fails, with an error wrapping ErrLow that names the directory and the
// space needed, when there is not room for the reserve and MinFloor: then
// not even opening the database is safe.
func New(cfg Config) (*Guard, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.statfs == nil {
		cfg.statfs = Free
	}
	if cfg.Reserve == 0 {
		cfg.Reserve = ReserveSize
	}
	cfg.Reserve = max(cfg.Reserve, 0)
	g := &Guard{cfg: cfg, reserve: filepath.Join(cfg.Dir, ReserveName)}
	free, total, err := cfg.statfs(cfg.Dir)
	if errors.Is(err, errors.ErrUnsupported) {
		return g, nil // never low: there is no way to tell
	}
	if err != nil {
		return nil, fmt.Errorf("reading free disk space: %w", err)
	}
	g.state.Total, g.state.Floor = total, cfg.Floor
	if g.state.Floor == 0 {
		g.state.Floor = DefaultFloor(total)
	}
	held := g.heldReserve()
	avail := free
	if held {
		avail += uint64(cfg.Reserve)
	}
	if need := uint64(cfg.Reserve) + MinFloor; avail < need {
		return nil, fmt.Errorf("%w: %s has %s free; the node needs %s to start (a %s reserve and %s for its database): free some space or use another root",
			ErrLow, cfg.Dir, Bytes(avail), Bytes(need), Bytes(uint64(cfg.Reserve)), Bytes(MinFloor))
	}
	if !held && cfg.Reserve > 0 {
		if err := g.makeReserve(); err != nil {
			return nil, err
		}
	}
	g.state.Reserve = true
	g.mu.Lock()
	g.refreshLocked(cfg.now())
	g.mu.Unlock()
	return g, nil
}

// heldReserve reports whether a whole reserve file is in place, removing
// a partial one (left by a crash while it was made).
func (g *Guard) heldReserve() bool {
	if g.cfg.Reserve == 0 {
		return true
	}
	st, err := os.Lstat(g.reserve)
	if err != nil {
		return false
	}
	if st.Mode().IsRegular() && st.Size() == g.cfg.Reserve {
		return true
	}
	if st.Mode().IsRegular() {
		os.Remove(g.reserve)
	}
	return false
}

// makeReserve writes the reserve file: to a temporary name first, so a
// crash never leaves a short file under the real name.
func (g *Guard) makeReserve() error {
	tmp := g.reserve + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("making disk reserve: %w", err)
	}
	err = allocate(f, g.cfg.Reserve)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, g.reserve)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("making disk reserve %s: %w", g.reserve, err)
	}
	return nil
}

// writeZeros fills f with size zero bytes.
func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for size > 0 {
		n, err := f.Write(buf[:min(int64(len(buf)), size)])
		if err != nil {
			return err
		}
		size -= int64(n)
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}
