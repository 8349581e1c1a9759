package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// EraseCustomer erases customer id's ended orders (see ordercast.CustomerEraser), in one
// transaction.
//
// It first takes the lock of the customer's party_heads row (creating it when the customer has
// none yet), which every write of an event of the customer's orders takes too: a create or a
// change for the customer that committed before is seen by the check for orders in progress, and
// one that comes after waits for the erasure's commit and then goes on from the head, which
// stays. Without it, a create committed between the check and the deletes would lose its log
// entries.
func (s *Store) EraseCustomer(ctx context.Context, id string) (ordercast.Erasure, error) {
	if err := ordercast.ValidatePartyIDOf("customer_id", id); err != nil {
		return ordercast.Erasure{}, err
	}
	party := ordercast.Party{Kind: ordercast.PartyCustomer, ID: id}.Key()
	var e ordercast.Erasure
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		e, err = eraseInTx(ctx, tx, id, party)
		return err
	})
	if err != nil {
		if ordercast.ErrorCode(err) == ordercast.ECustomerActive {
			return ordercast.Erasure{}, s.health(err, storehealth.ProvesAnswer)
		}
		return ordercast.Erasure{}, s.health(fmt.Errorf("postgres: erase customer %s: %w", id, err), storehealth.ProvesNothing)
	}
	return e, s.health(nil, storehealth.ProvesNothing) // as PurgeExpiredKeys: only a batch and a ping end an outage
}

func eraseInTx(ctx context.Context, tx pgx.Tx, id, party string) (ordercast.Erasure, error) {
	var e ordercast.Erasure
	if _, err := tx.Exec(ctx, `
		INSERT INTO party_heads (party, pos) VALUES ($1, 0)
		ON CONFLICT (party) DO UPDATE SET pos = party_heads.pos`, party); err != nil {
		return e, fmt.Errorf("lock the log's head: %w", err)
	}
	var active int
	// The customers' partial index of active orders finds them (migration 006).
	if err := tx.QueryRow(ctx, `
		SELECT count(*) FROM orders WHERE active AND customer_id <> '' AND customer_id = $1`, id).Scan(&active); err != nil {
		return e, fmt.Errorf("orders in progress: %w", err)
	}
	if active > 0 {
		return e, ordercast.ActiveOrdersError(id, active)
	}
	// The customer's log holds every order of theirs that was not purged, by its key's prefix:
	// no scan of the orders. customer_id must still name them; they are locked as a purge
	// locks them, so that neither deletes what the other changes.
	rows, err := tx.Query(ctx, `
		SELECT id FROM orders
		WHERE id IN (SELECT order_id FROM party_log WHERE party = $1) AND customer_id = $2
		ORDER BY id FOR UPDATE`, party, id)
	if err != nil {
		return e, fmt.Errorf("orders: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return e, fmt.Errorf("orders: %w", err)
	}
	for _, step := range []struct {
		what  string
		query string
		arg   any
		n     *int
	}{
		{"orders", `UPDATE orders SET details = '{}', customer_id = '', dropoff = NULL, erased_at = now() WHERE id = ANY ($1)`, ids, &e.Orders},
		{"notes", `UPDATE order_events SET note = '' WHERE order_id = ANY ($1) AND note <> ''`, ids, &e.Notes},
		{"positions", `DELETE FROM order_locations WHERE order_id = ANY ($1)`, ids, &e.Positions},
		{"log", `DELETE FROM party_log WHERE party = $1`, party, &e.LogEntries},
		// The head stays, and the log counts as purged up to it (ordercast.LogBounds): a cursor
		// from before the erasure, on a device or a stream left open, gets a fresh snapshot,
		// and the customer's next event takes the position after it. Deleted, the head would
		// start the log anew at 1, and such a cursor skip the new log's first entries. (The row
		// the lock above made for a customer with none goes again.)
		{"log purge position", `
			INSERT INTO party_purged (party, pos) SELECT party, pos FROM party_heads WHERE party = $1 AND pos > 0
			ON CONFLICT (party) DO UPDATE SET pos = excluded.pos`, party, nil},
		{"log head made for the lock", `DELETE FROM party_heads WHERE party = $1 AND pos = 0`, party, nil},
	} {
		tag, err := tx.Exec(ctx, step.query, step.arg)
		if err != nil {
			return e, fmt.Errorf("%s: %w", step.what, err)
		}
		if step.n != nil {
			*step.n = int(tag.RowsAffected())
		}
	}
	return e, nil
}
