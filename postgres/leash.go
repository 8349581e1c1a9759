package postgres

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// leash shortens the wait for a database that has stopped answering. Each read and each batch
// waits for the database up to its bound (ReadTimeout, BatchTimeout: 10 s), which is what it
// takes to tell a silent database from a slow one. Once an attempt has run out of that time and
// none has been answered since, the node knows the database is silent: every request still
// waited its full 10 s for the same 503, and a page, a dispatcher or a load balancer behind
// them waited with it. While the leash is on, one attempt at a time (the scout) is given its
// whole bound, so that a database that is only slow is found answering and the leash comes off;
// every other attempt gets NotAnsweringTimeout (1 s) and is answered 503 with Retry-After when
// that runs out. Any answer from the server (a row, or an error of its own) takes the leash off.
type leash struct {
	on    atomic.Bool // an attempt ran out of its bound, and no attempt has been answered since
	scout atomic.Bool // the attempt given its whole bound while on is out
}

// limit returns how long an attempt may wait for the database, its bound being full, and done,
// to be called with the attempt's outcome (its error as silent wraps it).
func (l *leash) limit(full, short time.Duration) (time.Duration, func(error)) {
	if !l.on.Load() || short >= full {
		return full, l.done
	}
	if l.scout.CompareAndSwap(false, true) {
		return full, func(err error) {
			l.done(err)
			l.scout.Store(false)
		}
	}
	return short, l.done
}

// done puts the leash on when err says the database did not answer in time, and takes it off
// when the database answered; a connection refused or lost, or a caller that gave up, says
// neither.
func (l *leash) done(err error) {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, errNotAnswering):
		l.on.Store(true)
	case err == nil, errors.As(err, &pgErr):
		l.on.Store(false)
	}
}
