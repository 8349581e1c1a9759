package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordercast/ordercast"
)

// batchAttempts bounds how often a batch is tried again after losing a race with another node
// (both created one id, both recorded one idempotency key, or their row locks deadlocked): the
// next attempt reads the winner's rows, so only the writes that lost are refused.
const batchAttempts = 3

// commitBatch is the writer's CommitFunc. A batch costs two round trips whatever its size: one
// to begin, lock and read the orders it touches (and read the database clock, which stamps
// every node's events alike, and the idempotency keys still answered); one to write what the
// domain accepted, with the answers of the writes that carry a key, announce it with one
// pg_notify and commit. Events reach the conformance suite's publisher (if any) here, in commit
// order, after the commit; in a program they reach hubs through the Listener alone.
//
// A database that is away fails the batch, and so each of its writes, with EUnavailable; the
// outage is judged once per batch, not once per write.
func (s *Store) commitBatch(ctx context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
	for attempt := 1; ; attempt++ {
		b, err := s.tryBatch(ctx, writes)
		if err == nil {
			s.health(nil, true)
			for _, ev := range b.Events {
				s.publish(ev)
			}
			return b.Results, nil
		}
		var pgErr *pgconn.PgError
		lostRace := errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "23505" &&
			(pgErr.ConstraintName == "orders_pkey" || pgErr.ConstraintName == "idempotency_keys_pkey"))
		if !lostRace || attempt == batchAttempts || ctx.Err() != nil {
			return nil, s.health(err, true)
		}
		s.Logger.Debug("postgres: batch lost a race with another node; trying again", "err", err)
	}
}

func (s *Store) tryBatch(ctx context.Context, writes []ordercast.Write) (*ordercast.Batch, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: acquire: %w", err)
	}
	// A connection released inside a transaction is destroyed by the pool, never reused.
	defer conn.Release()
	b, err := s.runBatch(ctx, conn, writes)
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
		if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("postgres: rollback: %w", rerr))
		}
	}
	return b, err
}

func (s *Store) runBatch(ctx context.Context, conn *pgxpool.Conn, writes []ordercast.Write) (*ordercast.Batch, error) {
	b := ordercast.NewBatch(writes)

	// Round trip 1. FOR UPDATE serialises writers of one order across nodes; ORDER BY takes the
	// locks in one order everywhere, so two nodes' batches cannot deadlock on them.
	read := &pgx.Batch{}
	read.Queue(`BEGIN`)
	read.Queue(`
		SELECT o.id, o.status, o.version, o.details, o.created_at, o.updated_at,
			o.restaurant_id, o.customer_id, o.courier_id, o.pickup, o.dropoff,
			e.at, e.note, e.actor, e.kind, e.courier_id
		FROM orders o JOIN order_events e ON e.order_id = o.id AND e.seq = o.version
		WHERE o.id = ANY($1) ORDER BY o.id FOR UPDATE OF o`, b.OrderIDs())
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
	br := conn.SendBatch(ctx, read)
	now, err := readState(br, b)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read batch: %w", err)
	}

	b.Apply(now)
	log, err := s.logParties(ctx, conn, b)
	if err != nil {
		return nil, err
	}
	if s.beforeCommit != nil {
		for _, ev := range b.Events {
			s.beforeCommit(ev)
		}
	}

	// Round trip 2.
	write := &pgx.Batch{}
	if len(b.Created) > 0 {
		var c orderColumnsArrays
		for _, o := range b.Created {
			c.add(o)
		}
		write.Queue(`
			INSERT INTO orders (`+orderColumns+`, `+placeColumns+`)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[],
				$7::text[], $8::text[], $9::text[], $10::text[], $11::text[])`,
			c.id, c.status, c.version, c.details, c.created, c.updated, c.restaurant, c.customer, c.courier,
			c.pickup, c.dropoff)
	}
	if len(b.Updated) > 0 {
		var c orderColumnsArrays
		for _, o := range b.Updated {
			c.add(o)
		}
		// The rows are locked by this transaction since they were read: the versions are theirs.
		write.Queue(`
			UPDATE orders o SET status = u.status, version = u.version, updated_at = u.updated_at, courier_id = u.courier_id
			FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[]) AS u (id, status, version, updated_at, courier_id)
			WHERE o.id = u.id`,
			c.id, c.status, c.version, c.updated, c.courier)
	}
	if len(b.Events) > 0 {
		n := len(b.Events)
		var (
			ids, statuses, notes, actors = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			kinds, couriers              = make([]string, n), make([]string, n)
			seqs                         = make([]int64, n)
			ats                          = make([]time.Time, n)
		)
		for i, ev := range b.Events {
			ids[i], seqs[i], statuses[i], ats[i], notes[i], actors[i] = ev.OrderID, ev.Seq, string(ev.Status), ev.At, ev.Note, ev.Actor
			kinds[i], couriers[i] = string(ev.Kind), ev.CourierID
		}
		// (order_id, seq) is the primary key: a broken seq rule fails the batch instead of
		// leaving a duplicate.
		write.Queue(`
			INSERT INTO order_events (`+eventColumns+`)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[])`,
			ids, seqs, statuses, ats, notes, actors, kinds, couriers)
		if len(log) > 0 {
			var (
				parties, orders = make([]string, len(log)), make([]string, len(log))
				poss, lseqs     = make([]int64, len(log)), make([]int64, len(log))
			)
			for i, e := range log {
				parties[i], poss[i], orders[i], lseqs[i] = e.Party, e.Pos, e.OrderID, e.Seq
			}
			write.Queue(`
				INSERT INTO party_log (party, pos, order_id, seq)
				SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])`, parties, poss, orders, lseqs)
		}
		payloads, err := notifyPayloads(b.Events, s.MaxNotifyPayload)
		if err != nil {
			return nil, err
		}
		// pg_notify takes a lock that serialises every notifying commit in the cluster: one per
		// batch, not one per event. PostgreSQL delivers it only if the transaction commits.
		for _, p := range payloads {
			write.Queue(`SELECT pg_notify($1, $2)`, Channel, p)
		}
	}
	if n := len(b.Answers); n > 0 {
		var (
			scopes, names, prints = make([]string, n), make([]string, n), make([]string, n)
			statuses              = make([]int32, n)
			bodies                = make([][]byte, n)
			expires               = make([]time.Time, n)
		)
		for i, a := range b.Answers {
			scopes[i], names[i], prints[i], statuses[i], bodies[i], expires[i] = a.Scope, a.Key, a.Fingerprint, int32(a.Status), a.Body, a.Expires
		}
		// A few expired records go with each batch that records answers, and the batch's own
		// keys' expired ones. No ON CONFLICT: a key another node recorded since round trip 1
		// fails this attempt (idempotency_keys_pkey), and the next one refuses only its write.
		write.Queue(`DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM idempotency_keys WHERE expires_at <= clock_timestamp() LIMIT $1))`, purgeBatch)
		write.Queue(`
			DELETE FROM idempotency_keys k USING unnest($1::text[], $2::text[]) AS u (scope, key)
			WHERE k.scope = u.scope AND k.key = u.key AND k.expires_at <= clock_timestamp()`, scopes, names)
		write.Queue(`
			INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, expires_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bytea[], $6::timestamptz[])`,
			scopes, names, prints, statuses, bodies, expires)
	}
	write.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, write).Close(); err != nil {
		return nil, fmt.Errorf("postgres: write batch of %d: %w", len(writes), err)
	}
	if tx := conn.Conn().PgConn().TxStatus(); tx != 'I' {
		// A failed statement turns COMMIT into ROLLBACK without an error of its own.
		return nil, fmt.Errorf("postgres: write batch of %d: transaction did not commit (status %c)", len(writes), tx)
	}
	return b, nil
}

