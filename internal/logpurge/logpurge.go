// Package logpurge is the part of a purge (ordercast.Purger) both stores share: which entries
// of the party logs the orders a purge deletes left there, and how a read of a log in position
// order judges each entry it meets. Each store reads and deletes in its own SQL.
package logpurge

import "github.com/ordercast/ordercast"

// Order is what a purge knows of an order it deletes: enough to find its entries in the
// party logs (ordercast.Purger).
type Order struct {
	ID                       string
	RestaurantID, CustomerID string
	// EndSeq is the seq of its terminal event, its last.
	EndSeq int64
	// Couriers are its courier events, in seq order.
	Couriers []CourierSeq
}

// CourierSeq is a courier event of an order: its seq, and the courier it gave the order to (""
// for none).
type CourierSeq struct {
	Seq       int64
	CourierID string
}

// Targets returns, for each party whose log holds entries of the orders (by key), the last
// entry each order has there: order id → seq. Every party an event of theirs was logged to
// (ordercast.LogParties) is one of them: its restaurant and customer, whose last entry is the order's end;
// the courier it had at its end, likewise; and every courier it had before, whose last entry is
// the courier event that took the order away (an event leaving a courier is logged to it). A
// purge reads each party's log from its first entry until it has passed all of them: positions
// are in commit order, so no later entry can be one of these orders'. No clock is involved: a
// node's clock stepping back cannot stop the read short.
func Targets(orders []Order) map[string]map[string]int64 {
	targets := map[string]map[string]int64{}
	last := func(k ordercast.PartyKind, id, order string, seq int64) {
		if id == "" {
			return
		}
		key := ordercast.Party{Kind: k, ID: id}.Key()
		if targets[key] == nil {
			targets[key] = map[string]int64{}
		}
		targets[key][order] = max(targets[key][order], seq)
	}
	for _, o := range orders {
		last(ordercast.PartyRestaurant, o.RestaurantID, o.ID, o.EndSeq)
		last(ordercast.PartyCustomer, o.CustomerID, o.ID, o.EndSeq)
		courier := ""
		for _, c := range o.Couriers {
			if courier != "" && c.CourierID != courier {
				last(ordercast.PartyCourier, courier, o.ID, c.Seq) // the event that took it away
			}
			courier = c.CourierID
		}
		last(ordercast.PartyCourier, courier, o.ID, o.EndSeq)
	}
	return targets
}

// Judge judges an entry of a party's log, read in position order by a purge, against left,
// the purged orders' last entries there not yet passed (from Targets), which it empties as
// it passes them: drop the entry when its order is gone (deleted by this purge or an earlier
// one), keep it otherwise, and done once nothing is left to pass.
func Judge(left map[string]int64, orderID string, seq int64, exists bool) (drop, done bool) {
	if !exists {
		if left[orderID] == seq {
			delete(left, orderID)
		}
		return true, len(left) == 0
	}
	return false, len(left) == 0
}

// Rows is a page of a party log's entries as a purge reads them (pos, order id, seq, whether the
// order still exists), from database/sql or pgx alike.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
}

// JudgePage judges the entries of one page of a party's log (Judge), appending the
// positions to delete to drop. after becomes the position of the last entry read; read is how
// many were read (a page shorter than asked for is the log's end); done is Judge's.
func JudgePage(rows Rows, left map[string]int64, after *int64, drop []int64) (_ []int64, read int, done bool, err error) {
	for !done && rows.Next() {
		var (
			order  string
			seq    int64
			exists bool
		)
		if err := rows.Scan(after, &order, &seq, &exists); err != nil {
			return drop, read, done, err
		}
		read++
		var del bool
		if del, done = Judge(left, order, seq, exists); del {
			drop = append(drop, *after)
		}
	}
	return drop, read, done, nil
}
