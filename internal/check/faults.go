package check

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Fault kinds, each on or off by flag.
const (
	FNodeKill    = "node_kill9"        // kill -9 of a node during a write burst, restarted on its port
	FNodeStop    = "node_sigstop"      // SIGSTOP of a node for a few seconds, then SIGCONT
	FListen      = "listen_terminated" // pg_terminate_backend on every node's LISTEN connection
	FPGRestart   = "pg_restart"        // PostgreSQL restarted (fast or immediate shutdown)
	FWatchPause  = "watcher_pause"     // watchers stop reading for a while
	FWatchVanish = "watcher_vanish"    // watchers drop their connections without closing them
	FSQLiteKill  = "sqlite_kill9"      // kill -9 of the only node (SQLite) mid-burst, restarted
)

// AllFaults lists every fault kind.
var AllFaults = []string{FNodeKill, FNodeStop, FListen, FPGRestart, FWatchPause, FWatchVanish, FSQLiteKill}

// fault is one fault as it happened.
type fault struct {
	Kind      string        `json:"kind"`
	Start     time.Time     `json:"start"`
	Lifted    time.Time     `json:"lifted"`
	Recovered time.Duration `json:"recovered_ns"` // start until every watcher had what committed before the lift; <0 not measured
	Detail    string        `json:"detail"`
	// Node is the node a node's kill acted on, numbered from 1; 0 for a fault whose effects reach
	// every node (PostgreSQL's, the listeners', a node stopped: see inject).
	Node int `json:"node,omitempty"`
	// InFlight is, for a node's kill, how many of the writers' calls to that node itself were
	// unanswered when it was killed (those through nginx may have gone to any node).
	InFlight int64 `json:"writes_in_flight,omitempty"`
	// Skipped is set when the fault found nothing to act on (no LISTEN connection to end): it
	// did not happen, and counts as neither injected nor recovered.
	Skipped bool `json:"skipped,omitempty"`
	targets map[follower]target
	hit     []follower // the watchers a watcher fault hit
}

// target is what a watcher must reach for a fault to count as recovered: what it followed when
// the fault was lifted (an order, a party) and how far the writers knew that to be committed.
type target struct {
	subject any
	seq     int64
}

// watchFaults is the part of a watcher, of either kind, that the watcher faults act on.
type watchFaults struct {
	pauseUntil atomic.Int64            // unix nanos: stop reading until then (fault)
	vanish     atomic.Bool             // abandon the connection without closing it (fault)
	lastHit    atomic.Pointer[hitSpan] // the last watcher fault that hit it; nil: none
}

// hitSpan is when a watcher fault acted on a watcher, unix nanos (until is MaxInt64 while a
// vanished watcher is not back).
type hitSpan struct{ from, until int64 }

// hit records that a watcher fault acts on it from from until until.
func (f *watchFaults) hit(from time.Time, until int64) {
	f.lastHit.Store(&hitSpan{from.UnixNano(), until})
}

// excuses reports whether w is excused from node fault f's recovery: a watcher fault acted on
// it while f was on, so what it lacks is that fault's to measure. One that hit it before f
// began and was over, or that hit it only after f was lifted, excuses nothing: its recovery is
// f's (lengthened, in the second case, by what the watcher fault cost it), never cut short.
func (f *fault) excuses(w *watchFaults) bool {
	h := w.lastHit.Load()
	return f.hit == nil && h != nil && h.from <= f.Lifted.UnixNano() && h.until >= f.Start.UnixNano()
}

func (f *watchFaults) faults() *watchFaults { return f }

// follower is a watcher of either kind (one order at a time, or one party for the whole run)
// as the faults, the recovery measurement and the final catch-up see it.
type follower interface {
	faults() *watchFaults
	// mark returns what it follows now (nil between sessions), how far it has it, and how far
	// the writers know it to be committed.
	mark() (subject any, have, known int64)
	// behind reports whether it still lacks something the writers know committed, and where it is.
	behind() (bool, string)
}

