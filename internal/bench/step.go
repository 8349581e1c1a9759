package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ordercast/ordercast/internal/clock"
)

// stepOutcome is what one paced load measured: the writer's side, what the watchers received
// and the server's CPU over it.
type stepOutcome struct {
	load     load
	counts   Counts // the watchers' counters over the step
	expected int64
	// delivered counts the deliveries of the step's own changes, told from those of an earlier
	// step's that arrived during this one (lateFromEarlier) by their order and seq.
	delivered       int64
	lateFromEarlier int64
	latency         Latencies // of the step's own changes, sorted
	// cpuSeconds and machine are taken over the load, from the mark to its last write answered
	// and last post made, not over the wait for the deliveries after it; window runs to the end
	// of that wait.
	cpuSeconds float64
	// dbCPUSeconds is the servers' PostgreSQL's, when the target reads it (dbMeasured).
	dbCPUSeconds float64
	dbMeasured   bool
	// allocated is what the servers allocated over the load, when they say (allocMeasured).
	allocated     allocReading
	allocMeasured bool
	window        float64
	machine       MachineLoad // zero where the machine's CPU time cannot be read
	// serverFlush is the server's own measure of the events' delivery over the step (its
	// delivery latency histogram); nil where it could not be read.
	serverFlush histogram
	// The location workload's side, when it ran: what the couriers did, the deliveries their
	// accepted positions owed, and the positions joined with their posts (sorted).
	posts         PostCounts
	owedPositions int64
	positions     PosLatencies
	staleAtEnd    int64
}

// settleTimeout bounds the wait, after a load, for the watchers to receive what it committed.
const settleTimeout = 10 * time.Second

// positionsQuiet is how long, after the couriers stop, the positions received must stay unchanged
// for the step to end short of every owed one: a position the cap held back leaves within one
// --location-interval (1 s by default) and may have been replaced by a newer one meanwhile.
const positionsQuiet = 1500 * time.Millisecond

// positionsQuiet is positionsQuiet, or longer when the servers the bench starts hold positions
// back longer (--location-interval): a position still held back would be stale at the end.
func (r *run) positionsQuiet() time.Duration {
	if r.cfg.LocationInterval != nil {
		return max(positionsQuiet, *r.cfg.LocationInterval+positionsQuiet/3)
	}
	return positionsQuiet
}

