package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// IdempotentAnswer returns the answer recorded for key in scope that has not expired at now.
func (s *Store) IdempotentAnswer(ctx context.Context, scope, key string, now time.Time) (ordercast.Answer, error) {
	var (
		a       ordercast.Answer
		expires int64
	)
	err := s.reads.QueryRowContext(ctx, `
		SELECT fingerprint, status, body, expires_at FROM idempotency_keys
		WHERE scope = ? AND key = ? AND expires_at > ?`, scope, key, now.UnixMicro()).
		Scan(&a.Fingerprint, &a.Status, &a.Body, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return ordercast.Answer{}, ordercast.Errorf(ordercast.ENotFound, "no answer recorded for this key")
	} else if err != nil {
		return ordercast.Answer{}, s.health(fmt.Errorf("sqlite: idempotency key: %w", err), storehealth.ProvesNothing)
	}
	a.Expires = fromMicros(expires)
	return a, nil
}

var _ ordercast.KeyPurger = (*Store)(nil)

// PurgeExpiredKeys deletes up to limit idempotency records expired at now (see
// ordercast.KeyPurger), on the writer's connection between two batches, as a purge does
// (writeAside): a batch waits for it, and it keeps the WAL within its bound.
func (s *Store) PurgeExpiredKeys(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := s.writeAside(ctx, "sqlite: purge expired idempotency records", func(ctx context.Context) (int, error) {
		res, err := s.stmts.purgeKeys.ExecContext(ctx, now.UnixMicro(), limit)
		if err != nil {
			return 0, fmt.Errorf("sqlite: purge expired idempotency records: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("sqlite: purge expired idempotency records: %w", err)
		}
		return int(n), nil
	})
	return n, s.health(err, storehealth.CommitProof(n > 0))
}