// recovery watches lifted faults until every watcher is caught up with what was committed
// before the lift. It is bounded: a fault not recovered within maxRecovery is reported as such.
type recovery struct {
	mu      sync.Mutex
	pending []*fault
	done    []*fault
}

const maxRecovery = 2 * time.Minute

// listenWindow is how long a listen_terminated fault looks for a LISTEN connection to end.
const listenWindow = 3 * time.Second

// lift records that f is over and takes its targets: for every watcher, the version the
// writers know for the order it follows.
func (p *phase) lift(f *fault) {
	f.Lifted = time.Now()
	f.targets = map[follower]target{}
	ws := p.followers()
	if f.hit != nil {
		ws = f.hit // a watcher fault is measured on the watchers it hit
	}
	for _, w := range ws {
		if subject, _, known := w.mark(); subject != nil {
			f.targets[w] = target{subject, known}
		}
	}
	p.rec.mu.Lock()
	p.rec.pending = append(p.rec.pending, f)
	p.rec.mu.Unlock()
}

// watchRecovery checks pending faults every 50 ms until ctx ends.
func (p *phase) watchRecovery(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.rec.mu.Lock()
			for _, f := range p.rec.pending {
				f.Recovered = -1
				p.rec.done = append(p.rec.done, f)
			}
			p.rec.pending = nil
			p.rec.mu.Unlock()
			return
		case <-t.C:
		}
		p.checkRecovery(time.Now())
	}
}

// checkRecovery drops from every pending fault's targets the watchers that are caught up, have
// moved on, or are excused, and moves the faults left with none (or past maxRecovery) to done.
func (p *phase) checkRecovery(now time.Time) {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	pending := p.rec.pending[:0]
	for _, f := range p.rec.pending {
		for w, tg := range f.targets {
			subject, have, _ := w.mark()
			if subject != tg.subject || have >= tg.seq || f.excuses(w.faults()) {
				delete(f.targets, w) // caught up, or moved on after the final event
			}
		}
		switch {
		case len(f.targets) == 0:
			f.Recovered = now.Sub(f.Start)
			p.rec.done = append(p.rec.done, f)
		case now.Sub(f.Lifted) > maxRecovery:
			f.Recovered = -1
			p.rec.done = append(p.rec.done, f)
		default:
			pending = append(pending, f)
		}
	}
	p.rec.pending = pending
}

