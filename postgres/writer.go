package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/column"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// batchAttempts bounds how often a batch is tried again after losing a race with another node
// (both created one id, both recorded one idempotency key, or their row locks deadlocked): the
// next attempt reads the winner's rows, so only the writes that lost are refused.
const batchAttempts = 3

// commitBatch is the writer's CommitFunc. A batch costs one round trip when this node knows the
// state of every order it changes (it wrote or read them lately, and its Listener has followed
// every other node's commits to them since) and the heads of the party logs its events go in:
// it judges the writes against what it knows, then sends the whole transaction at once — lock
// the orders, write under guards that fail the transaction if any order or party head is not
// what this node believed, announce with one pg_notify, commit. A guard that fails costs that
// attempt alone: the batch then takes the locking path, two round trips (three when its events
// go in party logs): begin, lock and read the orders it touches, the database clock and the
// idempotency keys still answered; advance the party logs' heads; write and commit. Events
// reach the conformance suite's publisher (if any) here, in commit order, after the commit; in
// a program they reach hubs through the Listener alone.
//
// A database that is away fails the batch, and so each of its writes, with EUnavailable; the
// outage is judged once per batch, not once per write. A batch whose connection was lost before
// it could have committed is tried once more on another connection (sendCommit says when): after
// a restart, or a pg_terminate_backend, every connection idle in the pool is gone.
func (s *Store) commitBatch(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
	guess, again := true, false
	// races counts the attempts that lost a race with another node, and only those are bounded
	// (batchAttempts): a wrong guess, or a connection lost before anything could commit, is
	// tried again at once.
	races := 0
	// end bounds the batch, not each attempt: a batch tried again gets what its earlier
	// attempts left of BatchTimeout, so its writes are answered within it, under the HTTP
	// write timeout, however many attempts it takes.
	end := time.Now().Add(s.BatchTimeout)
	var lastErr error
	for attempt := 1; ; attempt++ {
		left := s.BatchTimeout
		if attempt > 1 {
			if left = time.Until(end); left <= 0 {
				return nil, s.health(fmt.Errorf("%w (no commit in %v, over %d attempts): %w", errNotAnswering, s.BatchTimeout, attempt-1, lastErr), storehealth.ProvesAnswer)
			}
		}
		limit, done := s.leash.limit(left, s.NotAnsweringTimeout)
		// A deadline, not a timeout: a timeout of what was left, counted from a moment later,
		// would end a few nanoseconds past end.
		deadline := time.Now().Add(limit)
		if deadline.After(end) {
			deadline = end
		}
		actx, cancel := context.WithDeadlineCause(ctx, deadline, errNotAnswering)
		actx, wait := watchPool(actx)
		var b *ordercast.Batch
		var err error
		if s.failAttempt != nil {
			err = s.failAttempt(actx, races+1) // a test's stand-in for what the attempt met
		}
		if err == nil {
			b, err = s.tryBatch(actx, writes, guess)
		}
		err = poolExhausted(wait, silent(ctx, actx, err, limit))
		cancel()
		done(err)
		if err == nil {
			s.health(nil, storehealth.CommitProof(b.Wrote()))
			if guess {
				s.paths.oneTrip.Add(1)
			} else {
				s.paths.locking.Add(1)
			}
			b.States(s.recent.Remember)
			for _, ev := range b.Events {
				s.heads.saw(ev.Marks)
				s.publish(ev)
			}
			return b.Results, nil
		}
		lastErr = err
		if guess && errors.Is(err, errMustRead) {
			guess = false // nothing was sent
			continue
		}
		if b != nil {
			// What this node believed of the batch's orders and parties may be what failed it,
			// and a failed commit's outcome is not always known: the next batch reads them.
			s.recent.ForgetOrders(b.OrderIDs())
			s.heads.forget(b)
		}
		if guess && guessedWrong(err) {
			s.paths.wrong.Add(1)
			guess = false
			continue
		}
		if s.lost(err) && !again && ctx.Err() == nil && !errors.Is(err, errCommitUnknown) {
			// Nothing of the batch committed: the next attempt judges it afresh.
			s.Logger.Debug("postgres: batch lost its connection before it could commit; trying again on another", "err", err)
			again = true
			continue
		}
		if !lostRace(err) || ctx.Err() != nil {
			return nil, s.health(err, storehealth.ProvesAnswer)
		}
		if races++; races == batchAttempts {
			// Other nodes kept winning: the database is there, busy with the same orders. The
			// writes are worth sending again shortly, which a 503 with Retry-After says (a 500
			// would call them broken); nothing of the batch committed.
			s.Logger.Warn("postgres: batch lost a race with other nodes on every attempt", "attempts", batchAttempts, "err", err)
			return nil, ordercast.Errorf(ordercast.EUnavailable, "the write lost a race with other nodes %d times; retry shortly", batchAttempts)
		}
		s.Logger.Debug("postgres: batch lost a race with another node; trying again", "err", err)
	}
}

