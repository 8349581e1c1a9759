package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// IdempotentAnswer returns the answer recorded for key in scope that has not expired at now.
func (s *Store) IdempotentAnswer(ctx context.Context, scope, key string, now time.Time) (ordercast.Answer, error) {
	var a ordercast.Answer
	err := s.read(ctx, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, `
			SELECT fingerprint, status, body, expires_at FROM idempotency_keys
			WHERE scope = $1 AND key = $2 AND expires_at > $3`, scope, key, now).
			Scan(&a.Fingerprint, &a.Status, &a.Body, &a.Expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return ordercast.Errorf(ordercast.ENotFound, "no answer recorded for this key")
		} else if err != nil {
			return fmt.Errorf("postgres: idempotency key: %w", err)
		}
		return nil
	})
	if err != nil {
		return ordercast.Answer{}, err
	}
	a.Expires = a.Expires.UTC()
	return a, nil
}

var _ ordercast.KeyPurger = (*Store)(nil)

// purgeKeysExpiredAt is purgeExpiredKeys judged at a time of the node's ($2), the clock that
// set the records' expiry, rather than the database's. SKIP LOCKED: the records a batch or
// another node's sweep holds are left to them, so sweeps of every node never wait on each other
// or on a batch.
const purgeKeysExpiredAt = `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
	SELECT ctid FROM idempotency_keys WHERE expires_at <= $2 LIMIT $1 FOR UPDATE SKIP LOCKED))`

// PurgeExpiredKeys deletes up to limit idempotency records expired at now (see
// ordercast.KeyPurger), in one statement. A batch recording a key whose expired record the
// statement holds waits for it, as it would for another node's batch purging it.
func (s *Store) PurgeExpiredKeys(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, purgeKeysExpiredAt, limit, now)
	if err != nil {
		return 0, s.health(fmt.Errorf("postgres: purge expired idempotency records: %w", err), storehealth.ProvesNothing)
	}
	// It proves nothing of the tables every write takes (a lock on them is an outage): only a
	// batch and a ping end one.
	return int(tag.RowsAffected()), s.health(nil, storehealth.ProvesNothing)
}
