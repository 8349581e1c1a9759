package postgres

import (
	"testing"
	"time"
)

// The database's clock here runs 3 s ahead of the node's. Readings whose answers waited must
// not move the reckoned clock; the tightest of the window holds until the window passes.
func TestClockKeepsTheTightestReading(t *testing.T) {
	const ahead = 3 * time.Second
	start := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	var c dbClock
	// read: the request is sent at start+at, reaches the database after out and is answered
	// after back more.
	read := func(at, out, back time.Duration) {
		sent := start.Add(at)
		c.read(sent.Add(out).Add(ahead), sent, sent.Add(out).Add(back))
	}
	skew := func() time.Duration { return time.Duration(c.skew.Load()) }

	read(0, 2*time.Millisecond, 100*time.Microsecond) // the first reading, slow on the way there
	if got, want := skew(), ahead+2*time.Millisecond; got != want {
		t.Fatalf("after the first reading the skew = %v, want %v", got, want)
	}
	read(time.Second, 50*time.Microsecond, 40*time.Millisecond) // answered late: a busy node
	if got, want := skew(), ahead+50*time.Microsecond; got != want {
		t.Fatalf("after a tight reading answered late the skew = %v, want %v (never earlier than the database)", got, want)
	}
	read(2*time.Second, 30*time.Millisecond, 50*time.Microsecond) // it waited for a lock before the reading
	if got, want := skew(), ahead+50*time.Microsecond; got != want {
		t.Fatalf("a reading that waited moved the skew to %v, want it kept at %v", got, want)
	}
	if skew() < ahead {
		t.Fatalf("skew %v is behind the database's clock (%v)", skew(), ahead)
	}

	// Past one window the tightest reading is still the previous window's; past two it is gone.
	read(clockWindow+time.Second, 500*time.Microsecond, 0)
	if got, want := skew(), ahead+50*time.Microsecond; got != want {
		t.Fatalf("one window on, skew = %v, want the previous window's %v", got, want)
	}
	read(2*clockWindow+2*time.Second, 400*time.Microsecond, 0)
	if got, want := skew(), ahead+400*time.Microsecond; got != want {
		t.Fatalf("two windows on, skew = %v, want the newest windows' tightest %v", got, want)
	}

	// The database's clock steps back by a second (an operator fixed it): within two windows
	// the node follows.
	read(3*clockWindow+3*time.Second, 100*time.Microsecond-time.Second, 0)
	if got, want := skew(), ahead-time.Second+100*time.Microsecond; got != want {
		t.Fatalf("after the database's clock stepped back, skew = %v, want %v", got, want)
	}
}

// TestClockOffsetIsTheMidpoint: on a node far from the database (40 ms each way here) whose
// clock agrees with it, the bound events are stamped by is 40 ms ahead, all of it the way
// there; the offset the node reports for its clock is the tightest reading's midpoint, 0, not
// the 40 ms a dashboard would blame on the clocks. A database 3 s ahead reads 3 s.
func TestClockOffsetIsTheMidpoint(t *testing.T) {
	start := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	for _, ahead := range []time.Duration{0, 3 * time.Second, -2 * time.Second} {
		var c dbClock
		const way = 40 * time.Millisecond
		for i, extra := range []time.Duration{5 * time.Millisecond, 0, 20 * time.Millisecond} {
			sent := start.Add(time.Duration(i) * time.Second)
			c.read(sent.Add(way).Add(extra).Add(ahead), sent, sent.Add(2*way+extra))
		}
		if got, want := time.Duration(c.skew.Load()), ahead+way; got != want {
			t.Errorf("database %v ahead: the bound stamped by = %v, want %v (never earlier than the database)", ahead, got, want)
		}
		if got := time.Duration(c.offset.Load()); got != ahead {
			t.Errorf("database %v ahead, 40 ms each way: offset = %v, want %v", ahead, got, ahead)
		}
	}
}