// errMustRead says a batch cannot be judged from what this node knows: it touches an order the
// node does not know, or what it knows could not be guarded. It takes the locking path.
var errMustRead = errors.New("postgres: the batch must be judged from the database")

// guessedWrong reports whether err is one of the guards of a batch judged from what this node
// knew: an order that moved on (its version, or its next event already there), an order that
// exists after all, a party log's head elsewhere than believed, an idempotency key answered.
func guessedWrong(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23514": // check_violation: the guards write an impossible version or position
		return pgErr.ConstraintName == "orders_version_check" || pgErr.ConstraintName == "party_log_pos_check"
	case "23505": // unique_violation
		switch pgErr.ConstraintName {
		case "orders_pkey", "order_events_pkey", "party_log_pkey", "idempotency_keys_pkey":
			return true
		}
	}
	return false
}

// lostRace reports whether err is a race lost with another node writing the same orders at the
// same moment: a deadlock, or an order or an idempotency key that both created.
func lostRace(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40P01": // deadlock_detected
		return true
	case "23505": // unique_violation
		return pgErr.ConstraintName == "orders_pkey" || pgErr.ConstraintName == "idempotency_keys_pkey"
	}
	return false
}

// tryBatch runs the batch on one connection, judged from what this node knows when guess is
// set. It returns the batch with the error when the batch got as far as being judged.
func (s *Store) tryBatch(ctx context.Context, writes []ordercast.Write, guess bool) (*ordercast.Batch, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: acquire: %w", err)
	}
	// A connection released inside a transaction is destroyed by the pool, never reused.
	defer conn.Release()
	b := ordercast.NewBatch(writes)
	if guess {
		err = s.guessBatch(ctx, conn, b)
	} else {
		err = s.lockedBatch(ctx, conn, b)
	}
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
		if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("postgres: rollback: %w", rerr))
		}
	}
	return b, err
}

// guessBatch judges b from what this node knows and commits it in one round trip, or fails
// with errMustRead before sending anything.
func (s *Store) guessBatch(ctx context.Context, conn *pgxpool.Conn, b *ordercast.Batch) error {
	found := make(map[string]int64, len(b.OrderIDs()))
	var stored []string
	for _, id := range b.OrderIDs() {
		if o, latest, ok := s.recent.Get(id); ok {
			b.Found(o, latest)
			found[id] = o.Version
			stored = append(stored, id)
		} else if !b.Creates(id) {
			return errMustRead
		}
	}
	// An order this node has not seen that the batch creates is taken to be new (orders_pkey
	// says otherwise), and no idempotency key to be answered yet (idempotency_keys_pkey).
	b.Apply(s.clock.now())
	// Only what the batch writes is guarded. A write refused, or a repeat that changes nothing,
	// on an order the batch does not write may have been judged from a state that has moved on
	// (an expected_version this node has not seen yet), or may carry a key already answered:
	// such a batch is judged again from the database.
	if len(b.Updated) != len(stored) {
		return errMustRead
	}
	for _, r := range b.Results {
		if r.Err != nil {
			return errMustRead
		}
	}
	parties, counts := b.PartyCounts()
	heads := make(map[string]int64, len(parties))
	for i, p := range parties {
		heads[p] = s.heads.get(p) + counts[i] // a party this node has not seen is taken to be new
	}
	log := b.Mark(heads)

	write := &pgx.Batch{}
	write.Queue(`BEGIN`)
	// The clock, read as the transaction begins, keeps this node's reckoning of it current
	// while every batch takes this path (clock.go). Its answer comes with the commit's; the
	// reading's bound is still from the moment the pipeline was sent.
	sent := time.Now()
	write.Queue(`SELECT clock_timestamp()`).QueryRow(func(row pgx.Row) error {
		var db time.Time
		if err := row.Scan(&db); err != nil {
			return fmt.Errorf("clock: %w", err)
		}
		s.clock.read(db, sent, time.Now())
		return nil
	})
	// The locks the locking path takes, in the same order, before any row is written.
	if len(stored) > 0 {
		slices.Sort(stored)
		write.Queue(lockOrders, stored)
	}
	if len(parties) > 0 {
		write.Queue(advanceHeads, parties, counts)
	}
	return s.writeBatch(ctx, conn, write, b, found, log)
}