// step commits rate×dur changes on schedule (d nil: none), and in a location run has the couriers
// post for dur at the same time; it waits for the watchers to have what the load owes them, and
// joins what they read with when each write or post was due and started.
func (r *run) step(ctx context.Context, d *driver, rate float64, dur time.Duration) (stepOutcome, error) {
	var s stepOutcome
	before := r.counts()
	expBefore := r.owed(d)
	// Deliveries an earlier step owes that have not arrived yet (0 for the first): they may still
	// come, during this step, and the settle below waits for them too.
	owedBefore := max(0, expBefore-before.Delivered)
	cpuBefore, err := r.target.readCPU(ctx)
	if err != nil {
		return s, err
	}
	benchBefore, benchErr := r.benchCPU()
	var flushBefore histogram
	if d != nil {
		flushBefore, _ = r.target.deliveryLatency(ctx) // a figure beside the bench's own: none if unreadable
	}
	markAt := time.Now()
	var posted <-chan postsDone
	if r.cfg.Couriers > 0 {
		posted = r.startPosts(dur)
	}
	switch {
	case d != nil:
		r.phase.Store(fmt.Sprintf("driving %.0f/s", rate))
		s.load = d.run(ctx, rate, dur)
		s.expected = r.owed(d) - expBefore
	default:
		r.phase.Store("posting")
	}
	if posted != nil {
		done := <-posted
		if done.err != nil {
			return s, done.err
		}
		s.posts = done.counts
		s.owedPositions = owedPositions(s.posts.Posts, r.cfg.Watchers, r.cfg.PerOrder)
	}
	// The load is over. Its CPU window ends here: the settle below polls the counts (every
	// progressEvery from a worker), and its idle time would thin the cores busy out.
	loadSeconds := time.Since(markAt).Seconds()
	cpuAfter, err := r.target.readCPU(ctx)
	if err != nil {
		return s, err
	}
	s.cpuSeconds = cpuAfter.server - cpuBefore.server
	s.dbCPUSeconds, s.dbMeasured = cpuAfter.db-cpuBefore.db, r.target.postmaster != 0
	if s.allocMeasured = cpuBefore.allocOK && cpuAfter.allocOK; s.allocMeasured {
		s.allocated = allocReading{bytes: cpuAfter.alloc.bytes - cpuBefore.alloc.bytes, objects: cpuAfter.alloc.objects - cpuBefore.alloc.objects}
	}
	if cpuBefore.machineOK && cpuAfter.machineOK {
		p := processSeconds{server: s.cpuSeconds, db: s.dbCPUSeconds}
		if benchAfter, err := r.benchCPU(); err == nil && benchErr == nil {
			p.bench = benchAfter - benchBefore
		} // else left out: a worker gone is reported by its group
		s.machine = loadOver(cpuBefore.machine, cpuAfter.machine, p, loadSeconds, numCPU())
	}
	r.phase.Store("settling")
	deadline := time.Now().Add(settleTimeout + 2*r.cfg.PollInterval)
	// Polling with a deadline: the counts come from every group, some in other processes. With
	// no watcher open nothing can arrive, so there is nothing to wait for.
	lastPositions, quietSince := int64(-1), time.Now()
	for before.Opened > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		c := r.counts().Sub(before)
		if c.Positions != lastPositions {
			lastPositions, quietSince = c.Positions, time.Now()
		}
		positionsDone := posted == nil || c.Positions >= s.owedPositions || time.Since(quietSince) >= r.positionsQuiet()
		if c.Delivered >= s.expected+owedBefore && positionsDone {
			break
		}
		clock.Sleep(ctx, 20*time.Millisecond)
	}
	s.window = time.Since(markAt).Seconds()
	if flushBefore != nil {
		if after, err := r.target.deliveryLatency(ctx); err == nil {
			s.serverFlush = after.since(flushBefore)
		}
	}
	counts, err := r.take()
	if err != nil {
		return s, fmt.Errorf("collect the watchers' counts: %w", err)
	}
	s.counts = counts.Sub(before)
	if d != nil {
		s.correlate(d)
	}
	s.positions = CorrelatePositions(s.posts.Posts, s.counts.PosSamples)
	if posted != nil {
		s.staleAtEnd = staleAtEnd(s.posts.Posts, s.counts.Newest)
	}
	s.counts.Samples, s.counts.PosSamples, s.posts.Posts, s.counts.Newest = nil, nil, nil, nil
	slices.Sort(s.positions.FromDue)
	slices.Sort(s.positions.FromStart)
	return s, ctx.Err()
}

// correlate joins the deliveries of the step's own changes with their writes. A delivery of an
// earlier step's change, late past that step's settle, is counted apart: it must neither make up
// for one of this step's that never came nor put its latency among this step's.
func (s *stepOutcome) correlate(d *driver) {
	own := make([]Sample, 0, len(s.counts.Samples))
	for _, sm := range s.counts.Samples {
		if k, ok := d.changeOf(sm.Order, sm.Seq); ok && k < s.load.first {
			s.lateFromEarlier++
			continue
		}
		own = append(own, sm) // one that matches no change stays, for Correlate to count
	}
	s.delivered = int64(len(own))
	s.latency = Correlate(d.starts, own)
	slices.Sort(s.latency.FromDue)
	slices.Sort(s.latency.FromStart)
	slices.Sort(s.latency.CommitToReceive)
}

// owed is the deliveries the committed changes owe: one per watcher of the order, or with
// --restaurants one per change (its restaurant's single stream); none without a driver.
func (r *run) owed(d *driver) int64 {
	switch {
	case d == nil:
		return 0
	case r.cfg.Restaurants > 0:
		return d.expected(d.orders, 1)
	}
	return d.expected(r.cfg.Watchers, r.cfg.PerOrder)
}

