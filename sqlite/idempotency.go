package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
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
		return ordercast.Answer{}, s.health(fmt.Errorf("sqlite: idempotency key: %w", err), false)
	}
	a.Expires = fromMicros(expires)
	return a, nil
}
