package stream

import "time"

// pace is the per-stream cap on positions: one per interval on average, with room for one
// position early. It is the generic cell rate algorithm with a burst tolerance of one interval:
// tat is the theoretical time of the next position (as time since clockBase, on the monotonic
// clock as heartbeats are: a step of the wall clock back must not hold every stream's positions
// for as long; 0 before the first), and a position may go when now ≥ tat − interval.
//
// The slack is what a courier posting at the cap's own rate needs: a phone reporting every
// second reports every 0.95–1.05 s, and a cap that counted strictly from the last position sent
// held most of them back until the next second (p99 post→screen ~760 ms at one post a second,
// against ~14 ms uncapped). A flood still gets two positions and then one per interval.
type pace struct{ tat time.Duration }

// allow reports whether a position may be sent at now under interval iv (zero: no cap) and, if it
// may, counts it; if it may not, it returns when it may.
func (p *pace) allow(now time.Time, iv time.Duration) (ok bool, due time.Time) {
	if iv <= 0 {
		return true, time.Time{}
	}
	n := now.Sub(clockBase)
	if p.tat == 0 {
		p.tat = n
	}
	if n < p.tat-iv {
		return false, clockBase.Add(p.tat - iv)
	}
	p.tat = max(p.tat, n) + iv
	return true, time.Time{}
}