// faultLane injects faults of kinds, one at a time, each kind in turn in a shuffled order,
// with a random gap, until ctx ends.
func (p *phase) faultLane(ctx context.Context, kinds []string, gap time.Duration, r *rand.Rand) error {
	if len(kinds) == 0 {
		return nil
	}
	var order []string
	for ctx.Err() == nil {
		if len(order) == 0 {
			order = slices.Clone(kinds)
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		kind := order[0]
		order = order[1:]
		f := &fault{Kind: kind, Start: time.Now()}
		// ctx only says whether to begin another fault: one begun runs to its end (a killed
		// node is started again, a stopped one continued) under the phase's own context.
		if err := p.inject(p.ctx, f, r); err != nil {
			if p.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fault %s: %w", kind, err)
		}
		if f.Skipped {
			p.rec.mu.Lock()
			p.rec.done = append(p.rec.done, f)
			p.rec.mu.Unlock()
			p.logf("fault %-18s at %6.1fs: skipped: %s", kind, f.Start.Sub(p.start).Seconds(), f.Detail)
			order = append(order, kind) // tried again later in this round
		} else {
			p.lift(f)
			// The next fault of this lane waits for this one's recovery (bounded), so that each
			// recovery time is the fault's own and not the sum of a chain.
			rec := "not measured"
			if d, ok := p.waitRecovered(p.ctx, f); ok {
				rec = d.Round(time.Millisecond).String()
			}
			p.logf("fault %-18s at %6.1fs: %s; recovered in %s", kind, f.Start.Sub(p.start).Seconds(), f.Detail, rec)
		}
		d := gap/2 + time.Duration(r.Int64N(int64(gap)))
		select {
		case <-ctx.Done():
		case <-time.After(d): // the fault schedule
		}
	}
	return nil
}

// waitRecovered polls until the recovery watcher is done with f, for at most maxRecovery, and
// returns its recovery time; false when it was not measured.
func (p *phase) waitRecovered(ctx context.Context, f *fault) (time.Duration, bool) {
	deadline := time.Now().Add(maxRecovery + time.Second)
	for time.Now().Before(deadline) {
		p.rec.mu.Lock()
		done, d := slices.Contains(p.rec.done, f), f.Recovered
		p.rec.mu.Unlock()
		if done {
			return d, d >= 0
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(50 * time.Millisecond): // polling the recovery watcher with a deadline
		}
	}
	return 0, false
}

// inject makes one fault happen and returns once it is lifted.
func (p *phase) inject(ctx context.Context, f *fault, r *rand.Rand) error {
	switch f.Kind {
	case FNodeKill, FSQLiteKill:
		n := p.nodes[r.IntN(len(p.nodes))]
		p.tally(ctx, n)
		p.burst.Store(4)
		// The kill falls inside the burst, while a write to the node is in flight: at the
		// checker's rates a write takes a millisecond or so, and a kill at a random moment
		// mostly caught none (0 in 5 on SQLite at 80 writes/s).
		time.Sleep(time.Duration(200+r.IntN(600)) * time.Millisecond) // the fault schedule
		base := n.endpoint()
		for wait := time.Now().Add(2 * time.Second); p.writesInFlight(base) == 0 && time.Now().Before(wait); {
			select { // polling the writers with a deadline
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Microsecond):
			}
		}
		pr := n.proc()
		pid := pr.pid()
		f.Node, f.InFlight = n.idx+1, p.writesInFlight(base)
		pr.kill()
		p.burst.Store(1)
		f.Detail = fmt.Sprintf("node %d (pid %d) killed mid-burst with %d writes in flight to it", n.idx, pid, f.InFlight)
		if p.ngx != nil {
			f.Detail += fmt.Sprintf(" (and %d through nginx, to any node)", p.writesInFlight(p.ngx.URL))
		}
		var err error
		for try := range 5 {
			if err = p.startNode(ctx, n); err == nil {
				break
			}
			time.Sleep(time.Duration(200*(try+1)) * time.Millisecond) // the port may take a moment to free
		}
		if err != nil {
			return fmt.Errorf("restart node %d: %w", n.idx, err)
		}
		f.Detail += fmt.Sprintf(", back as pid %d after %s", n.proc().pid(), time.Since(f.Start).Round(time.Millisecond))
	case FNodeStop:
		n := p.nodes[r.IntN(len(p.nodes))]
		pr := n.proc()
		// Its span is every node's (f.Node stays 0), not this one's alone: a node stopped in the
		// middle of a transaction holds its orders' rows and its parties' log heads until
		// PostgreSQL ends its session (postgres.DefaultIdleInTransactionTimeout, 5 s), and the
		// other nodes' writes to them wait until then, their events with them (the long run of
		// 2026-12-04 saw them 4.97 s late on the other nodes). A node killed closes its
		// connections, and PostgreSQL lets its locks go at once: its span is its own.
		d := time.Duration(2000+r.IntN(5000)) * time.Millisecond
		if err := pr.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(d): // how long the node stays stopped
		}
		if err := pr.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			return err
		}
		f.Detail = fmt.Sprintf("node %d (pid %d) stopped for %s", n.idx, pr.pid(), d)
	case FListen:
		// Every node's listener may be between connections (reconnecting after an earlier
		// fault, a node restarting), so a sweep that ends none is tried again for a while; a
		// fault that never ended one did not happen.
		deadline := time.Now().Add(listenWindow)
		for {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			n, err := p.pg.terminateListeners(cctx)
			cancel()
			if err != nil {
				return err
			}
			if n > 0 {
				f.Detail = fmt.Sprintf("%d LISTEN connections terminated", n)
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				f.Skipped = true
				f.Detail = fmt.Sprintf("no LISTEN connection to terminate within %s", listenWindow)
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond): // sweeping again, within listenWindow
			}
		}
	case FPGRestart:
		// Alternating, so that even a short run has PostgreSQL recover from a crash.
		crash := p.pgRestarts.Add(1)%2 == 1
		if err := p.pg.restart(ctx, crash); err != nil {
			return err
		}
		mode := "fast"
		if crash {
			mode = "immediate"
		}
		f.Detail = fmt.Sprintf("PostgreSQL restarted (%s shutdown), down %s", mode, time.Since(f.Start).Round(time.Millisecond))
	case FWatchPause:
		d := time.Duration(2000+r.IntN(6000)) * time.Millisecond
		until := time.Now().Add(d).UnixNano()
		ws := p.someWatchers(r, 10)
		f.hit = ws
		for _, w := range ws {
			w.faults().hit(f.Start, until)
			w.faults().pauseUntil.Store(until)
		}
		select {
		case <-ctx.Done():
		case <-time.After(d): // how long they stop reading
		}
		f.Detail = fmt.Sprintf("%d watchers stopped reading for %s", len(ws), d)
	case FWatchVanish:
		ws := p.someWatchers(r, 5)
		f.hit = ws
		for _, w := range ws {
			w.faults().hit(f.Start, math.MaxInt64) // until it is back
			w.faults().vanish.Store(true)
		}
		// Lifted once every one of them is back (each notices at its next read, within a
		// heartbeat, and returns after a pause of its own); bounded.
		deadline := time.Now().Add(15 * time.Second)
		for slices.ContainsFunc(ws, func(w follower) bool { return w.faults().vanish.Load() }) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond) // polling the watchers with a deadline
		}
		f.Detail = fmt.Sprintf("%d watchers vanished without closing, back after %s", len(ws), time.Since(f.Start).Round(time.Millisecond))
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	return nil
}

