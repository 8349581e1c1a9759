package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// EraseCustomer erases customer id's ended orders (see ordercast.CustomerEraser). It runs on the
// writer's connection between two batches, as a purge does (writeAside, which also keeps the WAL
// within its bound): the writer is the file's only one, so no order of the customer can be
// created or moved between the check for orders in progress and the erasure. An erasure that
// finds nothing to erase commits nothing.
func (s *Store) EraseCustomer(ctx context.Context, id string) (ordercast.Erasure, error) {
	if err := ordercast.ValidatePartyIDOf("customer_id", id); err != nil {
		return ordercast.Erasure{}, err
	}
	var e ordercast.Erasure
	n, err := s.writeAside(ctx, "sqlite: erase customer "+id, func(ctx context.Context) (n int, err error) {
		if e, err = s.eraseInTx(ctx, id); err != nil {
			return 0, err
		}
		return e.Orders + e.Notes + e.LogEntries + e.Positions, nil
	})
	if err != nil {
		return ordercast.Erasure{}, s.health(err, storehealth.ProvesNothing)
	}
	if n > 0 {
		s.flushErased(id)
	}
	return e, s.health(nil, storehealth.CommitProof(n > 0))
}

// flushErased empties the WAL after an erasure committed: its earlier frames hold the erased
// pages as they were (the details, the notes), which secure_delete zeroes in the database file
// only, and a quiet node would keep them there, and in every copy of the directory, until the
// WAL grows past CheckpointSize. A TRUNCATE checkpoint copies what the WAL holds into the file
// and cuts the WAL to nothing. Readers it waits for too long leave it for the next erasure or the
// checkpointer: the erasure has committed either way, so a failure is logged, not returned.
func (s *Store) flushErased(id string) {
	busy, err := s.truncateWAL(0)
	if err == nil && busy {
		err = errors.New("readers held the WAL")
	}
	if err != nil {
		s.Logger.Warn("sqlite: the WAL still holds the erased data as it was, until it is checkpointed", "customer", id, "err", err)
	}
}

// eraseInTx erases inside the transaction writeAside began on the writer's connection.
func (s *Store) eraseInTx(ctx context.Context, id string) (ordercast.Erasure, error) {
	var e ordercast.Erasure
	c, party := s.conn, ordercast.Party{Kind: ordercast.PartyCustomer, ID: id}.Key()
	var active int
	// The customers' partial index of active orders finds them (migration 006).
	if err := c.QueryRowContext(ctx, `
		SELECT count(*) FROM orders INDEXED BY orders_customer_active
		WHERE active = 1 AND customer_id <> '' AND customer_id = ?`, id).Scan(&active); err != nil {
		return e, fmt.Errorf("sqlite: erase customer %s: orders in progress: %w", id, err)
	}
	if active > 0 {
		return e, ordercast.ActiveOrdersError(id, active)
	}
	// The customer's log holds every order of theirs that was not purged (its key's prefix,
	// no scan of the orders); customer_id must still name them.
	rows, err := c.QueryContext(ctx, `
		SELECT id FROM (SELECT DISTINCT order_id FROM party_log WHERE party = ?) l
		CROSS JOIN orders ON id = l.order_id WHERE customer_id = ?`, party, id)
	if err != nil {
		return e, fmt.Errorf("sqlite: erase customer %s: orders: %w", id, err)
	}
	ids := []string{}
	for rows.Next() {
		var oid string
		if err := rows.Scan(&oid); err != nil {
			rows.Close()
			return e, fmt.Errorf("sqlite: erase customer %s: orders: %w", id, err)
		}
		ids = append(ids, oid)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return e, fmt.Errorf("sqlite: erase customer %s: orders: %w", id, err)
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return e, fmt.Errorf("sqlite: erase customer %s: %w", id, err)
	}
	for _, step := range []struct {
		what  string
		query string
		arg   any
		n     *int
	}{
		{"orders", `UPDATE orders SET details = '{}', customer_id = '', dropoff = NULL, erased_at = ` + strconv.FormatInt(s.now().UnixMicro(), 10) + `
			WHERE id IN (SELECT value FROM json_each(?))`, string(list), &e.Orders},
		{"notes", `UPDATE order_events SET note = ''
			WHERE order_id IN (SELECT value FROM json_each(?)) AND note <> ''`, string(list), &e.Notes},
		{"log", `DELETE FROM party_log WHERE party = ?`, party, &e.LogEntries},
		// The head stays, and the log counts as purged up to it (ordercast.LogBounds): a cursor
		// from before the erasure, on a device or a stream left open, gets a fresh snapshot,
		// and the customer's next event takes the position after it. Deleted, the head would
		// start the log anew at 1, and such a cursor skip the new log's first entries.
		{"log purge position", `
			INSERT INTO party_purged (party, pos) SELECT party, pos FROM party_heads WHERE party = ?1 AND pos > 0
			ON CONFLICT (party) DO UPDATE SET pos = excluded.pos`, party, nil},
	} {
		res, err := c.ExecContext(ctx, step.query, step.arg)
		if err != nil {
			return e, fmt.Errorf("sqlite: erase customer %s: %s: %w", id, step.what, err)
		}
		if step.n == nil {
			continue
		}
		n, err := res.RowsAffected()
		if err != nil {
			return e, fmt.Errorf("sqlite: erase customer %s: %s: %w", id, step.what, err)
		}
		*step.n = int(n)
	}
	return e, nil
}
