package sqlite

import "github.com/ordercast/ordercast"

// recentOrders is the writer's memory of the orders it read or wrote lately, each with its latest
// event: a batch takes an order from here instead of reading it with the load statement, which
// was a tenth of the writer's work. Only the writer goroutine uses it, so it has no lock.
//
// It is exactly what the database holds because it changes only after a commit (remember) and
// is forgotten whole when anything else may have written the file: a batch that fails (its
// outcome may be unknown), or a commit by another connection or process, which SQLite's
// data_version reports (checked once per batch, under the write lock).
type recentOrders struct {
	max     int64 // bytes; <= 0 remembers nothing
	size    int64
	orders  map[string]recentOrder
	version int64 // data_version at the last check; -1 before the first
}

type recentOrder struct {
	order  ordercast.Order
	latest ordercast.Event
	cost   int64
}

func newRecentOrders(max int64) *recentOrders {
	return &recentOrders{max: max, orders: map[string]recentOrder{}, version: -1}
}

// validate forgets everything when version, the connection's data_version read inside the
// batch's transaction, says another connection committed since the last check.
func (r *recentOrders) validate(version int64) {
	if version != r.version {
		r.forget()
		r.version = version
	}
}

func (r *recentOrders) get(id string) (ordercast.Order, ordercast.Event, bool) {
	e, ok := r.orders[id]
	return e.order, e.latest, ok
}

// remember keeps the committed state of order o, dropping other orders (whichever the map's
// iteration yields first) while over the bound.
func (r *recentOrders) remember(o ordercast.Order, latest ordercast.Event) {
	if r.max <= 0 {
		return
	}
	cost := entryCost(o, latest)
	if old, ok := r.orders[o.ID]; ok {
		r.size -= old.cost
	}
	r.orders[o.ID] = recentOrder{order: o, latest: latest, cost: cost}
	r.size += cost
	if r.size <= r.max {
		return
	}
	for id, e := range r.orders {
		if r.size <= r.max {
			break
		}
		if id != o.ID {
			delete(r.orders, id)
			r.size -= e.cost
		}
	}
}

func (r *recentOrders) forget() {
	clear(r.orders)
	r.size = 0
}

// entryCost approximates the memory an entry holds: the structs, the map's share and the
// strings and details they point to.
func entryCost(o ordercast.Order, ev ordercast.Event) int64 {
	const fixed = 512
	return fixed + int64(len(o.ID)+len(o.Details)+len(o.RestaurantID)+len(o.CustomerID)+len(o.CourierID)+
		len(ev.Note)+len(ev.Actor)+len(ev.CourierID))
}