// purgeExpiredKeys deletes up to $1 expired idempotency records, found by idempotency_keys_expiry:
// statement_timestamp() is stable within the statement, so the index can be searched with it,
// where clock_timestamp(), volatile, made every batch that records answers read the whole table
// (millions of rows at a day's keys), under its orders' and parties' locks. SKIP LOCKED leaves
// the records another node's batch is purging to it: waiting on them would make the batches of
// every node wait on each other's commits.
const purgeExpiredKeys = `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
	SELECT ctid FROM idempotency_keys WHERE expires_at <= statement_timestamp() LIMIT $1 FOR UPDATE SKIP LOCKED))`

// lockOrders locks the orders with the ids $1 and returns the ids of those that exist. Every
// writer of an order on every node takes its lock first, so writers of one order are serialised
// across nodes; ORDER BY takes the locks in one order everywhere, so two nodes' batches cannot
// deadlock on them. It reads nothing else: a locking statement that also joined another table
// would, after waiting on a lock, see the locked row as committed meanwhile but the other table
// as it was when the statement began (lockedBatch).
const lockOrders = `SELECT id FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE`

// loadOrders reads the orders with the ids $1, each with its latest event: after lockOrders, in
// a statement of its own (see above).
var loadOrders = `
	SELECT ` + column.Of("o", readColumns) + `,
		e.at, e.note, e.actor, e.kind, e.courier_id, e.courier_name
	FROM orders o JOIN order_events e ON e.order_id = o.id AND e.seq = o.version
	WHERE o.id = ANY($1)`

// lockedBatch reads the state of b's orders under their locks, judges it, advances the party
// logs' heads and commits: two or three round trips.
func (s *Store) lockedBatch(ctx context.Context, conn *pgxpool.Conn, b *ordercast.Batch) error {
	// Round trip 1: lock the orders, then read them in a statement of its own, whose snapshot
	// (READ COMMITTED) is taken once the locks are held and so holds every commit to them. One
	// statement that locked and joined lost an order another node held locked: after the wait,
	// PostgreSQL re-checked e.seq = o.version against the orders row that node committed but the
	// order_events row of the statement's older snapshot, and the order went unread.
	read := &pgx.Batch{}
	read.Queue(`BEGIN`)
	read.Queue(lockOrders, b.OrderIDs())
	read.Queue(loadOrders, b.OrderIDs())
	read.Queue(`SELECT clock_timestamp()`)
	keys := b.Keys()
	if len(keys) > 0 {
		scopes, names := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			scopes[i], names[i] = k.Scope, k.Key
		}
		read.Queue(`
			SELECT k.scope, k.key FROM idempotency_keys k
			JOIN unnest($1::text[], $2::text[]) AS u (scope, key) ON k.scope = u.scope AND k.key = u.key
			WHERE k.expires_at > clock_timestamp()`, scopes, names)
	}
	sent := time.Now()
	br := conn.SendBatch(ctx, read)
	now, found, err := readState(br, b)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgres: read batch: %w", err)
	}
	s.clock.read(now, sent, time.Now())

	b.Apply(now)
	if len(b.Created) == 0 && len(b.Updated) == 0 && len(b.Answers) == 0 {
		// Refusals and repeats only: their answers are known whatever becomes of this
		// transaction, which wrote nothing. A COMMIT of its own would turn a connection lost
		// meanwhile into an unknown outcome (errCommitUnknown), and their 409s and 422s into 503s.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			// The pool destroys a connection released inside a transaction: nothing is left open.
			s.Logger.Debug("postgres: a batch that wrote nothing could not roll back", "err", err)
		}
		return nil
	}
	log, err := s.logParties(ctx, conn, b)
	if err != nil {
		return err
	}
	write := &pgx.Batch{}
	return s.writeBatch(ctx, conn, write, b, found, log)
}

