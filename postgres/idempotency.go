package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
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
