package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/column"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// loadQuery reads an order and its latest event in one lookup: a repeated status answers with
// that event.
var loadQuery = `
	SELECT ` + column.Of("o", readColumns) + `,
		e.at, e.note, e.actor, e.kind, e.courier_id, e.courier_name
	FROM orders o JOIN order_events e ON e.order_id = o.id AND e.seq = o.version
	WHERE o.id = ?`

// statements are the writer's statements, prepared once on its pinned connection: SQLite then
// keeps each one compiled, where a plain Exec would parse its SQL again on every call.
type statements struct {
	begin, commit, rollback *sql.Stmt
	dataVersion             *sql.Stmt
	restart, truncate       *sql.Stmt
	load                    *sql.Stmt
	insertOrder             *sql.Stmt
	// updateOrder writes what every change writes; setCourier the columns that only some
	// change, and that the active orders' indexes hold (migration 006): a column in an UPDATE's
	// SET moves the order in every index that holds it, changed or not. The active column is
	// the trigger's to change (migration 013), when a status ends the order.
	updateOrder, setCourier *sql.Stmt
	insertEvent             *sql.Stmt
	loadKey                 *sql.Stmt
	purgeKeys               *sql.Stmt
	purgeKey                *sql.Stmt
	insertKey               *sql.Stmt
	advanceHead             *sql.Stmt
	insertLog               *sql.Stmt
}

