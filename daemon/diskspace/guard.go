package diskspace

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Check returns nil if there is room for new data, a *LowError below the
// floor (or while the reserve could not be made), ErrReleased after
// Release. It reads the free space again if the last reading is older
// than CheckInterval, else it costs a lock.
func (g *Guard) Check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.released {
		return ErrReleased
	}
	if now := g.cfg.now(); now.Sub(g.checked) >= CheckInterval {
		g.refreshLocked(now)
	}
	if g.state.Low {
		return &LowError{Path: g.cfg.Dir, Free: g.state.Free, Floor: g.state.Floor}
	}
	return nil
}

// Low reports whether Check would refuse.
func (g *Guard) Low() bool { return g.Check() != nil }

// State returns the last reading (refreshed as Check does).
func (g *Guard) State() State {
	g.Check()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// Serve reads the free space until ctx is done, so that the changes are
// logged, and the reserve remade, even when nothing writes (every write
// asks Check, which reads it at most CheckInterval apart). It reads every
// CheckInterval while new data is refused, so that space coming back is
// noticed at once; otherwise before the room above the floor could be
// filled at FillRate (serveWait): an idle node on a roomy disk wakes once
// a minute for this, not every second.
func (g *Guard) Serve(ctx context.Context) error {
	t := time.NewTimer(g.serveWait())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			g.Check()
			t.Reset(g.serveWait())
		}
	}
}

// serveWait is how long Serve may leave the last reading alone: the time
// the room above the floor lasts at FillRate, between CheckInterval and
// MaxServeWait; CheckInterval while low or while no reading succeeded.
func (g *Guard) serveWait() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.state
	if !g.known || st.Low || st.Free <= st.Floor {
		return CheckInterval
	}
	lasts := time.Duration(float64(st.Free-st.Floor) / FillRate * float64(time.Second))
	return min(max(lasts, CheckInterval), MaxServeWait)
}

// Release deletes the reserve file, giving its space to the database's
// final flush; Check refuses from then on. Call it at shutdown, after
// every writer but the database itself has stopped.
func (g *Guard) Release() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released = true
	g.state.Reserve = false
	if g.cfg.Reserve == 0 {
		return nil
	}
	if err := os.Remove(g.reserve); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("releasing disk reserve: %w", err)
	}
	return nil
}

// refreshLocked takes a new reading, remakes a missing reserve when there
// is room for it above the floor, and logs a change of state once.
func (g *Guard) refreshLocked(now time.Time) {
	g.checked = now
	free, total, err := g.cfg.statfs(g.cfg.Dir)
	if err != nil {
		if g.known {
			g.cfg.Log.Warn("reading free disk space failed", "path", g.cfg.Dir, "err", err)
		}
		return // keep the last reading
	}
	g.known = true
	st := &g.state
	if !st.Reserve && free >= st.Floor+uint64(g.cfg.Reserve) {
		if err := g.makeReserve(); err != nil {
			g.cfg.Log.Warn("remaking the disk reserve failed", "err", err)
		} else {
			st.Reserve = true
			free, total, _ = g.cfg.statfs(g.cfg.Dir)
		}
	}
	wasLow := st.Low
	st.Free, st.Total = free, total
	st.Low = free < st.Floor || !st.Reserve
	switch {
	case st.Low && !wasLow:
		g.cfg.Log.Warn("disk space low: refusing new announcements and objects until space is freed",
			"path", g.cfg.Dir, "free", Bytes(free), "floor", Bytes(st.Floor), "reserve", st.Reserve)
	case !st.Low && wasLow:
		g.cfg.Log.Info("disk space back: accepting new data again", "path", g.cfg.Dir, "free", Bytes(free), "floor", Bytes(st.Floor))
	}
}

// Bytes formats n bytes for people: "512 B", "3.0 MiB", "1.5 GiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
