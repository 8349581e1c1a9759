// Package testutil holds what the tests of several packages share.
package testutil

import (
	"testing"
	"time"
)

// WaitTimeout is how long WaitFor polls before it fails the test: long enough for a loaded CI
// machine, short enough that a real hang fails within the package's test timeout.
const WaitTimeout = 10 * time.Second

// WaitFor polls cond every few milliseconds until it holds, and fails the test naming what it
// waited for if WaitTimeout passes first. It is for conditions no signal announces (a count in
// another process, a metric); where a channel or callback says it, wait on that instead.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, WaitTimeout, what, cond)
}

// WaitForWithin is WaitFor with a timeout of its own, for a condition that a server outside the
// test announces on its own schedule (PostgreSQL's statistics, reported up to 10 s late).
func WaitForWithin(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}
