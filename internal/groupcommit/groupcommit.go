// Package groupcommit is the writer both stores share: one goroutine that takes every write
// queued while the last batch committed, up to a bound, and hands them to the store to commit in
// one transaction. A lone write is taken at once: nothing ever waits on a timer for company.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
)

// DefaultMaxBatch bounds how many writes one transaction carries.
const DefaultMaxBatch = 256

// ErrClosed answers writes still queued when the writer closes.
var ErrClosed = ordercast.Errorf(ordercast.EUnavailable, "store is closing")

// CommitFunc commits one batch in one transaction and returns one result per write, in order.
// It publishes the batch's events after the commit, before returning. An error fails every
// write of the batch.
type CommitFunc func(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error)

// Writer queues writes and commits them in batches on its own goroutine.
type Writer struct {
	commit   CommitFunc
	upkeep   func() // after each batch's answers; may be nil
	maxBatch int

	mu        sync.Mutex
	queue     []*request
	closed    bool
	holdFor   int        // while > 0, no batch is taken until this many writes are queued
	sinceHold int        // writes queued since the last Hold
	queued    *sync.Cond // broadcast on every enqueue, for tests waiting on the queue
	wake      chan struct{}
	requests  sync.Pool // of *request; see newRequest

	// The batches committed, and the writes they carried: their ratio is how much the writer
	// batches, which /metrics shows.
	batches, writes atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	// stop is closed by Close, and stopped once the writer has stopped; closeGrace is how long
	// Close lets a batch in progress finish before it cancels the batch's context.
	stop, stopped chan struct{}
	closeGrace    time.Duration
	wg            sync.WaitGroup
}

// closeGrace is how long Close waits for the batch in progress before it cancels it: a commit
// that has reached the database answers its callers with what happened, not with "closed" for a
// write that may have committed; one stuck on a database that is away is cut after it.
const closeGrace = 5 * time.Second

type request struct {
	ctx   context.Context
	write ordercast.Write
	done  chan ordercast.WriteResult // capacity 1: the writer never blocks answering
	taken bool                       // in a batch; guarded by Writer.mu
}

// Start starts a writer that commits with commit, at most maxBatch writes at a time (zero means
// DefaultMaxBatch). upkeep, when not nil, runs on the writer's goroutine after each batch's
// writes are answered and before the next batch is taken: the store's own work between commits
// that no write should wait for (SQLite's bound on its WAL). Close stops it.
func Start(commit CommitFunc, maxBatch int, upkeep func()) *Writer {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	w := &Writer{commit: commit, upkeep: upkeep, maxBatch: maxBatch, wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}),
		closeGrace: closeGrace}
	w.queued = sync.NewCond(&w.mu)
	w.requests.New = newRequest
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.run()
	}()
	return w
}

// Do queues one write and waits for its result. When ctx ends while the write is still queued,
// it leaves the queue and Do returns ctx's error: nothing was written. Once its batch is taken
// Do waits for the batch's outcome, so a caller never hears "cancelled" of a write that commits.
func (w *Writer) Do(ctx context.Context, wr ordercast.Write) ordercast.WriteResult {
	req := w.newRequest(ctx, wr)
	if !w.enqueue(req) {
		w.release(req)
		return ordercast.WriteResult{Err: ErrClosed}
	}
	return w.wait(ctx, req)
}

// DoMany queues writes together, in their order, and waits for every result: they join the
// same batch as far as the batch bound allows, and a later write of an order sees the earlier
// ones. Each write is answered as Do answers it: once a batch holding some of them fails as a
// whole, the rest, queued behind it, are answered with its error and not tried (commitBatch), so
// a later write of an order is never applied without an earlier one.
func (w *Writer) DoMany(ctx context.Context, wrs []ordercast.Write) []ordercast.WriteResult {
	reqs := make([]*request, len(wrs))
	for i, wr := range wrs {
		reqs[i] = w.newRequest(ctx, wr)
	}
	results := make([]ordercast.WriteResult, len(wrs))
	if !w.enqueue(reqs...) {
		for i, req := range reqs {
			w.release(req)
			results[i] = ordercast.WriteResult{Err: ErrClosed}
		}
		return results
	}
	for i, req := range reqs {
		results[i] = w.wait(ctx, req)
	}
	return results
}

