package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// Bounds on the writers that commit the load.
const (
	// minWriters and maxWriters bound the writes in flight. Enough of them keep the writer off
	// the list of bottlenecks at 10,000 changes/s even when a write takes 50 ms; few enough that
	// they never crowd the server with connections.
	minWriters = 32
	maxWriters = 512
	// writeTimeout bounds one write; it also bounds how long the next change of the same order
	// waits for it.
	writeTimeout = 30 * time.Second
	// heldShare is the share of the offered rate the writer must achieve for the rate to count
	// as reached.
	heldShare = 0.98
	// lateBound is how late against its due time a write may start before the report warns that
	// the writer fell behind its schedule: a wait that long is the size of the p99 the targets
	// are stated in, and start→recv leaves it out.
	lateBound = 10 * time.Millisecond
)

// defaultWriters is the writes in flight for a rate: a twentieth of a second's worth.
func defaultWriters(rate float64) int {
	return int(min(maxWriters, max(minWriters, math.Ceil(rate/20))))
}

// driver commits status changes on a schedule, round-robin over the orders, each order moving
// one step along its cycle (statusCycle, or statusCycleWithLocation) per round. Its state lasts across loads, so --find-max runs its
// steps on the same orders and watchers.
//
// Every write carries expected_version, and the next change of an order waits for the previous
// one's answer, so the seq each write makes is known before it is sent: its due time and start
// are recorded under that key (WriteStarts) and a watcher that reads the event before the answer
// arrives is still matched with it.
type driver struct {
	urls    []string
	prefix  string
	orders  int
	writers int
	base    []int64 // each order's version when created
	cycle   []ordercast.Status
	starts  *WriteStarts
	next    int            // the next change to send, counted over all loads
	changes []atomic.Int32 // changes committed per order
	// conns[w][n] is writer w's keep-alive connection to node n, kept across loads: a load
	// that opened a connection per write would measure the TCP handshake and run out of ports.
	// Writer w sends to node w mod nodes, or with --writes-by-order order i's changes to node
	// i mod nodes.
	conns   wirePool
	byOrder bool
	// batch above 1 sends the changes due in each tick together, through POST
	// /v1/status-changes in requests of up to batch (writeBatch).
	batch int

	mu     sync.Mutex
	turn   *sync.Cond
	done   []int32 // per order: changes finished either way; change s waits until done == s
	failed []bool  // per order: a change failed, so its version is unknown and the rest are skipped
	err    error   // the first write error, for the report
}

func newDriver(ctx context.Context, urls []string, token, prefix string, base []int64, cycle []ordercast.Status, writers int) (*driver, error) {
	d := &driver{
		urls: urls, prefix: prefix, orders: len(base), writers: max(1, min(writers, len(base))),
		base: base, cycle: cycle, starts: NewWriteStarts(base, len(cycle)), changes: make([]atomic.Int32, len(base)),
		done: make([]int32, len(base)), failed: make([]bool, len(base)),
	}
	d.turn = sync.NewCond(&d.mu)
	var err error
	if d.conns, err = newWirePool(ctx, d.writers, urls, token, writeTimeout); err != nil {
		return nil, err
	}
	return d, nil
}

// writeByOrder sends every change of an order to one node.
func (d *driver) writeByOrder() { d.byOrder = true }

// batchWrites sends the changes due in each tick in requests of up to n (n above 1), as an
// integration relaying many changes does.
func (d *driver) batchWrites(n int) { d.batch = n }

// batchTick is how long the driver gathers changes for its requests at rate: as long as a full
// request takes on the schedule, between minBatchTick and maxBatchTick as for positions.
func (d *driver) batchTick(rate float64) time.Duration {
	return min(max(time.Duration(float64(d.batch)/rate*float64(time.Second)), minBatchTick), maxBatchTick)
}

// writeJob is what one writer sends in one request: change ks[0] alone, or with batching the
// changes ks (at most one of each order) to node. due is when the schedule meant it to be sent:
// change k's k/rate, or with batching the end of the tick that gathered the changes.
type writeJob struct {
	ks   []int
	node int
	due  time.Time
}

// close drops the writers' connections; no load may be running.
func (d *driver) close() { d.conns.close() }

// remaining is how many changes the orders can still take.
func (d *driver) remaining() int { return d.orders*len(d.cycle) - d.next }

// load is what one paced run of the driver did.
type load struct {
	offered   float64
	planned   int // changes scheduled
	unsent    int // scheduled but not sent before the hard stop
	capped    bool
	committed int64
	errors    int64
	achieved  float64
	// behind is how late the last request started against its due time; maxLate the most any
	// request did, which a stall the writer caught up with by the end shows and behind does not.
	behind  time.Duration
	maxLate time.Duration
	// first is the first change of the load, counted over all loads: the load's changes are
	// first up to the driver's next.
	first int
}

