package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
)

// purgeBatch is how many expired idempotency records each recording write deletes: enough to
// keep up with the writes that made them, few enough to cost a write next to nothing.
const purgeBatch = 16

// IdempotentAnswer returns the answer recorded for key in scope that has not expired at now.
func (s *Store) IdempotentAnswer(ctx context.Context, scope, key string, now time.Time) (ordercast.Answer, error) {
	var a ordercast.Answer
	err := s.pool.QueryRow(ctx, `
		SELECT fingerprint, status, body, expires_at FROM idempotency_keys
		WHERE scope = $1 AND key = $2 AND expires_at > $3`, scope, key, now).
		Scan(&a.Fingerprint, &a.Status, &a.Body, &a.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return ordercast.Answer{}, ordercast.Errorf(ordercast.ENotFound, "no answer recorded for this key")
	} else if err != nil {
		return ordercast.Answer{}, s.health(fmt.Errorf("postgres: idempotency key: %w", err), false)
	}
	a.Expires = a.Expires.UTC()
	return a, nil
}

// recordAnswer is the idempotency step of a write: inside the write's transaction, it renders
// the answer and records it under the request's key, so that the change and its answer commit
// together or not at all. A concurrent transaction inserting the same key makes this one wait
// for it; if it committed, this is EIdempotencyKeyInUse and the caller rolls back. Nothing
// happens without idem.
func (s *Store) recordAnswer(ctx context.Context, tx pgx.Tx, idem *ordercast.Idempotency, res ordercast.Result) error {
	if idem == nil {
		return nil
	}
	a, err := idem.Render(res)
	if err != nil {
		return fmt.Errorf("postgres: render idempotent answer: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM idempotency_keys WHERE expires_at <= clock_timestamp() LIMIT $1))`, purgeBatch)
	b.Queue(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at <= clock_timestamp()`,
		idem.Scope, idem.Key)
	b.Queue(`INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING`,
		idem.Scope, idem.Key, idem.Fingerprint, a.Status, a.Body, idem.Expires)
	br := tx.SendBatch(ctx, b)
	_, err1 := br.Exec()
	_, err2 := br.Exec()
	tag, err3 := br.Exec()
	if err := errors.Join(err1, err2, err3, br.Close()); err != nil {
		return fmt.Errorf("postgres: record idempotency key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ordercast.Errorf(ordercast.EIdempotencyKeyInUse, "a request with this Idempotency-Key was answered meanwhile")
	}
	return nil
}