// readState reads round trip 1's results into b and returns the database's clock.
func readState(br pgx.BatchResults, b *ordercast.Batch) (time.Time, error) {
	if _, err := br.Exec(); err != nil {
		return time.Time{}, fmt.Errorf("begin: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return time.Time{}, err
	}
	for rows.Next() {
		var latest ordercast.Event
		var kind string
		o, err := scanOrder(rows, &latest.At, &latest.Note, &latest.Actor, &kind, &latest.CourierID)
		if err != nil {
			rows.Close()
			return time.Time{}, err
		}
		latest.OrderID, latest.Seq, latest.Status, latest.At = o.ID, o.Version, o.Status, latest.At.UTC()
		latest.Kind = ordercast.EventKind(kind)
		b.Found(o, latest)
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, err
	}
	var now time.Time
	if err := br.QueryRow().Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("clock: %w", err)
	}
	if len(b.Keys()) > 0 {
		rows, err := br.Query()
		if err != nil {
			return time.Time{}, fmt.Errorf("idempotency keys: %w", err)
		}
		for rows.Next() {
			var k ordercast.IdempotencyKey
			if err := rows.Scan(&k.Scope, &k.Key); err != nil {
				rows.Close()
				return time.Time{}, fmt.Errorf("idempotency keys: %w", err)
			}
			b.Answered(k)
		}
		if err := rows.Err(); err != nil {
			return time.Time{}, fmt.Errorf("idempotency keys: %w", err)
		}
	}
	return now, nil
}

// logParties takes the positions of the batch's events in their parties' logs: one upsert
// advances each party's head by its events, in sorted order, and returns the new heads. Each
// upsert locks the party's party_heads row until the batch's transaction ends, so the next
// writer of the party (on any node) takes its positions only after this batch has committed:
// positions are in commit order (docs/party-streams.md). It marks the events and returns the
// log's rows, written with the rest of the batch.
func (s *Store) logParties(ctx context.Context, conn *pgxpool.Conn, b *ordercast.Batch) ([]ordercast.LogEntry, error) {
	parties, counts := b.PartyCounts()
	if len(parties) == 0 {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `
		INSERT INTO party_heads (party, pos)
		SELECT p, n FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u (p, n, i) ORDER BY i
		ON CONFLICT (party) DO UPDATE SET pos = party_heads.pos + excluded.pos
		RETURNING party, pos`, parties, counts)
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
	c.pickup = append(c.pickup, ordercast.PointColumn(o.Pickup))
	c.dropoff = append(c.dropoff, ordercast.PointColumn(o.Dropoff))
}
