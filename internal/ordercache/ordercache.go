// Package ordercache is a store writer's memory of the orders in progress it committed or read
// lately, each with its latest event: a batch takes an order from here instead of reading it,
// which was a tenth of the SQLite writer's work and is a whole round trip on PostgreSQL.
//
// What it holds was exactly the database's state at some commit; the store decides how far to
// trust it. The SQLite writer is the file's only writer and forgets everything when SQLite says
// another connection committed (Forget). A PostgreSQL node shares its database with other nodes:
// it follows their commits from its listener (Follow) and writes what it judged from here only
// under a guard that fails the transaction if the order moved meanwhile.
package ordercache

import (
	"sync"

	"github.com/ordercast/ordercast"
)

// DefaultSize is a store's default bound: about 30,000 orders in progress, of small details.
const DefaultSize = 16 << 20

// Cache is bounded by the bytes its entries hold. It is safe for concurrent use: a PostgreSQL
// node's listener follows commits while its writer reads and remembers.
type Cache struct {
	max int64 // bytes; <= 0 remembers nothing

	mu     sync.Mutex
	size   int64
	orders map[string]entry
}

type entry struct {
	order  ordercast.Order
	latest ordercast.Event
	cost   int64
}

// New returns a cache of at most max bytes; max <= 0 remembers nothing.
func New(max int64) *Cache {
	return &Cache{max: max, orders: map[string]entry{}}
}

// Get returns order id and its latest event, if remembered.
func (c *Cache) Get(id string) (ordercast.Order, ordercast.Event, bool) {
	c.mu.Lock()
	e, ok := c.orders[id]
	c.mu.Unlock()
	return e.order, e.latest, ok
}

// Remember keeps the committed state of order o, which this writer committed or read, unless a
// later version of it is remembered: a PostgreSQL node's listener may follow another node's
// commit past it before its writer gets here. Other orders are dropped (whichever the map's
// iteration yields first) while over the bound; an order that has ended is forgotten.
func (c *Cache) Remember(o ordercast.Order, latest ordercast.Event) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.orders[o.ID]; ok && e.order.Version > o.Version {
		return
	}
	c.put(o, latest)
}

// put is Remember with c.mu held. An order that has ended is forgotten instead: it takes no
// more changes (a write to it reads it, and is refused), and ended orders kept would pile up to
// the bound and crowd out the orders still in progress, which random eviction would then drop
// in proportion.
func (c *Cache) put(o ordercast.Order, latest ordercast.Event) {
	if o.Status.Terminal() {
		c.forget(o.ID)
		return
	}
	cost := entryCost(o, latest)
	if old, ok := c.orders[o.ID]; ok {
		c.size -= old.cost
	}
	c.orders[o.ID] = entry{order: o, latest: latest, cost: cost}
	c.size += cost
	if c.size <= c.max {
		return
	}
	for id, e := range c.orders {
		if c.size <= c.max {
			break
		}
		if id != o.ID {
			delete(c.orders, id)
			c.size -= e.cost
		}
	}
}

// Learn keeps order o, committed by another writer, unless a later version of it is remembered.
func (c *Cache) Learn(o ordercast.Order, latest ordercast.Event) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.orders[o.ID]; !ok || e.order.Version < o.Version {
		c.put(o, latest)
	}
}

// Follow takes in an event committed by another writer: a remembered order it is the next event
// of moves on (ordercast.Order.Follow); one it skips ahead of is forgotten; an event the order
// already has (this writer's own, coming back) changes nothing.
func (c *Cache) Follow(ev ordercast.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.orders[ev.OrderID]
	if !ok || ev.Seq <= e.order.Version {
		return
	}
	if o, ok := e.order.Follow(ev); ok {
		c.put(o, ev.Wire()) // a store's rows carry no marks; neither does what stands for them
		return
	}
	c.forget(ev.OrderID)
}

// ForgetOrders forgets the given orders.
func (c *Cache) ForgetOrders(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.forget(id)
	}
}

func (c *Cache) forget(id string) {
	if e, ok := c.orders[id]; ok {
		delete(c.orders, id)
		c.size -= e.cost
	}
}

// Forget forgets every order.
func (c *Cache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.orders)
	c.size = 0
}

// Len returns how many orders are remembered.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.orders)
}

// entryCost approximates the memory an entry holds: the structs, the map's share and the
// strings and details they point to.
func entryCost(o ordercast.Order, ev ordercast.Event) int64 {
	const fixed = 512
	return fixed + int64(len(o.ID)+len(o.Details)+len(o.RestaurantID)+len(o.CustomerID)+len(o.CourierID)+
		len(ev.Note)+len(ev.Actor)+len(ev.CourierID))
}
