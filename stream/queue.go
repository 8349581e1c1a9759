package stream

import (
	"context"
	"sync"
)

// endQueue finishes held streams' ends (closed) in order, on one goroutine of the holder. The
// end runs unsubscribing, the stream limits' release and the server's end callback, which
// writes the request's log line: each may wait (a log write to a full pipe, the hub's lock under
// a publish, the limits' lock), and wherever the connection closed must not wait with it. That is
// the poller's loop when a client leaves, whose wait would stall the I/O of every held stream (a
// slow client's queue unsent until it counts as stuck); a publisher's goroutine delivering a
// terminal event, whose wait would hold up the writer's next commit; or the sweeper, whose wait
// would hold up every stream's heartbeat. The workers deliver events and are not used: ends
// that wait would take them all. What waits here is a small closure per stream ended.
type endQueue struct {
	mu      sync.Mutex
	ends    []func()
	stopped bool          // the holder is closing: an end pushed from now on runs at once
	wake    chan struct{} // capacity 1: "ends may be waiting"
}

func (q *endQueue) push(end func()) {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		// The engine is closing and the ender may be gone; the poller's loop has ended, so
		// whoever closed the connection (a worker, a publisher) can wait this once.
		end()
		return
	}
	q.ends = append(q.ends, end)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run finishes the ends pushed, in order, until stop and the queue is empty.
func (q *endQueue) run() {
	for {
		q.mu.Lock()
		if len(q.ends) == 0 {
			stopped := q.stopped
			q.mu.Unlock()
			if stopped {
				return
			}
			<-q.wake
			continue
		}
		end := q.ends[0]
		q.ends[0] = nil
		q.ends = q.ends[1:]
		q.mu.Unlock()
		end()
	}
}

// stop lets run return once the ends queued are finished.
func (q *endQueue) stop() {
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// workQueue is where the hub's publishers put the streams to deliver to, without ever blocking;
// workers pop. It has two unbounded FIFO lanes, and the lane of streams with status events
// waiting goes first: positions come in floods (a courier platform's thousands a second, or a
// batch of hundreds at once), and a status event must not wait behind them for a worker.
type workQueue struct {
	mu             sync.Mutex
	status, others []*heldStream
	wake           chan struct{} // capacity 1: "items may be waiting"
}

func (q *workQueue) push(hs *heldStream, status bool) {
	q.mu.Lock()
	if status {
		q.status = append(q.status, hs)
	} else {
		q.others = append(q.others, hs)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next stream, waiting for one; nil when ctx ends.
func (q *workQueue) pop(ctx context.Context) *heldStream {
	for {
		q.mu.Lock()
		lane := &q.status
		if len(*lane) == 0 {
			lane = &q.others
		}
		if len(*lane) > 0 {
			hs := (*lane)[0]
			(*lane)[0] = nil
			*lane = (*lane)[1:]
			more := len(q.status)+len(q.others) > 0
			q.mu.Unlock()
			if more {
				select { // pass the baton: another worker takes the next one
				case q.wake <- struct{}{}:
				default:
				}
			}
			return hs
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil
		}
	}
}
