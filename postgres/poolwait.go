package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errPoolExhausted is a read, a batch or a ping that ran out of its time waiting for a connection
// of the node's pool, every one of which was in use: the node is busier than its pool, not the
// database silent. It was reported as the database "not answering": the node was marked away
// (ordercast_store_up 0, an outage logged) and on-call went looking at a PostgreSQL that answered
// every query in milliseconds.
var errPoolExhausted = errors.New("postgres: every connection of the node's pool is in use (pool_max_conns)")

// poolWait notes, for one read, batch attempt or ping, whether its wait for a connection ended
// with the time out and every connection of the pool in use (poolTracer). It rides in the
// context the operation runs under (watchPool).
type poolWait struct{ exhausted atomic.Bool }

type poolWaitKey struct{}

// watchPool returns ctx carrying a poolWait for what runs under it, and the poolWait.
func watchPool(ctx context.Context) (context.Context, *poolWait) {
	w := &poolWait{}
	return context.WithValue(ctx, poolWaitKey{}, w), w
}

// poolExhausted replaces err, which ended an operation whose pool wait is w, with
// errPoolExhausted when it ran out of time waiting for a connection of a full pool, keeping its
// words but not what it wraps: it is no deadline of the database's (errNotAnswering), which
// would mark the store away and shorten the next operations' time (leash). Any other err is as
// it was.
func poolExhausted(w *poolWait, err error) error {
	if err != nil && w.exhausted.Load() {
		return fmt.Errorf("%w: %v", errPoolExhausted, err)
	}
	return err
}

// poolTracer is the pool's acquire tracer: an acquire that failed for its context's time while
// every connection of the pool was in use waited for one in vain (an acquire that failed with a
// free slot was making or checking a connection, which the database did not answer). The pool
// finds it on its connections' tracer, which must trace queries too: it does nothing there.
type poolTracer struct{}

func (poolTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (poolTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (poolTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

func (poolTracer) TraceAcquireEnd(ctx context.Context, pool *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	if data.Err == nil || !errors.Is(data.Err, context.DeadlineExceeded) {
		return
	}
	w, ok := ctx.Value(poolWaitKey{}).(*poolWait)
	if !ok {
		return
	}
	if st := pool.Stat(); st.AcquiredConns() >= st.MaxConns() {
		w.exhausted.Store(true)
	}
}
