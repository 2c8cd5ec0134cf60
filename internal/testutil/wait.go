package testutil

import (
	"testing"
	"time"
)

// Polling intervals of WaitFor and WaitForState: the first poll comes after
// minPoll and the interval doubles up to maxPoll, so that a cheap condition
// that holds soon is seen at once and an expensive one (a command run per
// check) does not run in a busy loop.
const (
	minPoll = time.Millisecond
	maxPoll = 25 * time.Millisecond
)

// WaitFor polls cond until it returns true, and fails the test with
// "timed out after <d> waiting for <what>" if it has not within d. cond is
// checked once more at the deadline, so a slow poll does not cut the wait
// short. Tests use it instead of sleeping for a fixed time. Like tb.Fatal,
// it must be called from the goroutine running the test.
func WaitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	if !poll(d, cond) {
		tb.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// WaitForState is WaitFor for a condition that also describes the state it
// saw: the failure message ends with "; last seen: " and the description
// cond returned last.
func WaitForState(tb testing.TB, what string, d time.Duration, cond func() (ok bool, state string)) {
	tb.Helper()
	var last string
	if !poll(d, func() bool { ok, state := cond(); last = state; return ok }) {
		tb.Fatalf("timed out after %v waiting for %s; last seen: %s", d, what, last)
	}
}

// poll calls cond until it returns true (poll returns true) or d has passed
// (false).
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	interval := minPoll
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(interval, left))
		interval = min(2*interval, maxPoll)
	}
	return true
}