func (w *Writer) newRequest(ctx context.Context, wr ordercast.Write) *request {
	req := w.requests.Get().(*request)
	req.ctx, req.write, req.taken = ctx, wr, false
	return req
}

// enqueue queues reqs in order and wakes the writer; false, with nothing queued, once the
// writer is closed.
func (w *Writer) enqueue(reqs ...*request) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, reqs...)
	w.sinceHold += len(reqs)
	w.queued.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already woken
	}
	return true
}

// wait waits for a queued request's answer, or takes it out of the queue if ctx ends first, and
// releases it.
func (w *Writer) wait(ctx context.Context, req *request) ordercast.WriteResult {
	select {
	case res := <-req.done:
		w.release(req)
		return res
	case <-ctx.Done():
	}
	w.mu.Lock()
	if !req.taken {
		if i := slices.Index(w.queue, req); i >= 0 {
			w.queue = slices.Delete(w.queue, i, i+1)
			w.mu.Unlock()
			id := req.write.OrderID()
			w.release(req) // out of the queue, never answered: no one else holds it
			return ordercast.WriteResult{Err: fmt.Errorf("write to %s: %w", id, ctx.Err())}
		}
	}
	w.mu.Unlock()
	res := <-req.done // taken, or answered by Close
	w.release(req)
	return res
}

// CreateOrder, AppendStatus and AssignCourier are each store's writes: the input is checked
// before it joins a batch, so a bad one is refused without waiting for a commit; the domain
// judges the rest against the order as the batch's earlier writes left it (ordercast.Batch).

// CreateOrder creates an order, or finds the same one created before (changed false).
func (w *Writer) CreateOrder(ctx context.Context, n ordercast.NewOrder) (ordercast.Order, bool, error) {
	n, err := n.Normalize()
	if err != nil {
		return ordercast.Order{}, false, err
	}
	res := w.Do(ctx, ordercast.Write{Create: &n})
	return res.Order, res.Changed, res.Err
}

// AppendStatus moves an order to a new status, as one event.
func (w *Writer) AppendStatus(ctx context.Context, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	if err := c.Validate(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	res := w.Do(ctx, ordercast.Write{Change: &c})
	return res.Order, res.Event, res.Changed, res.Err
}

// AppendStatuses applies status changes in their order, together (DoMany): one result per
// change, a change that is not valid refused without joining a batch.
func (w *Writer) AppendStatuses(ctx context.Context, cs []ordercast.StatusChange) []ordercast.WriteResult {
	results := make([]ordercast.WriteResult, len(cs))
	writes := make([]ordercast.Write, 0, len(cs))
	at := make([]int, 0, len(cs)) // at[j] is the change writes[j] came from
	for i := range cs {
		c := cs[i] // the batch keeps a pointer: not into the caller's slice
		if err := c.Validate(); err != nil {
			results[i].Err = err
			continue
		}
		writes, at = append(writes, ordercast.Write{Change: &c}), append(at, i)
	}
	for j, res := range w.DoMany(ctx, writes) {
		results[at[j]] = res
	}
	return results
}

// AssignCourier assigns or unassigns an order's courier, as an event of its own.
func (w *Writer) AssignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	if err := c.Validate(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	res := w.Do(ctx, ordercast.Write{Courier: &c})
	return res.Order, res.Event, res.Changed, res.Err
}

// newRequest is the New of a Writer's pool of requests. They are reused: a request and its
// answer channel were two allocations of every write, the channel's buffer the size of a whole
// result. A request is released only once its answer has been received (or it left the queue
// unanswered), when nothing else refers to it: sending the answer is the writer's last use of it.
// Each Writer has its own pool, so that its requests are made where it runs (a test's synctest
// bubble waits only on channels made inside it).
func newRequest() any {
	return &request{done: make(chan ordercast.WriteResult, 1)}
}

func (w *Writer) release(req *request) {
	req.ctx, req.write = nil, ordercast.Write{}
	w.requests.Put(req)
}

// Counts returns how many batches the writer has committed, and how many writes they carried
// (a write its batch refused by the domain's rules counts: it was judged in a committed batch).
// A nil Writer, a store's before Open, has committed none.
func (w *Writer) Counts() (batches, writes int64) {
	if w == nil {
		return 0, 0
	}
	return w.batches.Load(), w.writes.Load()
}

// Close stops the writer after the batch in progress (cancelling it if it takes longer than
// closeGrace) and answers every write still queued with ErrClosed. Writes after Close are
// refused at once. A second Close waits for the first.
func (w *Writer) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return
	}
	w.closed = true
	rest := w.queue
	w.queue = nil
	w.queued.Broadcast()
	w.mu.Unlock()
	for _, req := range rest { // now: they need not wait for the batch in progress
		req.done <- ordercast.WriteResult{Err: ErrClosed}
	}
	close(w.stop)
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(w.closeGrace)
	select {
	case <-done:
	case <-grace.C:
		w.cancel()
		<-done
	}
	grace.Stop()
	w.cancel()
	close(w.stopped)
}

