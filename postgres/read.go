package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordercast/ordercast/internal/storehealth"
)

// read runs fn, one read of the store, within ReadTimeout (or less: see leash), and translates its failure into the
// domain's error (EUnavailable when the database is away: 503 with Retry-After, and a stream's
// store-away answer). A caller's context has no deadline of its own (a request's, a stream's):
// without the bound, a database that stops answering would hold the read, and the request, until
// TCP gives up, minutes later, and the request would end as a 500 when its client gave up.
//
// A read that lost its connection runs once more, on another (see lost), in what the first
// attempt left of ReadTimeout: it changes nothing, so running it again is always safe, and after
// a restart each connection idle in the pool is gone.
func (s *Store) read(ctx context.Context, fn func(context.Context) error) error {
	return s.health(s.readAgainOnLoss(ctx, fn), storehealth.ProvesNothing)
}

// readAgainOnLoss is read without the translation, for Ping, which judges its own success.
func (s *Store) readAgainOnLoss(ctx context.Context, fn func(context.Context) error) error {
	end := time.Now().Add(s.ReadTimeout) // the read's bound, over both its attempts
	for again := false; ; again = true {
		left := s.ReadTimeout
		if again {
			left = time.Until(end)
		}
		limit, done := s.leash.limit(left, s.NotAnsweringTimeout)
		rctx, cancel := context.WithTimeoutCause(ctx, limit, errNotAnswering)
		rctx, wait := watchPool(rctx)
		err := poolExhausted(wait, silent(ctx, rctx, fn(rctx), limit))
		cancel()
		done(err)
		if err == nil || again || ctx.Err() != nil || !s.lost(err) || time.Until(end) <= 0 {
			return err
		}
		s.Logger.Debug("postgres: a read lost its connection; reading again on another", "err", err)
	}
}

// silent wraps err, which ended an attempt run under actx (ctx bounded by limit, with the cause
// errNotAnswering), as errNotAnswering when the limit ran out, not ctx: the database is silent,
// while a caller that gave up says nothing of it.
func silent(ctx, actx context.Context, err error, limit time.Duration) error {
	if err != nil && ctx.Err() == nil && context.Cause(actx) == errNotAnswering {
		return fmt.Errorf("%w (no answer in %v): %w", errNotAnswering, limit, err)
	}
	return err
}

// pingDeadline wraps err, which ended a ping that ran for took, as errNotAnswering when the
// ping's own deadline ran out on it. Readiness gives a ping less time than ReadTimeout (2 s, so
// that a load balancer's probe is answered in time): a database silent past it is the outage a
// read past ReadTimeout finds, one outage logged once (storehealth), not a caller that gave up
// on each poll. A caller that cancelled still says nothing of the database.
func pingDeadline(ctx context.Context, err error, took time.Duration) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (no answer in %v, the ping's deadline): %w", errNotAnswering, took.Round(time.Millisecond), err)
	}
	return err
}

// lost reports whether err lost its connection (connectionLost), and if so has the pool ping,
// before their next use, the connections idle in it since: a restart, or a pg_terminate_backend of
// the node's backends, ends them all, and each would fail the request that takes it next.
// pgxpool pings only connections idle for over a second.
func (s *Store) lost(err error) bool {
	if !connectionLost(err) {
		return false
	}
	s.lostAt.Store(int64(time.Since(s.opened)))
	return true
}

// shouldPing is the pool's ShouldPing: a connection idle for over a second (pgxpool's own rule),
// or idle since before a connection was last lost.
func (s *Store) shouldPing(_ context.Context, p pgxpool.ShouldPingParams) bool {
	if p.IdleDuration > time.Second {
		return true
	}
	lostAt := time.Duration(s.lostAt.Load())
	return lostAt > 0 && time.Since(s.opened)-p.IdleDuration <= lostAt
}