// someWatchers returns about pct percent of the order watchers and of the party watchers, at
// least one of each kind there is, so that every watcher fault reaches both kinds. Party
// watchers are taken among those whose stream has opened, when any has: a fault before the
// opening would test nothing a later resume does not.
func (p *phase) someWatchers(r *rand.Rand, pct int) []follower {
	parties := asFollowers(p.partyWatchers)
	if opened := slices.DeleteFunc(slices.Clone(parties), func(w follower) bool {
		subject, _, _ := w.mark()
		return subject == nil
	}); len(opened) > 0 {
		parties = opened
	}
	var out []follower
	for _, group := range [][]follower{asFollowers(p.watchers), parties} {
		if len(group) == 0 {
			continue
		}
		n := max(1, len(group)*pct/100)
		for _, j := range r.Perm(len(group))[:n] {
			out = append(out, group[j])
		}
	}
	return out
}

func asFollowers[W follower](ws []W) []follower {
	out := make([]follower, len(ws))
	for i, w := range ws {
		out[i] = w
	}
	return out
}

// followers returns every watcher of both kinds.
func (p *phase) followers() []follower {
	return append(asFollowers(p.watchers), asFollowers(p.partyWatchers)...)
}

// pauseBeforeReconnect waits the delay before a watcher connects again, as an EventSource
// would; a vanished watcher comes back a while later, like a phone back in coverage, and the
// fault is then lifted for it. It returns false when ctx ended first.
func (f *watchFaults) pauseBeforeReconnect(ctx context.Context, r *rand.Rand) bool {
	d := time.Duration(20+r.IntN(200)) * time.Millisecond
	vanished := f.vanish.Load()
	if vanished {
		d = time.Duration(500+r.IntN(2000)) * time.Millisecond
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d): // reconnect delay
	}
	if vanished {
		if h := f.lastHit.Load(); h != nil {
			f.lastHit.Store(&hitSpan{h.from, time.Now().UnixNano()})
		}
		f.vanish.Store(false)
	}
	return true
}
