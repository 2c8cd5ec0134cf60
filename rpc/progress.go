package rpc

import (
	"encoding/json"
	"sync"
	"time"
)

// The progress of long calls (repo.sync, repo.clone, repo.pull): the
// daemon's side reports through a ProgressFunc, the server throttles the
// reports into "progress" notifications sent before the call's answer, and
// the client routes them to the caller's callback by the call's id.

// NotifyProgress is the notification that reports the progress of a long
// call before its answer; params Progress, whose token is the call's id.
const NotifyProgress = "progress"

// Progress is the params of a "progress" notification, sent by long calls
// before their answer.
type Progress struct {
	// Token is the id of the call this progress belongs to, the same JSON
	// value (number or string) the caller sent.
	Token json.RawMessage `json:"token"`
	// Done counts the units of work finished (bytes, objects, …).
	Done int64 `json:"done"`
	// Total is the number of units expected, or 0 when unknown.
	Total int64 `json:"total"`
	// Message says what is being done, for humans.
	Message string `json:"message,omitempty"`
}

// ProgressFunc reports progress of a long operation; the server turns each
// call into a "progress" notification. total is 0 when unknown.
type ProgressFunc func(done, total int64, message string)

// ProgressInterval is the shortest time between two progress notifications
// of one call: updates that come sooner are coalesced, the newest kept, so
// a caller sees at most about ten a second however often the daemon
// reports. The last update is always delivered before the answer.
const ProgressInterval = 100 * time.Millisecond

// Progress sends a "progress" notification for this call.
func (c *call) Progress(done, total int64, message string) error {
	if c.ID == nil {
		return nil // a notification: nobody to report to
	}
	return c.Notify(NotifyProgress, Progress{Token: c.ID, Done: done, Total: total, Message: message})
}

// progressReporter is the ProgressFunc a long call hands to the Service. It
// sends "progress" notifications for the call, at most one per interval:
// an update that comes sooner waits (the newest replacing older ones) and
// is sent when the interval is over, or by finish. After finish it sends
// nothing, so nothing follows the answer, even from a Service that keeps
// the func. It may be called from any goroutine; a call may block while
// the notification is written to a slow client (WriteTimeout bounds it).
type progressReporter struct {
	c        *call
	interval time.Duration

	mu      sync.Mutex
	last    time.Time // when the last notification was sent
	pending *Progress // the newest update not sent yet
	timer   *time.Timer
	done    bool
}

func newProgressReporter(c *call) *progressReporter {
	interval := c.progressInterval
	if interval == 0 {
		interval = ProgressInterval
	}
	return &progressReporter{c: c, interval: interval}
}

func (r *progressReporter) report(done, total int64, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.c.ID == nil {
		return
	}
	p := Progress{Done: done, Total: total, Message: message}
	wait := r.interval - time.Since(r.last)
	if r.pending == nil && wait <= 0 {
		r.sendLocked(p)
		return
	}
	r.pending = &p
	if r.timer == nil {
		r.timer = time.AfterFunc(max(wait, 0), r.flush)
	}
}

// flush sends the pending update once the interval is over.
func (r *progressReporter) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.done || r.pending == nil {
		return
	}
	r.sendLocked(*r.pending)
	r.pending = nil
}

// finish sends the pending update, if any, and stops the reporter. It is
// idempotent.
func (r *progressReporter) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if r.timer != nil {
		r.timer.Stop() // a flush already running finds done set
		r.timer = nil
	}
	if r.pending != nil {
		r.sendLocked(*r.pending)
		r.pending = nil
	}
}

// sendLocked sends one notification; the lock keeps them in order.
func (r *progressReporter) sendLocked(p Progress) {
	r.last = time.Now()
	_ = r.c.Progress(p.Done, p.Total, p.Message) // a failed write ends the connection anyway
}

// progressRoute adapts a Progress callback to Call's onNotify.
func progressRoute(fn func(Progress)) func(string, json.RawMessage) {
	if fn == nil {
		return nil
	}
	return func(method string, params json.RawMessage) {
		if method != NotifyProgress {
			return
		}
		var p Progress
		if json.Unmarshal(params, &p) == nil {
			fn(p)
		}
	}
}