func prepareStatements(ctx context.Context, conn *sql.Conn) (*statements, error) {
	var (
		st   statements
		errs []error
	)
	prep := func(dst **sql.Stmt, query string) {
		s, err := conn.PrepareContext(ctx, query)
		if err != nil {
			errs = append(errs, fmt.Errorf("prepare %q: %w", query, err))
			return
		}
		*dst = s
	}
	// IMMEDIATE takes the write lock at BEGIN, so a batch never fails half-way upgrading a read
	// lock (SQLITE_BUSY that busy_timeout cannot retry) should another process share the file.
	prep(&st.begin, `BEGIN IMMEDIATE`)
	prep(&st.commit, `COMMIT`)
	prep(&st.rollback, `ROLLBACK`)
	// Changes when another connection commits (never for this one's own commits): the sign that
	// the writer's remembered orders (s.recent) may be stale.
	prep(&st.dataVersion, `PRAGMA data_version`)
	prep(&st.restart, `PRAGMA wal_checkpoint(RESTART)`)   // see boundWAL
	prep(&st.truncate, `PRAGMA wal_checkpoint(TRUNCATE)`) // see trimWAL
	prep(&st.load, loadQuery)
	prep(&st.insertOrder, `INSERT INTO orders (`+orderColumns+`, `+placeColumns+`, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	prep(&st.updateOrder, `UPDATE orders SET status = ?, version = ?, updated_at = ? WHERE id = ?`)
	prep(&st.setCourier, `UPDATE orders SET courier_id = ?, courier_name = ? WHERE id = ?`)
	prep(&st.insertEvent, `INSERT INTO order_events (`+eventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	// A party's log position (docs/party-streams.md): the batch, which holds the write lock,
	// advances the party's head by its events and numbers them up to the new head.
	prep(&st.advanceHead, `
		INSERT INTO party_heads (party, pos) VALUES (?, ?)
		ON CONFLICT (party) DO UPDATE SET pos = pos + excluded.pos RETURNING pos`)
	prep(&st.insertLog, `INSERT INTO party_log (party, pos, order_id, seq) VALUES (?, ?, ?, ?)`)
	// The idempotency step (see Batch): keys still answered are read with the orders; each
	// recorded answer first purges a few expired records, and its own key's expired one.
	prep(&st.loadKey, `SELECT 1 FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at > ?`)
	prep(&st.purgeKeys, `
		DELETE FROM idempotency_keys WHERE rowid IN (
			SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`)
	prep(&st.purgeKey, `DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at <= ?`)
	// No ON CONFLICT: the key was read as free in this IMMEDIATE transaction, so a conflict is a
	// broken invariant that fails the batch rather than a write answered twice.
	prep(&st.insertKey, `
		INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`)
	if err := errors.Join(errs...); err != nil {
		st.close()
		return nil, err
	}
	return &st, nil
}

func (st *statements) close() {
	for _, s := range []*sql.Stmt{st.begin, st.commit, st.rollback, st.dataVersion, st.restart, st.truncate, st.load, st.insertOrder, st.updateOrder, st.setCourier, st.insertEvent,
		st.loadKey, st.purgeKeys, st.purgeKey, st.insertKey, st.advanceHead, st.insertLog} {
		if s != nil {
			_ = s.Close() // closing the connection next releases whatever this could not
		}
	}
}

// commitBatch is the writer's CommitFunc: it reads the orders and idempotency keys the batch
// touches, lets the domain judge every write in order, writes what the accepted ones did (their
// answers included), commits once and publishes the events in commit order; once the writes are
// answered, the writer keeps the WAL within its bound (boundWAL, the writer's upkeep). Statements run
// without a context: the driver would start a goroutine per statement to watch one, and
// busy_timeout already bounds every wait. A database that is away fails the batch, and so each
// of its writes, with EUnavailable; the outage is judged once per batch, not once per write.
func (s *Store) commitBatch(_ context.Context, writes []ordercast.Write) ([]ordercast.WriteResult, error) {
	b, err := s.tryCommit(writes)
	if err = s.health(err, storehealth.CommitProof(b != nil && b.Wrote())); err != nil {
		return nil, err
	}
	if pub := s.Publisher; pub != nil {
		for _, ev := range b.Events {
			pub.Publish(ev)
		}
	}
	s.kickCheckpointer()
	return b.Results, nil
}

func (s *Store) tryCommit(writes []ordercast.Write) (*ordercast.Batch, error) {
	ctx := context.Background()
	s.writing.Lock()
	defer s.writing.Unlock()
	if s.conn == nil {
		// The last replacement of the connection failed to open one (replaceWriterConn).
		if err := s.openWriterConn(ctx); err != nil {
			return nil, err
		}
	}
	st := s.stmts
	if _, err := st.begin.ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	b, err := s.applyBatch(ctx, writes)
	if err == nil {
		err = s.checkFiles() // a commit into a file no longer at the path would be lost
	}
	if err == nil {
		if _, err = st.commit.ExecContext(ctx); err != nil {
			err = fmt.Errorf("sqlite: commit: %w", err)
		}
	}
	if err != nil {
		// Whether a failed COMMIT left anything behind is not always known: read it all again.
		s.recent.Forget()
		return nil, errors.Join(err, s.rollback(ctx, "sqlite: rollback"))
	}
	b.States(s.recent.Remember)
	return b, nil
}

// rollback ends the writer's transaction after a failed batch or purge (what names it in the
// error). A COMMIT that failed on a full disk or an I/O error has had SQLite roll the
// transaction back itself, and the ROLLBACK's "no transaction is active" then says nothing
// (joined to the commit's error, it only misled: "cannot rollback" under "disk is full"). Any
// other failure may leave the connection inside the transaction, where every later BEGIN would
// fail, or a batch join what is left of this one: a fresh connection starts clean.
func (s *Store) rollback(ctx context.Context, what string) error {
	_, err := s.stmts.rollback.ExecContext(ctx)
	if err == nil || strings.Contains(err.Error(), "no transaction is active") {
		return nil
	}
	return errors.Join(fmt.Errorf("%s: %w", what, err), s.replaceWriterConn(ctx))
}

// openWriterConn pins the writer's connection and prepares its statements. Called by Open, and
// with s.writing held once the store is open.
func (s *Store) openWriterConn(ctx context.Context) error {
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: writer connection: %w", err)
	}
	st, err := prepareStatements(ctx, conn)
	if err != nil {
		_ = conn.Close() // the preparing error is the one worth reporting
		return fmt.Errorf("sqlite: %w", err)
	}
	s.conn, s.stmts = conn, st
	return nil
}

// replaceWriterConn closes the writer's connection, whatever state it is in, and opens and
// prepares a fresh one, as Open does. When that fails the writer is left without one, and the
// next batch tries again. Called with s.writing held.
func (s *Store) replaceWriterConn(ctx context.Context) error {
	s.stmts.close()
	// Raw's driver.ErrBadConn makes database/sql close the connection instead of putting it
	// back in the pool, where the next Conn, or Ping's probe, would find it in its transaction.
	// Closing it rolls back what it held. Raw returns that ErrBadConn: nothing to report.
	_ = s.conn.Raw(func(any) error { return driver.ErrBadConn })
	s.conn, s.stmts = nil, nil
	// data_version is the connection's: the new one's says nothing of the old one's.
	s.dataVersion = -1
	if err := s.openWriterConn(ctx); err != nil {
		return fmt.Errorf("sqlite: replace the writer connection: %w", err)
	}
	return nil
}

// applyBatch runs inside the transaction: read what the batch touches, judge its writes in
// order against it (ordercast.Batch.Apply), write what the judgement changed.
func (s *Store) applyBatch(ctx context.Context, writes []ordercast.Write) (*ordercast.Batch, error) {
	now := s.now()
	b, err := s.loadBatch(ctx, writes, now)
	if err != nil {
		return nil, err
	}
	b.Apply(now)
	if err := s.writeBatch(ctx, b); err != nil {
		return nil, err
	}
	if err := s.writeAnswers(ctx, b, now); err != nil {
		return nil, err
	}
	return b, nil
}

// loadBatch reads what the batch's writes touch: their orders (from what the writer remembers
// when nothing else committed since) and which of their idempotency keys have an answer.
func (s *Store) loadBatch(ctx context.Context, writes []ordercast.Write, now time.Time) (*ordercast.Batch, error) {
	st := s.stmts
	var version int64
	if err := st.dataVersion.QueryRowContext(ctx).Scan(&version); err != nil {
		return nil, fmt.Errorf("sqlite: read data_version: %w", err)
	}
	if version != s.dataVersion {
		// Another connection or process committed since the last batch: what the writer
		// remembers may be stale.
		s.recent.Forget()
		s.dataVersion = version
	}
	b := ordercast.NewBatch(writes)
	for _, id := range b.OrderIDs() {
		if o, latest, ok := s.recent.Get(id); ok {
			b.Found(o, latest)
			continue
		}
		o, latest, err := scanLoaded(st.load.QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("sqlite: read order %s: %w", id, err)
		}
		b.Found(o, latest)
	}
	for _, k := range b.Keys() {
		var one int
		err := st.loadKey.QueryRowContext(ctx, k.Scope, k.Key, now.UnixMicro()).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("sqlite: read idempotency key: %w", err)
		}
		b.Answered(k)
	}
	return b, nil
}

// writeBatch writes the orders the judged batch created and changed, their events, and the
// events' places in their parties' logs.
func (s *Store) writeBatch(ctx context.Context, b *ordercast.Batch) error {
	st := s.stmts
	for _, o := range b.Created {
		if _, err := st.insertOrder.ExecContext(ctx, o.ID, string(o.Status), o.Version, string(o.Details),
			o.CreatedAt.UnixMicro(), o.UpdatedAt.UnixMicro(), o.RestaurantID, o.CustomerID, o.CourierID, o.CourierName,
			column.Point(o.Pickup), column.Point(o.Dropoff), active(o)); err != nil {
			return fmt.Errorf("sqlite: create order %s: %w", o.ID, err)
		}
	}
	for _, o := range b.Updated {
		// The rows were read in this IMMEDIATE transaction, which holds the write lock: nothing
		// else can have moved them since.
		if _, err := st.updateOrder.ExecContext(ctx, string(o.Status), o.Version, o.UpdatedAt.UnixMicro(), o.ID); err != nil {
			return fmt.Errorf("sqlite: update order %s: %w", o.ID, err)
		}
		was, _ := b.Stored(o.ID)
		// The name too: a batch may give an order away and back under a new name, which leaves
		// the courier where it was.
		if o.CourierID != was.CourierID || o.CourierName != was.CourierName {
			if _, err := st.setCourier.ExecContext(ctx, o.CourierID, o.CourierName, o.ID); err != nil {
				return fmt.Errorf("sqlite: set the courier of order %s: %w", o.ID, err)
			}
		}
	}
	for _, ev := range b.Events {
		// (order_id, seq) is the primary key: a broken seq rule fails the batch instead of
		// leaving a duplicate.
		if _, err := st.insertEvent.ExecContext(ctx, ev.OrderID, ev.Seq, string(ev.Status), ev.At.UnixMicro(), ev.Note, ev.Actor,
			string(ev.Kind), ev.CourierID, ev.CourierName); err != nil {
			return fmt.Errorf("sqlite: insert event %s/%d: %w", ev.OrderID, ev.Seq, err)
		}
	}
	return s.logParties(ctx, b)
}

// writeAnswers records the answers of the batch's writes that carried an idempotency key, and
// first purges some expired ones (ordercast.ExpiredKeysToPurge), so that the table stays
// bounded without a sweep.
func (s *Store) writeAnswers(ctx context.Context, b *ordercast.Batch, now time.Time) error {
	if len(b.Answers) == 0 {
		return nil
	}
	st := s.stmts
	if _, err := st.purgeKeys.ExecContext(ctx, now.UnixMicro(), ordercast.ExpiredKeysToPurge(len(b.Answers))); err != nil {
		return fmt.Errorf("sqlite: purge idempotency keys: %w", err)
	}
	for _, a := range b.Answers {
		if _, err := st.purgeKey.ExecContext(ctx, a.Scope, a.Key, now.UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: purge idempotency key: %w", err)
		}
		if _, err := st.insertKey.ExecContext(ctx, a.Scope, a.Key, a.Fingerprint, a.Status, a.Body, a.Expires.UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: record idempotency key: %w", err)
		}
	}
	return nil
}

// active is a new order's active column: 1 until it ends. A status change that ends an order
// clears it by the trigger of migration 013, which keeps it for every writer.
func active(o ordercast.Order) int {
	if o.Status.Terminal() {
		return 0
	}
	return 1
}

// logParties appends the batch's events to their parties' logs and marks each event with its
// positions there. The IMMEDIATE transaction serialises batches, so positions are in commit order.
func (s *Store) logParties(ctx context.Context, b *ordercast.Batch) error {
	parties, counts := b.PartyCounts()
	if len(parties) == 0 {
		return nil
	}
	heads := make(map[string]int64, len(parties))
	for i, p := range parties {
		var head int64
		if err := s.stmts.advanceHead.QueryRowContext(ctx, p, counts[i]).Scan(&head); err != nil {
			return fmt.Errorf("sqlite: advance the log of %s: %w", p, err)
		}
		heads[p] = head
	}
	for _, e := range b.Mark(heads) {
		if _, err := s.stmts.insertLog.ExecContext(ctx, e.Party, e.Pos, e.OrderID, e.Seq); err != nil {
			return fmt.Errorf("sqlite: log %s/%d for %s: %w", e.OrderID, e.Seq, e.Party, err)
		}
	}
	return nil
}

func scanLoaded(row *sql.Row) (ordercast.Order, ordercast.Event, error) {
	var (
		ev   ordercast.Event
		kind string
		at   int64
	)
	o, err := scanOrder(row, &at, &ev.Note, &ev.Actor, &kind, &ev.CourierID, &ev.CourierName)
	if err != nil {
		return o, ev, err
	}
	ev.Kind = ordercast.EventKind(kind)
	ev.OrderID, ev.Seq, ev.Status, ev.At = o.ID, o.Version, o.Status, fromMicros(at)
	return o, ev, nil
}
