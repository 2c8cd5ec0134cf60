package diskspace

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDefaultFloor(t *testing.T) {
	for _, c := range []struct{ total, want uint64 }{
		{100 << 20, MinFloor},          // 5 % is 5 MiB: the minimum wins
		{10 << 30, 10 << 30 / 100 * 5}, // 5 % of 10 GiB
		{1 << 40, MaxDefaultFloor},     // 5 % of 1 TiB is more than 1 GiB
	} {
		if got := DefaultFloor(c.total); got != c.want {
			t.Errorf("DefaultFloor(%d) = %d, want %d", c.total, got, c.want)
		}
	}
}

func TestFree(t *testing.T) {
	free, total, err := Free(t.TempDir())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("statfs is not implemented on this system")
	}
	if err != nil || total == 0 || free > total {
		t.Fatalf("Free = %d, %d, %v", free, total, err)
	}
	if _, _, err := Free(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Free of a missing directory succeeded")
	}
}

// fakeDisk is a filesystem whose free space the test sets, read by a Guard
// on a clock the test moves.
type fakeDisk struct {
	mu    sync.Mutex
	free  uint64
	now   time.Time
	reads int
}

func (d *fakeDisk) statfs(string) (uint64, uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	return d.free, 1 << 30, nil
}

func (d *fakeDisk) set(free uint64, advance time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free, d.now = free, d.now.Add(advance)
}

func (d *fakeDisk) clock() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.now
}

const testReserve = 64 << 10

func newGuard(t *testing.T, d *fakeDisk, dir string, log *bytes.Buffer) (*Guard, error) {
	t.Helper()
	return New(Config{Dir: dir, Floor: 100 << 20, Reserve: testReserve,
		Log: slog.New(slog.NewTextHandler(log, nil)), now: d.clock, statfs: d.statfs})
}

func TestGuard(t *testing.T) {
	dir := t.TempDir()
	d := &fakeDisk{free: 500 << 20, now: time.Unix(1e9, 0)}
	var log bytes.Buffer
	g, err := newGuard(t, d, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, ReserveName)); err != nil || st.Size() != testReserve {
		t.Fatalf("reserve file: %v, %v", st, err)
	}
	if g.Low() {
		t.Fatal("low with 500 MiB free and a 100 MiB floor")
	}
	// Below the floor: the old reading holds until CheckInterval passed.
	d.set(50<<20, 0)
	if g.Low() {
		t.Fatal("a fresh reading was not reused")
	}
	d.set(50<<20, CheckInterval)
	err = g.Check()
	var low *LowError
	if !errors.Is(err, ErrLow) || !errors.As(err, &low) || low.Free != 50<<20 || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Check below the floor = %v", err)
	}
	reads := d.reads
	for range 100 {
		g.Check()
	}
	if d.reads != reads {
		t.Fatalf("%d statfs calls for 100 checks within one interval", d.reads-reads)
	}
	d.set(50<<20, CheckInterval)
	g.Check()
	d.set(400<<20, CheckInterval)
	if err := g.Check(); err != nil {
		t.Fatalf("Check after space came back = %v", err)
	}
	if n := strings.Count(log.String(), "disk space low"); n != 1 {
		t.Errorf("logged low %d times, want once:\n%s", n, log.String())
	}
	if n := strings.Count(log.String(), "disk space back"); n != 1 {
		t.Errorf("logged back %d times, want once:\n%s", n, log.String())
	}
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ReserveName)); !os.IsNotExist(err) {
		t.Fatalf("reserve still there after Release: %v", err)
	}
	if err := g.Check(); !errors.Is(err, ErrReleased) {
		t.Fatalf("Check after Release = %v", err)
	}
}

func TestGuardRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	d := &fakeDisk{free: testReserve + MinFloor - 1}
	var log bytes.Buffer
	_, err := newGuard(t, d, dir, &log)
	if !errors.Is(err, ErrLow) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), Bytes(testReserve+MinFloor)) {
		t.Fatalf("New on a full disk = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ReserveName)); !os.IsNotExist(err) {
		t.Fatalf("reserve made on a full disk: %v", err)
	}
	// Just enough: it starts, low (below the 100 MiB floor), reserve in place.
	d.set(testReserve+MinFloor, 0)
	g, err := newGuard(t, d, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	if st := g.State(); !st.Low || !st.Reserve {
		t.Fatalf("state %+v, want low with the reserve", st)
	}
}

// Serve reads the free space every CheckInterval while the node refuses
// data, and otherwise no sooner than the room above the floor could be
// filled at FillRate, at most MaxServeWait apart.
func TestServeWaitFollowsTheRoomLeft(t *testing.T) {
	d := &fakeDisk{free: 500 << 20, now: time.Unix(1e9, 0)}
	var log bytes.Buffer
	g, err := newGuard(t, d, t.TempDir(), &log) // floor 100 MiB
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		free uint64
		want time.Duration
	}{
		{500 << 20, CheckInterval},                // 400 MiB above the floor: gone in under a second
		{100<<20 + 10*FillRate, 10 * time.Second}, // 10 s at FillRate
		{100<<20 + 1000*FillRate, MaxServeWait},   // a roomy disk
		{50 << 20, CheckInterval},                 // below the floor: watch for space coming back
		{100<<20 + 1000*FillRate, MaxServeWait},   // back
	} {
		d.set(c.free, CheckInterval)
		g.Check()
		if got := g.serveWait(); got != c.want {
			t.Errorf("%d MiB free: Serve waits %v, want %v", c.free>>20, got, c.want)
		}
	}
}

func TestGuardCountsAndRepairsReserve(t *testing.T) {
	dir := t.TempDir()
	// A whole reserve left by the last run counts as free space...
	if err := os.WriteFile(filepath.Join(dir, ReserveName), make([]byte, testReserve), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &fakeDisk{free: MinFloor}
	var log bytes.Buffer
	if _, err := newGuard(t, d, dir, &log); err != nil {
		t.Fatalf("New with the reserve in place: %v", err)
	}
	// ...a short one (a crash while making it) does not, and is replaced.
	if err := os.WriteFile(filepath.Join(dir, ReserveName), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newGuard(t, d, dir, &log); !errors.Is(err, ErrLow) {
		t.Fatalf("New with a short reserve = %v", err)
	}
	d.set(1<<30, 0)
	if _, err := newGuard(t, d, dir, &log); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, ReserveName)); err != nil || st.Size() != testReserve {
		t.Fatalf("reserve not remade: %v, %v", st, err)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 64 << 20: "64.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
