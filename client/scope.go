package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// ScopeUpdate is one message of a party stream: either a snapshot of the party's active orders
// or one event of an order in the party's scope. Pos is its position in the party's log.
//
// A snapshot opens a stream, and comes again, mid-stream, whenever the watch is more than
// 10,000 events behind the party's log: on a resume after a long absence, or on an open stream
// that fell that far behind (the events between are not sent). A snapshot replaces the
// caller's state: it is every active order of the party at Pos, and an order the caller holds
// that is not in it has ended or left the scope meanwhile. It holds at most 2,000 orders, the
// most recently updated; a party with more active orders than that has its oldest left out,
// whose later events still arrive.
type ScopeUpdate struct {
	Pos      int64
	Snapshot *api.PartySnapshot // set for a snapshot
	Event    *ordercast.Event   // set for an event
}

// WatchScope returns a subscription to every order in one party's scope: a restaurant, a
// courier or a customer (GET /v1/{restaurants,couriers,customers}/{id}/stream). Read it with
// NextScoped. It resumes like Watch, after the last position returned (WatchOptions.LastEventID
// is a position in the party's log), and returns each event once.
// A party the server could not have (a kind other than the three, an id it would refuse) ends
// the watch at its first NextScoped, with invalid_argument, before anything is sent.
func (c *Client) WatchScope(ctx context.Context, p ordercast.Party, opts WatchOptions) *Watch {
	w := c.Watch(ctx, p.Key(), opts)
	w.party = &p
	if !p.Valid() {
		w.end(ordercast.Errorf(ordercast.EInvalid, "watch %s: not a party a stream can be opened for (a restaurant, courier or customer, with a valid id)", p.Key()))
	}
	return w
}

// WatchRestaurant is WatchScope for a restaurant's orders.
func (c *Client) WatchRestaurant(ctx context.Context, id string, opts WatchOptions) *Watch {
	return c.WatchScope(ctx, ordercast.Party{Kind: ordercast.PartyRestaurant, ID: id}, opts)
}

// WatchCourier is WatchScope for the orders assigned to a courier.
func (c *Client) WatchCourier(ctx context.Context, id string, opts WatchOptions) *Watch {
	return c.WatchScope(ctx, ordercast.Party{Kind: ordercast.PartyCourier, ID: id}, opts)
}

// WatchCustomer is WatchScope for a customer's orders.
func (c *Client) WatchCustomer(ctx context.Context, id string, opts WatchOptions) *Watch {
	return c.WatchScope(ctx, ordercast.Party{Kind: ordercast.PartyCustomer, ID: id}, opts)
}

// NextScoped returns the next update of a party watch. Events come in the party log's order,
// each at most once: after a dropped connection the watch resumes after the last position
// returned and skips any position it has already returned (counted in Duplicates). A snapshot
// may come mid-stream (see ScopeUpdate): replace your state with it. Couriers' positions go to
// WatchOptions.OnLocation, as with Next. A party stream does not end by itself. The contexts
// work as Next's do: bound the watch with the one given to WatchScope, not each call.
func (w *Watch) NextScoped(ctx context.Context) (ScopeUpdate, error) {
	if w.party == nil {
		return ScopeUpdate{}, errors.New("client: an order watch is read with Next")
	}
	for {
		sev, received, err := w.nextSSE(ctx)
		if err != nil {
			return ScopeUpdate{}, err
		}
		var u ScopeUpdate
		switch sev.Type {
		case api.EventSnapshot:
			u.Snapshot = new(api.PartySnapshot)
			err = json.Unmarshal([]byte(sev.Data), u.Snapshot)
		case api.EventStatus, api.EventCourier:
			u.Event = new(ordercast.Event)
			err = json.Unmarshal([]byte(sev.Data), u.Event)
		case api.EventLocation:
			if err := w.location(sev, received); err != nil {
				_, err = w.finish(err)
				return ScopeUpdate{}, err
			}
			continue
		case api.EventEnd:
			if err := w.streamEnded(sev); err != nil {
				_, err = w.finish(err)
				return ScopeUpdate{}, err
			}
			continue
		default:
			w.delivered = true
			continue // other kinds may be added by the server
		}
		if err != nil {
			_, err = w.finish(fmt.Errorf("watch %s: decode %s %q: %w", w.orderID, sev.Type, sev.ID, err))
			return ScopeUpdate{}, err
		}
		if u.Pos, err = strconv.ParseInt(sev.ID, 10, 64); err != nil || u.Pos < 0 {
			_, err = w.finish(fmt.Errorf("watch %s: server sent id %q, not a log position", w.orderID, sev.ID))
			return ScopeUpdate{}, err
		}
		if u.Event != nil {
			if w.opts.OnEvent != nil {
				w.opts.OnEvent(*u.Event, received)
			}
			if u.Pos <= w.lastID.Load() {
				w.duplicates.Add(1)
				continue // already returned, typically replayed around a reconnect
			}
		}
		// A snapshot is state, not history: it is returned even at a position the watch has,
		// and the watch goes on after its position.
		w.lastID.Store(u.Pos)
		w.placed = true
		w.failures = 0
		w.delivered = true
		return u, nil
	}
}
