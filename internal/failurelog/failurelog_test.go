package failurelog

import (
	"testing"
	"time"
)

// TestFailuresWarnOnceAnInterval: the first failure warns at once; those within Every of a
// warning are counted, not warned about, and the next warning carries them; a success after a
// warning says so once, with what failed since; the next failure warns at once again.
func TestFailuresWarnOnceAnInterval(t *testing.T) {
	now := time.Unix(1000, 0)
	f := &Failures{Every: 10 * time.Second, Now: func() time.Time { return now }}
	if _, ok := f.Worked(); ok {
		t.Fatal("Worked with no warning standing says it works again")
	}
	step := func(name string, got Counts, ok bool, want Counts, wantOK bool) {
		t.Helper()
		if ok != wantOK || got != want {
			t.Errorf("%s = %+v, %v; want %+v, %v", name, got, ok, want, wantOK)
		}
	}
	c, ok := f.Failed(3)
	step("first failure", c, ok, Counts{1, 3}, true)
	for range 4 {
		now = now.Add(time.Second)
		c, ok = f.Failed(2)
		step("failure within the interval", c, ok, Counts{}, false)
	}
	now = now.Add(6 * time.Second) // 10 s after the warning
	c, ok = f.Failed(1)
	step("failure an interval on", c, ok, Counts{5, 9}, true)
	c, ok = f.Failed(7)
	step("failure just after", c, ok, Counts{}, false)
	c, ok = f.Worked()
	step("success after a warning", c, ok, Counts{1, 7}, true)
	c, ok = f.Worked()
	step("second success", c, ok, Counts{}, false)
	c, ok = f.Failed(1)
	step("failure after things worked", c, ok, Counts{1, 1}, true)
}
