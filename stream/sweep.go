package stream

import (
	"sync"
	"time"
)

// sweepBuckets spreads the sweeper's work over the heartbeat interval: each tick visits one
// bucket of streams, so heartbeats leave in a steady trickle instead of one burst.
const sweepBuckets = 16

// sweepVisits is how often per heartbeat interval the sweeper visits each stream. A stream is
// owed a heartbeat once it has been quiet for the interval less two visits' spacing: a visit
// that comes just before that mark finds none owed, and the next comes one spacing later, so
// a tick late by less than a spacing (1.9 s at the default 15 s) still keeps the stream from
// being silent for longer than the interval. An idle stream so gets a heartbeat every six to
// seven eighths of the interval (11.3 – 13.1 s at the default), and a stream with events to send
// gets none.
const sweepVisits = 8

// sweep visits one bucket per tick and brings each stream the time: see tick.
func (h *holder) sweep() {
	t := time.NewTicker(h.sweepTick())
	defer t.Stop()
	bucket := 0
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-t.C:
			for _, hs := range h.snapshot(bucket) {
				hs.tick(now)
			}
			bucket = (bucket + 1) % sweepBuckets
		}
	}
}

// sweepTick is how often the sweeper visits a bucket: each stream sweepVisits times per
// heartbeat interval, or every sweepBuckets milliseconds for intervals too short for that.
func (h *holder) sweepTick() time.Duration {
	return max(h.e.cfg.Heartbeat/(sweepBuckets*sweepVisits), time.Millisecond)
}

// tick is a held stream's clock, sweepVisits times per heartbeat interval: the end of a stream
// whose client has not taken a byte for the write timeout (the goroutine holder's write
// deadline, measured here on the poller's queue; checked first, as a goroutine stuck in a write
// misses its lifetime too), or whose lifetime is over; else a heartbeat if it has been quiet.
func (hs *heldStream) tick(now time.Time) {
	conn := hs.conn.Load()
	hb := hs.h.e.cfg.Heartbeat
	switch {
	case conn == nil:
		// Being handed over right now; its first bytes are on their way.
	case conn.Stalled(now, hs.h.e.cfg.WriteTimeout):
		hs.end(ReasonWriteTimeout, nil)
	case !hs.expires.IsZero() && now.After(hs.expires):
		hs.end(hs.expiresFor, nil)
	case hs.drainDue(now):
		hs.end(ReasonShutdown, nil) // the client resumes, with Last-Event-ID, on another node
	case hs.w.quietFor(now) >= hb-2*hs.h.sweepTick()*sweepBuckets: // see sweepVisits
		hs.heartbeat(conn, now)
	}
}

// drainDue reports, on a sweeper visit, whether a stream the drain's own pass did not schedule
// has reached its place in the drain: the first visit after the drain began claims it and gives
// it the next place; the visit that finds the place reached ends it, once.
func (hs *heldStream) drainDue(now time.Time) bool {
	d := hs.h.e.drain.Load()
	if d == nil {
		return false
	}
	if hs.drainAt.IsZero() {
		if !hs.drainClaimed.CompareAndSwap(false, true) {
			return false // the drain's pass has it, or this sweeper ended it already
		}
		hs.drainAt = d.began.Add(d.delay())
	}
	if now.Before(hs.drainAt) {
		return false
	}
	hs.drainAt = time.Time{} // claimed and ended: never again
	return true
}

// cappedSet is the held streams whose newest position the location cap holds back, with when
// each may be sent. A held stream has no timer of its own; one goroutine releases them all.
type cappedSet struct {
	mu  sync.Mutex
	due map[*heldStream]time.Time
}

func (c *cappedSet) add(hs *heldStream, due time.Time) {
	c.mu.Lock()
	if c.due != nil {
		c.due[hs] = due
	}
	c.mu.Unlock()
}

// releaseCapped wakes, twenty times per cap interval, the streams whose held-back position is
// due; their worker run sends it (or a newer one that replaced it). A held-back position is then
// at most a twentieth of the interval late (50 ms at the default 1 s), and only a courier posting
// faster than the cap has any held back (see pace). A stream's own cap is never shorter than the
// engine's, so it is late by no more.
func (h *holder) releaseCapped(interval time.Duration) {
	t := time.NewTicker(max(interval/20, 10*time.Millisecond))
	defer t.Stop()
	var ready []*heldStream
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-t.C:
			h.capped.mu.Lock()
			for hs, due := range h.capped.due {
				if !now.Before(due) {
					ready = append(ready, hs)
					delete(h.capped.due, hs)
				}
			}
			h.capped.mu.Unlock()
			for i, hs := range ready {
				hs.schedule(false)
				ready[i] = nil
			}
			ready = ready[:0]
		}
	}
}

// drain closes every held stream at its place in the engine's drain schedule. The engine
// stored the schedule before this pass takes its snapshot, so a stream held after it is seen by
// the sweeper (drainDue), as is one the pass finds not yet held when its place comes.
func (h *holder) drain(schedule *drainSchedule) {
	var streams []*heldStream
	for _, hs := range h.snapshot(-1) {
		if hs.drainClaimed.CompareAndSwap(false, true) {
			streams = append(streams, hs)
		}
	}
	if len(streams) == 0 {
		return
	}
	delays := make([]time.Duration, len(streams))
	for i := range streams {
		delays[i] = schedule.delay()
	}
	h.wg.Go(func() {
		start := time.Now()
		for i, hs := range streams {
			if wait := time.Until(start.Add(delays[i])); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-h.ctx.Done():
					t.Stop()
					return
				}
			}
			if hs.conn.Load() == nil {
				hs.drainClaimed.Store(false) // not held yet: the sweeper gives it a place
				continue
			}
			hs.end(ReasonShutdown, nil) // the client resumes, with Last-Event-ID, on another node
		}
	})
}
