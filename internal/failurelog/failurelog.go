// Package failurelog keeps a failure that repeats from flooding the log: the first is logged at
// once, the rest at most once an interval with how many there were, and the first success after
// a warning says the trouble is over. A dependency that is away fails every request that needs
// it, and a thousand streams opening at once would otherwise write a thousand lines about one
// outage.
package failurelog

import (
	"sync"
	"time"
)

// Failures counts one kind of failure between its warnings. The zero value warns on every
// failure; set Every. It is safe for concurrent use.
type Failures struct {
	// Every is the least time between two warnings.
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	warnedAt time.Time // zero: no warning stands
	failed   int       // failures since the last warning
	items    int       // what they failed to carry, as their callers count it
}

// Counts is what failed since the last warning: failures, and the items (positions, orders…)
// they carried.
type Counts struct{ Failures, Items int }

// Failed notes a failure that carried items, and reports whether to warn now: the first failure
// since things last worked, or the first after Every since the last warning. Counts then holds
// every failure since the last warning, this one included, and starts over.
func (f *Failures) Failed(items int) (Counts, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed, f.items = f.failed+1, f.items+items
	now := f.now()
	if !f.warnedAt.IsZero() && now.Sub(f.warnedAt) < f.Every {
		return Counts{}, false
	}
	c := Counts{Failures: f.failed, Items: f.items}
	f.warnedAt, f.failed, f.items = now, 0, 0
	return c, true
}

// Worked notes a success, and reports whether a warning stood, to say once that it works again,
// with what failed after the last warning.
func (f *Failures) Worked() (Counts, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.warnedAt.IsZero() {
		return Counts{}, false
	}
	c := Counts{Failures: f.failed, Items: f.items}
	f.warnedAt, f.failed, f.items = time.Time{}, 0, 0
	return c, true
}

func (f *Failures) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