// run sends rate×dur changes on schedule (change k due at k/rate) from the bounded pool of
// writers. A slow server makes the writers fall behind the schedule, which the load reports; the
// schedule never runs past twice its length plus five seconds.
func (d *driver) run(ctx context.Context, rate float64, dur time.Duration) load {
	l := load{offered: rate, planned: int(math.Round(rate * dur.Seconds()))}
	if rem := d.remaining(); l.planned > rem {
		l.planned, l.capped = rem, true
	}
	first := d.next
	l.first = first
	var committed, errs atomic.Int64
	var p pace
	jobs := make(chan writeJob, d.writers)
	var wg sync.WaitGroup
	for w := range d.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				if d.batch > 1 {
					n := d.writeBatch(d.conns[w][job.node%len(d.conns[w])], job, &p)
					committed.Add(int64(n))
					errs.Add(int64(len(job.ks) - n))
				} else if d.write(d.conns[w], w, job, &p) {
					committed.Add(1)
				} else {
					errs.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	due := func(k int) time.Time { return start.Add(time.Duration(float64(k) / rate * float64(time.Second))) }
	hardStop := due(l.planned).Add(due(l.planned).Sub(start) + 5*time.Second)
	sent := 0
	var lastDue time.Time // of the last request queued
	// Blocks while every writer is busy: that is the writer falling behind the schedule. The
	// wait shows in the lateness of the requests, each measured against its own due time.
	queue := func(job writeJob) bool {
		select {
		case jobs <- job:
			lastDue = job.due
			return true
		case <-ctx.Done():
			return false
		}
	}
	if d.batch > 1 {
		// Each tick's changes go out at its end, cut into requests of up to d.batch, each
		// holding an order once (its next change waits for the answer), spread over the nodes.
		tick := d.batchTick(rate)
		requests := 0
	ticks:
		for t := 1; sent < l.planned && time.Now().Before(hardStop); t++ {
			end := start.Add(time.Duration(t) * tick)
			if sleepUntil(ctx, end) != nil {
				break
			}
			upTo := min(l.planned, int(math.Ceil(end.Sub(start).Seconds()*rate)))
			for sent < upTo {
				ks, seen := make([]int, 0, min(d.batch, upTo-sent)), make(map[int]bool)
				for k := sent; k < upTo && len(ks) < d.batch && !seen[(first+k)%d.orders]; k++ {
					seen[(first+k)%d.orders] = true
					ks = append(ks, first+k)
				}
				requests++
				if !queue(writeJob{ks: ks, node: requests, due: end}) {
					break ticks
				}
				sent += len(ks) // counted once queued: a change never queued is unsent
			}
		}
	} else {
		for ; sent < l.planned && time.Now().Before(hardStop); sent++ {
			if sleepUntil(ctx, due(sent)) != nil {
				break
			}
			if !queue(writeJob{ks: []int{first + sent}, due: due(sent)}) {
				break
			}
		}
	}
	close(jobs)
	wg.Wait()
	d.next += sent
	l.unsent = l.planned - sent
	l.committed, l.errors = committed.Load(), errs.Load()
	if sent > 0 {
		t := p.timing(start, lastDue, time.Duration(float64(time.Second)/rate))
		l.behind, l.maxLate = time.Duration(t.Behind), time.Duration(t.MaxLate)
		l.achieved = t.Rate(l.committed)
	}
	return l
}

// write sends the job's change, after the order's previous change has been answered, and
// reports whether it committed.
func (d *driver) write(conns []*wireConn, w int, job writeJob, p *pace) bool {
	k := job.ks[0]
	i, step := k%d.orders, k/d.orders
	node := w
	if d.byOrder {
		node = i
	}
	d.mu.Lock()
	// Bounded: the previous change of this order was taken off the queue earlier and its write
	// ends within writeTimeout.
	for d.done[i] < int32(step) {
		d.turn.Wait()
	}
	skip := d.failed[i]
	d.mu.Unlock()
	var err error
	if !skip {
		err = d.send(conns[node%len(conns)], i, step, job.due, p)
	}
	ok := !skip && err == nil
	d.mu.Lock()
	d.done[i] = int32(step) + 1
	d.failed[i] = d.failed[i] || !ok
	if err != nil && d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
	d.turn.Broadcast()
	return ok
}

func (d *driver) send(c *wireConn, i, step int, due time.Time, p *pace) error {
	version := d.version(change{i, step})
	id := OrderID(d.prefix, i)
	body, err := json.Marshal(api.SetStatusRequest{Status: d.cycle[step], ExpectedVersion: &version})
	if err != nil {
		return fmt.Errorf("set status of %s: %w", id, err)
	}
	start := time.Now()
	d.starts.Record(i, version+1, due, start)
	p.started(due, start)
	code, answer, err := c.post(api.StatusPath(id), body)
	if err != nil {
		return fmt.Errorf("set status of %s: %w", id, err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("set status of %s at version %d: answered %d: %s", id, version, code, answerText(answer))
	}
	// Only the seq is read: the answer's whole order and event would cost the load more than
	// the rest of the exchange.
	var res struct {
		Event struct {
			Seq int64 `json:"seq"`
		} `json:"event"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return fmt.Errorf("set status of %s: decode answer: %w", id, err)
	}
	if res.Event.Seq != version+1 {
		return fmt.Errorf("set status of %s at version %d: answered seq %d, want %d", id, version, res.Event.Seq, version+1)
	}
	p.answered(time.Now())
	d.changes[i].Add(1)
	return nil
}

// writeBatch sends the job's changes (each of another order) in one POST /v1/status-changes,
// once each order's previous change has been answered, and returns how many committed. A
// change's start is the request's, and its due time the end of its tick: the time it waited in
// its tick is the integration's, not the server's.
func (d *driver) writeBatch(c *wireConn, job writeJob, p *pace) int {
	ks := job.ks
	todo := make([]change, 0, len(ks))
	d.mu.Lock()
	for _, k := range ks {
		i, step := k%d.orders, k/d.orders
		for d.done[i] < int32(step) {
			d.turn.Wait()
		}
		if !d.failed[i] {
			todo = append(todo, change{i, step})
		}
	}
	d.mu.Unlock()
	ok := make([]bool, len(todo))
	var err error
	if len(todo) > 0 {
		err = d.sendBatch(c, todo, ok, job.due, p)
	}
	committed := 0
	d.mu.Lock()
	for _, k := range ks {
		i := k % d.orders
		d.done[i] = int32(k/d.orders) + 1
	}
	for j, ch := range todo {
		if ok[j] {
			committed++
			continue
		}
		d.failed[ch.i] = true
	}
	if err != nil && d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
	d.turn.Broadcast()
	return committed
}

// changeOf returns which change, counted over all loads, made seq of order: ok is false for a
// seq no change of the driver makes.
func (d *driver) changeOf(order int, seq int64) (k int, ok bool) {
	if order < 0 || order >= d.orders {
		return 0, false
	}
	step := seq - d.base[order] - 1
	if step < 0 || step >= int64(len(d.cycle)) {
		return 0, false
	}
	return int(step)*d.orders + order, true
}

// change is one change of a batched request: order i's change step.
type change struct{ i, step int }

// version is the version the order is at before ch, which ch names as expected_version.
func (d *driver) version(ch change) int64 { return d.base[ch.i] + int64(ch.step) }

// sendBatch posts the changes todo in one request and marks ok[j] for each change answered with
// the seq it must make.
func (d *driver) sendBatch(c *wireConn, todo []change, ok []bool, due time.Time, p *pace) error {
	req := api.SetStatusesRequest{Changes: make([]api.OrderStatusChange, len(todo))}
	for j, ch := range todo {
		version := d.version(ch)
		req.Changes[j] = api.OrderStatusChange{OrderID: OrderID(d.prefix, ch.i),
			SetStatusRequest: api.SetStatusRequest{Status: d.cycle[ch.step], ExpectedVersion: &version}}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("set status of %d orders: %w", len(ok), err)
	}
	start := time.Now()
	for _, ch := range todo {
		d.starts.Record(ch.i, d.version(ch)+1, due, start)
	}
	p.started(due, start)
	code, answer, err := c.post(api.PathStatusChanges, body)
	if err != nil {
		return fmt.Errorf("set status of %d orders: %w", len(ok), err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("set status of %d orders: answered %d: %s", len(ok), code, answerText(answer))
	}
	// Only each result's seq and error are read.
	var res struct {
		Results []struct {
			Event *struct {
				Seq int64 `json:"seq"`
			} `json:"event"`
			Error *api.ErrorDetail `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return fmt.Errorf("set status of %d orders: decode answer: %w", len(ok), err)
	}
	if len(res.Results) != len(ok) {
		return fmt.Errorf("set status of %d orders: %d results", len(ok), len(res.Results))
	}
	var first error
	done := time.Now()
	for j, r := range res.Results {
		i, version := todo[j].i, d.version(todo[j])
		switch {
		case r.Error != nil:
			if first == nil {
				first = fmt.Errorf("set status of %s at version %d: %s: %s", OrderID(d.prefix, i), version, r.Error.Code, r.Error.Message)
			}
		case r.Event == nil || r.Event.Seq != version+1:
			if first == nil {
				first = fmt.Errorf("set status of %s at version %d: answered another seq, want %d", OrderID(d.prefix, i), version, version+1)
			}
		default:
			ok[j] = true
			p.answered(done)
			d.changes[i].Add(1)
		}
	}
	return first
}

// answerText is an answer's body for an error message, cut short.
func answerText(b []byte) string {
	const most = 200
	if len(b) > most {
		return string(b[:most]) + "…"
	}
	return string(b)
}

// firstError returns the first write that failed, if any.
func (d *driver) firstError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// expected is the deliveries the committed changes owe: each change once to each watcher of its
// order (watcher g watches order g/perOrder).
func (d *driver) expected(watchers, perOrder int) int64 {
	var n int64
	for i := range d.changes {
		w := min(perOrder, watchers-i*perOrder)
		if w > 0 {
			n += int64(d.changes[i].Load()) * int64(w)
		}
	}
	return n
}
