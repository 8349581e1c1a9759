package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
)

// purgeBatch is how many expired idempotency records each recording write deletes: enough to
// keep up with the writes that made them, few enough to cost a write next to nothing.
const purgeBatch = 16

// IdempotentAnswer returns the answer recorded for key in scope that has not expired at now.
func (s *Store) IdempotentAnswer(ctx context.Context, scope, key string, now time.Time) (ordercast.Answer, error) {
	var (
		a       ordercast.Answer
		expires int64
	)
	err := s.readers.QueryRowContext(ctx, `
		SELECT fingerprint, status, body, expires_at FROM idempotency_keys
		WHERE scope = ? AND key = ? AND expires_at > ?`, scope, key, now.UnixMicro()).
		Scan(&a.Fingerprint, &a.Status, &a.Body, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return ordercast.Answer{}, ordercast.Errorf(ordercast.ENotFound, "no answer recorded for this key")
	} else if err != nil {
		return ordercast.Answer{}, s.health(fmt.Errorf("sqlite: idempotency key: %w", err), false)
	}
	a.Expires = fromMicros(expires)
	return a, nil
}

// recordAnswer is the idempotency step of a write: inside the write's transaction, it renders
// the answer and records it under the request's key, so that the change and its answer commit
// together or not at all. A key recorded meanwhile by a concurrent request (another node) is
// EIdempotencyKeyInUse, and the caller rolls back. Nothing happens without idem.
func (s *Store) recordAnswer(ctx context.Context, tx *sql.Tx, idem *ordercast.Idempotency, res ordercast.Result) error {
	if idem == nil {
		return nil
	}
	a, err := idem.Render(res)
	if err != nil {
		return fmt.Errorf("sqlite: render idempotent answer: %w", err)
	}
	now := s.now().UnixMicro()
	if _, err := tx.ExecContext(ctx, `
		DELETE FROM idempotency_keys WHERE rowid IN (
			SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`, now, purgeBatch); err != nil {
		return fmt.Errorf("sqlite: purge idempotency keys: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at <= ?`,
		idem.Scope, idem.Key, now); err != nil {
		return fmt.Errorf("sqlite: purge idempotency key: %w", err)
	}
	r, err := tx.ExecContext(ctx, `
		INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING`,
		idem.Scope, idem.Key, idem.Fingerprint, a.Status, a.Body, idem.Expires.UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlite: record idempotency key: %w", err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: record idempotency key: %w", err)
	} else if n == 0 {
		return ordercast.Errorf(ordercast.EIdempotencyKeyInUse, "a request with this Idempotency-Key was answered meanwhile")
	}
	return nil
}