// Hold makes the writer take no batch until n writes are queued, then take them together (n
// must not exceed the batch bound). Tests use it to put chosen writes in one batch without
// sleeping; WaitQueued tells them when each write has joined the queue, so they know its place.
func (w *Writer) Hold(n int) {
	w.mu.Lock()
	w.holdFor, w.sinceHold = n, 0
	w.mu.Unlock()
}

// WaitQueued blocks until n writes have been queued since Hold (or the writer closes); the
// writer may already have taken them.
func (w *Writer) WaitQueued(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.sinceHold < n && !w.closed {
		w.queued.Wait()
	}
}

func (w *Writer) run() {
	for {
		batch := w.take()
		if batch == nil {
			select {
			case <-w.wake:
				continue
			case <-w.stop:
				return
			}
		}
		w.commitBatch(batch)
		if w.upkeep != nil {
			w.upkeep()
		}
	}
}

// take removes up to maxBatch writes from the queue, dropping those whose caller has gone.
func (w *Writer) take() []*request {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || len(w.queue) == 0 || len(w.queue) < w.holdFor {
		return nil
	}
	w.holdFor = 0
	n := min(len(w.queue), w.maxBatch)
	batch := make([]*request, 0, n)
	for _, req := range w.queue[:n] {
		req.taken = true
		if err := req.ctx.Err(); err != nil {
			req.done <- ordercast.WriteResult{Err: fmt.Errorf("write to %s: %w", req.write.OrderID(), err)}
			continue
		}
		batch = append(batch, req)
	}
	// Shift rather than reslice, so the backing array does not grow without bound.
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return batch
}

func (w *Writer) commitBatch(batch []*request) {
	if len(batch) == 0 {
		return
	}
	writes := make([]ordercast.Write, len(batch))
	for i, req := range batch {
		writes[i] = req.write
	}
	results, err := w.commit(w.ctx, writes)
	if err == nil && len(results) != len(batch) {
		err = fmt.Errorf("groupcommit: %d results for %d writes", len(results), len(batch))
	}
	if err == nil {
		w.batches.Add(1)
		w.writes.Add(int64(len(batch)))
	} else {
		if errors.Is(err, context.Canceled) && w.ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		err = fmt.Errorf("commit batch of %d writes: %w", len(batch), err)
		// Before the batch is answered: a caller that hears of the failure and writes again at
		// once queues a write after it, which is tried.
		w.failQueued(err)
	}
	for i, req := range batch {
		if err != nil {
			req.done <- ordercast.WriteResult{Err: err}
			continue
		}
		req.done <- results[i]
	}
}

// failQueued answers every write queued when a batch failed as a whole with that batch's error,
// untried, whatever the failure. Most often the store is away (a database that stopped answering
// for a whole attempt, a lock held past SQLite's busy timeout): each batch behind it would wait
// out an attempt of its own, and a write queued behind two waited twice the bound in which
// docs/api.md promises a 503. Any failure: a request of many writes (DoMany) must not have its
// later writes applied without the earlier ones, judged against an order that lacks them, and
// the queue does not say which writes are such later ones; so a failure that is no outage (a
// bug's, answered 500) fails the writes queued behind it too. Writes queued after the failure
// was answered are tried as ever.
func (w *Writer) failQueued(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, req := range w.queue {
		req.taken = true
		req.done <- ordercast.WriteResult{Err: fmt.Errorf("write to %s not tried, as the batch before it failed: %w", req.write.OrderID(), err)}
	}
	clear(w.queue)
	w.queue = w.queue[:0]
}