// writeBatch queues on write what the batch did, each row under its guard, announces it and
// commits: one round trip. found holds the version each stored order had when the batch was
// judged, and log the batch's rows of party logs, at the positions taken from the heads the
// transaction has advanced by then.
func (s *Store) writeBatch(ctx context.Context, conn *pgxpool.Conn, write *pgx.Batch, b *ordercast.Batch,
	found map[string]int64, log []ordercast.LogEntry) error {
	if len(b.Created) > 0 {
		queueCreated(write, b.Created)
	}
	if len(b.Updated) > 0 {
		queueUpdated(write, b.Updated, found)
	}
	if len(b.Events) > 0 {
		if err := s.queueEvents(write, b, log); err != nil {
			return err
		}
	}
	if len(b.Answers) > 0 {
		queueAnswers(write, b.Answers)
	}
	if s.beforeCommit != nil {
		// A test holds the batch with everything written and nothing committed: COMMIT goes
		// in a round trip of its own.
		if err := conn.SendBatch(ctx, write).Close(); err != nil {
			return fmt.Errorf("postgres: write batch of %d: %w", len(b.Results), err)
		}
		for _, ev := range b.Events {
			s.beforeCommit(ev)
		}
		write = &pgx.Batch{}
	}
	write.Queue(`COMMIT`)
	if err := sendCommit(ctx, conn, write); err != nil {
		return fmt.Errorf("postgres: write batch of %d: %w", len(b.Results), err)
	}
	if tx := conn.Conn().PgConn().TxStatus(); tx != 'I' {
		// A failed statement turns COMMIT into ROLLBACK without an error of its own.
		return fmt.Errorf("postgres: write batch of %d: transaction did not commit (status %c)", len(b.Results), tx)
	}
	return nil
}