// summary is the step's row in a find-max table.
func (s stepOutcome) summary(bound time.Duration) Step {
	st := Step{
		Offered: s.load.offered, Achieved: s.load.achieved, BehindSeconds: s.load.behind.Seconds(),
		MaxLateMs: float64(s.load.maxLate) / float64(time.Millisecond),
		Committed: s.load.committed, CommitErrors: s.load.errors + int64(s.load.unsent), Expected: s.expected,
		Delivered: s.delivered, LateFromEarlier: s.lateFromEarlier, Samples: int64(len(s.latency.FromStart)),
		DueP50Ms: ms(Percentile(s.latency.FromDue, 50)), DueP99Ms: ms(Percentile(s.latency.FromDue, 99)),
		P50Ms: ms(Percentile(s.latency.FromStart, 50)), P99Ms: ms(Percentile(s.latency.FromStart, 99)),
		CommitP50Ms: ms(Percentile(s.latency.CommitToReceive, 50)), CommitP99Ms: ms(Percentile(s.latency.CommitToReceive, 99)),
	}
	if s.load.committed > 0 {
		st.CPUPerChangeMicros = s.cpuSeconds / float64(s.load.committed) * 1e6
		if s.dbMeasured {
			st.DBCPUPerChangeMicros = s.dbCPUSeconds / float64(s.load.committed) * 1e6
		}
	}
	st.CoresBusy = s.machine.BusyCores
	switch {
	case st.CommitErrors > 0:
		st.Why = fmt.Sprintf("%d changes failed", st.CommitErrors)
	case s.delivered < s.expected:
		st.Why = fmt.Sprintf("delivered %d of %d", s.delivered, s.expected)
	case s.counts.Duplicates+s.counts.OutOfOrder+s.counts.Gaps > 0 || s.latency.Uncorrelated+s.latency.Inconsistent > 0:
		st.Why = "delivery errors"
	case st.Achieved < heldShare*st.Offered:
		st.Why = fmt.Sprintf("achieved %.0f/s of %.0f/s", st.Achieved, st.Offered)
	case st.Samples == 0:
		st.Why = "nothing delivered"
	case st.DueP99Ms > float64(bound)/float64(time.Millisecond):
		// From the due time: a step whose writes queued behind a stall did not hold its rate
		// within the bound, however quick each write was once sent.
		st.Why = fmt.Sprintf("p99 from due %s ms above %s ms", fmtMs(st.DueP99Ms), fmtMs(float64(bound)/float64(time.Millisecond)))
	default:
		st.Held = true
	}
	return st
}

// Bounds on the find-max search.
const (
	maxFindSteps = 12
	// findPrecision ends the bisection once the rates that held and failed are this close.
	findPrecision = 0.1
	// findFloor is how far below its start the search goes when the start does not hold.
	findFloor = 4
)

// findMax runs steps at rising rates on the same watchers: it starts at --rate, doubles while a
// step holds, then bisects between the highest rate that held and the lowest that did not until
// they are within 10 %. When the start does not hold it halves, down to a quarter of it. It keeps
// the counters of every step and the latencies of the highest rate that held.
func (r *run) findMax(ctx context.Context, d *driver, res *Result) error {
	fm := &FindMax{P99BoundMs: float64(r.cfg.P99Bound) / float64(time.Millisecond), StepSeconds: r.cfg.StepDuration.Seconds(), Best: -1}
	res.FindMax = fm
	lo, hi := 0.0, math.Inf(1)
	rate := r.cfg.Rate
	var best, last stepOutcome
	for {
		if len(fm.Steps) == maxFindSteps {
			fm.Stopped = fmt.Sprintf("step limit (%d) reached", maxFindSteps)
			break
		}
		if need := int(math.Round(rate * r.cfg.StepDuration.Seconds())); d.remaining() < need/2 || d.remaining() == 0 {
			fm.Stopped = fmt.Sprintf("ran out of orders: %d changes left, a step at %.0f/s needs %d (add watchers or shorten --step)", d.remaining(), rate, need)
			break
		}
		s, err := r.step(ctx, d, rate, r.cfg.StepDuration)
		if err != nil {
			return err
		}
		res.add(s)
		last = s
		st := s.summary(r.cfg.P99Bound)
		fm.Steps = append(fm.Steps, st)
		if st.Held {
			lo, best = rate, s
			fm.Best, fm.MaxRate = len(fm.Steps)-1, rate
		} else {
			hi = rate
		}
		switch {
		case math.IsInf(hi, 1):
			rate *= 2
		case lo == 0:
			if rate/2 < r.cfg.Rate/findFloor || rate < 2 {
				fm.Stopped = fmt.Sprintf("no rate held down to %.0f/s", rate)
			}
			rate = math.Round(rate / 2)
		case hi-lo <= findPrecision*lo:
			fm.Stopped = fmt.Sprintf("converged: %.0f/s held, %.0f/s did not", lo, hi)
		default:
			rate = math.Round((lo + hi) / 2)
		}
		if fm.Stopped != "" {
			break
		}
	}
	if fm.Best >= 0 {
		res.setLoad(best)
	} else if len(fm.Steps) > 0 {
		res.setLoad(last)
	}
	return nil
}

func ms(us int64) float64 { return float64(us) / 1000 }
