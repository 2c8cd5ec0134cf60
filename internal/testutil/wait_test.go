package testutil

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fakeTB records a Fatalf and ends the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a fakeTB on a goroutine of its own and returns the
// failure message, "" if fn returned normally.
func run(fn func(tb testing.TB)) string {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.failed
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	start := time.Now()
	msg := run(func(tb testing.TB) {
		WaitFor(tb, "the third call", time.Minute, func() bool { calls++; return calls == 3 })
	})
	if msg != "" {
		t.Fatalf("WaitFor failed: %s", msg)
	}
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("WaitFor took %v for a condition that held on the third poll", el)
	}
}

func TestWaitForFailsAtTheDeadline(t *testing.T) {
	const d = 50 * time.Millisecond
	start := time.Now()
	var last time.Time
	calls := 0
	msg := run(func(tb testing.TB) {
		WaitFor(tb, "Godot", d, func() bool { calls++; last = time.Now(); return false })
	})
	if want := "timed out after 50ms waiting for Godot"; msg != want {
		t.Fatalf("failure %q, want %q", msg, want)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("WaitFor gave up after %v, before the deadline %v", el, d)
	}
	if last.Sub(start) < d {
		t.Fatalf("last check %v after the start, before the deadline %v", last.Sub(start), d)
	}
	if calls < 3 {
		t.Fatalf("cond polled %d times in %v", calls, d)
	}
}

func TestWaitForStateReportsTheLastState(t *testing.T) {
	n := 0
	msg := run(func(tb testing.TB) {
		WaitForState(tb, "n to reach a million", 30*time.Millisecond, func() (bool, string) {
			n++
			return false, fmt.Sprintf("n=%d", n)
		})
	})
	if want := fmt.Sprintf("timed out after 30ms waiting for n to reach a million; last seen: n=%d", n); msg != want {
		t.Fatalf("failure %q, want %q", msg, want)
	}
	if n < 2 {
		t.Fatalf("cond polled %d times in 30ms", n)
	}
	msg = run(func(tb testing.TB) {
		WaitForState(tb, "ok", time.Minute, func() (bool, string) { return true, "fine" })
	})
	if msg != "" {
		t.Fatalf("WaitForState failed: %s", msg)
	}
}