// queueCreated queues the insert of the orders a batch created.
func queueCreated(write *pgx.Batch, created []ordercast.Order) {
	// Inserted in the order of their ids (Go's, bytewise; every node sorts the same way):
	// two nodes' batches creating the same orders (a retried create) then wait on each
	// other's inserts in one order, never in a cycle that PostgreSQL breaks as a deadlock.
	var c orderColumnsArrays
	for _, o := range slices.SortedFunc(slices.Values(created), func(x, y ordercast.Order) int {
		return strings.Compare(x.ID, y.ID)
	}) {
		c.add(o)
	}
	write.Queue(`
		INSERT INTO orders (`+orderColumns+`, `+placeColumns+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])`,
		c.id, c.status, c.version, c.details, c.created, c.updated, c.restaurant, c.customer, c.courier,
		c.courierName, c.pickup, c.dropoff)
}

// queueUpdated queues the update of the orders a batch changed, each under its guard: found
// holds the version each had when the batch was judged.
func queueUpdated(write *pgx.Batch, updated []ordercast.Order, found map[string]int64) {
	var c orderColumnsArrays
	prev := make([]int64, 0, len(updated))
	for _, o := range updated {
		c.add(o)
		prev = append(prev, found[o.ID])
	}
	// The guard: a row whose version is not the one the batch was judged against gets
	// version 0, which orders_version_check refuses, failing the transaction. Under the
	// locking path's read it always holds. courier_id, which an index holds, is written as it
	// is unless it changes, and the trigger of migration 006 sets active: PostgreSQL compares
	// the values, so a status change that changes neither stays a HOT update.
	write.Queue(`
		UPDATE orders o SET status = u.status, updated_at = u.updated_at, courier_id = u.courier_id,
			courier_name = u.courier_name, version = CASE WHEN o.version = u.prev THEN u.version ELSE 0 END
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::bigint[])
			AS u (id, status, version, updated_at, courier_id, courier_name, prev)
		WHERE o.id = u.id`,
		c.id, c.status, c.version, c.updated, c.courier, c.courierName, prev)
}

// queueEvents queues the insert of a batch's events and of its rows of party logs (log), and
// the notices that announce them to every node.
func (s *Store) queueEvents(write *pgx.Batch, b *ordercast.Batch, log []ordercast.LogEntry) error {
	n := len(b.Events)
	var (
		ids, statuses, notes, actors = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		kinds, couriers, names       = make([]string, n), make([]string, n), make([]string, n)
		seqs                         = make([]int64, n)
		ats                          = make([]time.Time, n)
	)
	for i, ev := range b.Events {
		ids[i], seqs[i], statuses[i], ats[i], notes[i], actors[i] = ev.OrderID, ev.Seq, string(ev.Status), ev.At, ev.Note, ev.Actor
		kinds[i], couriers[i], names[i] = string(ev.Kind), ev.CourierID, ev.CourierName
	}
	// (order_id, seq) is the primary key: a broken seq rule, or an order that moved on since
	// this node knew it, fails the batch instead of leaving a duplicate.
	write.Queue(`
		INSERT INTO order_events (`+eventColumns+`)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])`,
		ids, seqs, statuses, ats, notes, actors, kinds, couriers, names)
	if len(log) > 0 {
		var (
			parties, orders = make([]string, len(log)), make([]string, len(log))
			poss, lseqs     = make([]int64, len(log)), make([]int64, len(log))
			heads           = make([]int64, len(log))
		)
		last := map[string]int64{}
		for _, e := range log {
			last[e.Party] = max(last[e.Party], e.Pos)
		}
		for i, e := range log {
			parties[i], poss[i], orders[i], lseqs[i], heads[i] = e.Party, e.Pos, e.OrderID, e.Seq, last[e.Party]
		}
		// The guard: the party's head, advanced by this transaction, must be where the
		// batch's last position for it is; a row at position 0 otherwise fails
		// party_log_pos_check. Under the locking path's advance it always holds.
		write.Queue(`
			INSERT INTO party_log (party, pos, order_id, seq)
			SELECT u.party, CASE WHEN h.pos = u.head THEN u.pos ELSE 0 END, u.order_id, u.seq
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[]) AS u (party, pos, order_id, seq, head)
			LEFT JOIN party_heads h ON h.party = u.party`, parties, poss, orders, lseqs, heads)
	}
	payloads, err := notifyPayloads(b.Events, s.MaxNotifyPayload)
	if err != nil {
		return err
	}
	// The created orders go first, so a node knows an order before its first event reaches
	// its hub (and a change that follows lands on a node that knows it).
	created, err := orderPayloads(b, s.MaxNotifyPayload)
	if err != nil {
		return err
	}
	for _, p := range created {
		write.Queue(`SELECT pg_notify($1, $2)`, OrdersChannel, p)
	}
	// pg_notify takes a lock that serialises every notifying commit in the cluster: one per
	// batch, not one per event. PostgreSQL delivers it only if the transaction commits.
	for _, p := range payloads {
		write.Queue(`SELECT pg_notify($1, $2)`, Channel, p)
	}
	return nil
}

// queueAnswers queues the record of the answers a batch gave under idempotency keys, with a few
// expired records purged.
func queueAnswers(write *pgx.Batch, answers []ordercast.RecordedAnswer) {
	n := len(answers)
	var (
		scopes, names, prints = make([]string, n), make([]string, n), make([]string, n)
		statuses              = make([]int32, n)
		bodies                = make([][]byte, n)
		expires               = make([]time.Time, n)
	)
	// In the order of their keys, for the reason the created orders are (above).
	answers = slices.SortedFunc(slices.Values(answers), func(x, y ordercast.RecordedAnswer) int {
		return cmp.Or(strings.Compare(x.Scope, y.Scope), strings.Compare(x.Key, y.Key))
	})
	for i, a := range answers {
		scopes[i], names[i], prints[i], statuses[i], bodies[i], expires[i] = a.Scope, a.Key, a.Fingerprint, int32(a.Status), a.Body, a.Expires
	}
	// A few expired records go with each batch that records answers, and the batch's own
	// keys' expired ones. No ON CONFLICT: a key another node recorded since it was read (or
	// one this node took for unanswered) fails this attempt (idempotency_keys_pkey), and
	// the locking path refuses only its write.
	write.Queue(purgeExpiredKeys, ordercast.ExpiredKeysToPurge(len(names)))
	write.Queue(`
		DELETE FROM idempotency_keys k USING unnest($1::text[], $2::text[]) AS u (scope, key)
		WHERE k.scope = u.scope AND k.key = u.key AND k.expires_at <= statement_timestamp()`, scopes, names)
	write.Queue(`
		INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, expires_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bytea[], $6::timestamptz[])`,
		scopes, names, prints, statuses, bodies, expires)
}

// errCommitUnknown marks a lost connection that failed the round trip carrying a batch's COMMIT
// when the server may have run the COMMIT: the batch may have committed, so it is not tried again.
// Its writes are answered 503, their outcome unknown, as for any write whose answer was lost.
var errCommitUnknown = errors.New("postgres: the connection was lost as the batch committed; its outcome is unknown")

// sendCommit sends write, a round trip that ends with COMMIT. A lost connection fails it with
// errCommitUnknown unless nothing of it can have run: nothing was sent (pgconn.SafeToRetry), or
// the server ended the backend before it answered the round trip's first statement, which comes
// before the COMMIT (backendEnded: the server answers in order, and runs nothing after its
// FATAL). A connection cut, or a FATAL after an answer, may have come after the commit.
func sendCommit(ctx context.Context, conn *pgxpool.Conn, write *pgx.Batch) error {
	watched, answered := false, false // whether the first statement's answer is watched, and came
	if q := write.QueuedQueries; len(q) > 1 && q[0].Fn == nil {
		watched = true
		q[0].Exec(func(pgconn.CommandTag) error {
			answered = true
			return nil
		})
	}
	err := conn.SendBatch(ctx, write).Close()
	if err == nil || !connectionLost(err) || pgconn.SafeToRetry(err) || watched && !answered && backendEnded(err) {
		return err
	}
	return fmt.Errorf("%w: %w", errCommitUnknown, err)
}

// readState reads round trip 1's results into b and returns the database's clock and the
// version of each order found.
func readState(br pgx.BatchResults, b *ordercast.Batch) (time.Time, map[string]int64, error) {
	found := make(map[string]int64, len(b.OrderIDs()))
	if _, err := br.Exec(); err != nil {
		return time.Time{}, nil, fmt.Errorf("begin: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("lock orders: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("lock orders: %w", err)
	}
	locked := make(map[string]bool, len(ids))
	for _, id := range ids {
		locked[id] = true
	}
	rows, err = br.Query()
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("read orders: %w", err)
	}
	for rows.Next() {
		var latest ordercast.Event
		var kind string
		o, err := scanOrder(rows, &latest.At, &latest.Note, &latest.Actor, &kind, &latest.CourierID, &latest.CourierName)
		if err != nil {
			rows.Close()
			return time.Time{}, nil, fmt.Errorf("read orders: %w", err)
		}
		if !locked[o.ID] {
			// Created by another node between the two statements, so not locked: the batch is
			// judged as of the locks, when it did not exist (a creation of it then fails
			// orders_pkey, a lost race, and is tried again).
			continue
		}
		latest.OrderID, latest.Seq, latest.Status, latest.At = o.ID, o.Version, o.Status, latest.At.UTC()
		latest.Kind = ordercast.EventKind(kind)
		b.Found(o, latest)
		found[o.ID] = o.Version
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, nil, fmt.Errorf("read orders: %w", err)
	}
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			// Judged absent, an order that exists would be refused as not found, or created
			// again: fail the batch rather than answer wrongly.
			return time.Time{}, nil, fmt.Errorf("read orders: order %s is locked but its latest event was not read", id)
		}
	}
	var now time.Time
	if err := br.QueryRow().Scan(&now); err != nil {
		return time.Time{}, nil, fmt.Errorf("clock: %w", err)
	}
	if len(b.Keys()) > 0 {
		rows, err := br.Query()
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("idempotency keys: %w", err)
		}
		for rows.Next() {
			var k ordercast.IdempotencyKey
			if err := rows.Scan(&k.Scope, &k.Key); err != nil {
				rows.Close()
				return time.Time{}, nil, fmt.Errorf("idempotency keys: %w", err)
			}
			b.Answered(k)
		}
		if err := rows.Err(); err != nil {
			return time.Time{}, nil, fmt.Errorf("idempotency keys: %w", err)
		}
	}
	return now, found, nil
}

// advanceHeads moves each party's head ($1, sorted: the locks are taken in that order) on by the
// batch's events in its log ($2), creating the heads of new parties. Each upsert locks the
// party's party_heads row until the batch's transaction ends, so the next writer of the party
// (on any node) takes its positions only after this batch has committed: positions are in
// commit order (docs/party-streams.md).
const advanceHeads = `
	INSERT INTO party_heads (party, pos)
	SELECT p, n FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u (p, n, i) ORDER BY i
	ON CONFLICT (party) DO UPDATE SET pos = party_heads.pos + excluded.pos`

// logParties takes the positions of the batch's events in their parties' logs, in a round trip
// of its own: it advances the heads (advanceHeads) and reads them back. It marks the events and
// returns the log's rows, written with the rest of the batch.
func (s *Store) logParties(ctx context.Context, conn *pgxpool.Conn, b *ordercast.Batch) ([]ordercast.LogEntry, error) {
	parties, counts := b.PartyCounts()
	if len(parties) == 0 {
		return nil, nil
	}
	rows, err := conn.Query(ctx, advanceHeads+` RETURNING party, pos`, parties, counts)
	if err != nil {
		return nil, fmt.Errorf("postgres: advance party logs: %w", err)
	}
	heads := make(map[string]int64, len(parties))
	for rows.Next() {
		var (
			p    string
			head int64
		)
		if err := rows.Scan(&p, &head); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: advance party logs: %w", err)
		}
		heads[p] = head
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: advance party logs: %w", err)
	}
	return b.Mark(heads), nil
}

// orderColumnsArrays holds orders column by column, for unnest.
type orderColumnsArrays struct {
	id, status, details           []string
	restaurant, customer, courier []string
	courierName                   []string
	pickup, dropoff               []any // a point's JSON, or nil (NULL)
	version                       []int64
	created, updated              []time.Time
}

func (c *orderColumnsArrays) add(o ordercast.Order) {
	c.id = append(c.id, o.ID)
	c.status = append(c.status, string(o.Status))
	c.version = append(c.version, o.Version)
	c.details = append(c.details, string(o.Details))
	c.created = append(c.created, o.CreatedAt)
	c.updated = append(c.updated, o.UpdatedAt)
	c.restaurant = append(c.restaurant, o.RestaurantID)
	c.customer = append(c.customer, o.CustomerID)
	c.courier = append(c.courier, o.CourierID)
	c.courierName = append(c.courierName, o.CourierName)
	c.pickup = append(c.pickup, column.Point(o.Pickup))
	c.dropoff = append(c.dropoff, column.Point(o.Dropoff))
}
