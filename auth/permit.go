package auth

import (
	"slices"

	"github.com/ordercast/ordercast"
)

// Action is what a request does to an order.
type Action string

// The actions on an order.
const (
	ActRead          Action = "read"           // GET the order or its events, watch it
	ActSetStatus     Action = "set_status"     // POST …/status
	ActAssignCourier Action = "assign_courier" // PUT …/courier
)

// grant is what one role may do: as which kind of party it owns orders (a party role acts only
// on the orders its sub owns), and which actions and statuses it may use there.
type grant struct {
	// any says the role acts on every order and may do everything (admin, system); every, that
	// it acts on every order with its actions and statuses alone (support). No party owns the
	// orders either may touch.
	any, every bool
	party      ordercast.PartyKind // the orders it owns: Order.Owns(Party{party, sub})
	actions    []Action
	statuses   []ordercast.Status // ActSetStatus: the statuses it may set
	// notBefore[to] is the stage an order must have reached for the role to set status to: its
	// part of the order begins there (StatusChange.NotBefore).
	notBefore map[ordercast.Status]ordercast.Status
	// until is the stage from which the role changes the order no more: no status, no courier
	// (StatusChange.Before, CourierChange.Before). Dispatch may still.
	until ordercast.Status
	// lists says the role lists its orders, every one, ended ones too (GET /v1/orders): a
	// restaurant's point of sale rebuilds and reconciles its day. A courier's and a customer's
	// party streams hold their active orders; whatever else they had is the platform's to show.
	lists bool
}

// permissions is the one table of who may do what. A role absent here may do nothing.
var permissions = map[Role]grant{
	RoleAdmin:  {any: true},
	RoleSystem: {any: true},
	roleAnyone: {any: true},
	RoleRestaurant: {
		party:    ordercast.PartyRestaurant,
		actions:  []Action{ActRead, ActSetStatus, ActAssignCourier},
		statuses: []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady, ordercast.StatusCancelled},
		// A restaurant's part ends when the courier picks the order up. A courier's position
		// is shown from out_for_delivery, which the courier sets itself by picking the order
		// up: a restaurant that could hand an order already out for delivery to a courier it
		// names would follow that courier on its own rounds, who never agreed. And the courier
		// has the food: a restaurant that took the courier away would leave an order out for
		// delivery that no courier may deliver, and one that cancelled it would take the
		// courier's delivery from under them on the road. Both are dispatch's to do then.
		until: ordercast.StatusOutForDelivery,
		lists: true,
	},
	RoleCourier: {
		party:    ordercast.PartyCourier,
		actions:  []Action{ActRead, ActSetStatus},
		statuses: []ordercast.Status{ordercast.StatusOutForDelivery, ordercast.StatusDelivered},
		// A courier picks up only what the restaurant has accepted (its page offers pickup at
		// ready; a kitchen that forgot to mark it ready must not hold the courier at the
		// counter), and delivers only what it picked up: a courier assigned early cannot end an
		// order the kitchen never made.
		notBefore: map[ordercast.Status]ordercast.Status{
			ordercast.StatusOutForDelivery: ordercast.StatusConfirmed,
			ordercast.StatusDelivered:      ordercast.StatusOutForDelivery,
		},
	},
	RoleCustomer: {
		party:   ordercast.PartyCustomer,
		actions: []Action{ActRead},
	},
	RoleSupport: {
		every:    true,
		actions:  []Action{ActRead, ActSetStatus, ActAssignCourier},
		statuses: ordercast.Statuses,
		lists:    true,
	},
}

// Party is the party a acts as: its role's kind of party and its sub. Admin, system and a party
// role without a sub act as no party (the zero Party), which owns no order.
func (a Actor) Party() ordercast.Party {
	g := permissions[a.Role]
	if g.party == "" || a.Sub == "" {
		return ordercast.Party{}
	}
	return ordercast.Party{Kind: g.party, ID: a.Sub}
}

// Privileged reports whether a acts on every order and may do everything: admin and system.
func (a Actor) Privileged() bool { return permissions[a.Role].any }

// ActsOnEvery reports whether a acts on every order, within its role's actions: admin, system
// and support. No order's owner is checked for it.
func (a Actor) ActsOnEvery() bool {
	g := permissions[a.Role]
	return g.any || g.every
}

// MayDo reports whether a's role may do act at all (on its own orders, for a party role), and
// for ActSetStatus whether it may set status to ("": any status). Ownership is the other half:
// see Permit.
func (a Actor) MayDo(act Action, to ordercast.Status) bool {
	g := permissions[a.Role]
	if g.any {
		return true
	}
	if !slices.Contains(g.actions, act) {
		return false
	}
	return act != ActSetStatus || to == "" && len(g.statuses) > 0 || slices.Contains(g.statuses, to)
}

// NotBefore is the stage an order must have reached for a to move it to status to ("" when any
// stage will do): see StatusChange.NotBefore.
func (a Actor) NotBefore(to ordercast.Status) ordercast.Status {
	return permissions[a.Role].notBefore[to]
}

// Until is the stage from which a changes an order no more, neither its status nor its courier
// ("" when a may at any stage): see StatusChange.Before and CourierChange.Before.
func (a Actor) Until() ordercast.Status { return permissions[a.Role].until }

// Settable lists the statuses a may set (on its own orders, for a party role), in the order of
// ordercast.Statuses: what a page acting as a offers.
func (a Actor) Settable() []ordercast.Status {
	var out []ordercast.Status
	for _, st := range ordercast.Statuses {
		if a.MayDo(ActSetStatus, st) {
			out = append(out, st)
		}
	}
	return out
}

// PermitAction decides whether a's role may do act at all (to is the status of ActSetStatus, ""
// for any): MayDo, with the refusal. Which orders it may do it to is Permit's, or the write's owner check.
func (a Actor) PermitAction(act Action, to ordercast.Status) error {
	switch {
	case a.MayDo(act, to):
		return nil
	case act == ActSetStatus && to == "":
		return ordercast.Errorf(ordercast.EForbidden, "role %s may not change an order's status", a.Role)
	case act == ActSetStatus:
		return ordercast.Errorf(ordercast.EForbidden, "role %s may not set status %s", a.Role, to)
	case act == ActAssignCourier:
		return ordercast.Errorf(ordercast.EForbidden, "role %s may not assign couriers", a.Role)
	}
	return ordercast.Errorf(ordercast.EForbidden, "role %s may not %s", a.Role, act)
}

// Permit decides whether a may do act to order o (to is the status of ActSetStatus): its role
// must allow the action and, unless privileged, a must own o. The refusal says nothing about o.
func (a Actor) Permit(act Action, o ordercast.Order, to ordercast.Status) error {
	if err := a.PermitAction(act, to); err != nil {
		return err
	}
	if a.ActsOnEvery() || o.Owns(a.Party()) {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "the order does not belong to this %s", a.Role)
}

// PermitParty decides whether a may watch party p's stream: admin, system and support any
// party, a party role only itself.
func (a Actor) PermitParty(p ordercast.Party) error {
	if a.ActsOnEvery() || (p.ID != "" && a.Party() == p) {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "role %s may not watch the stream of %s %s", a.Role, p.Kind, p.ID)
}

// PermitList decides which orders a may list (GET /v1/orders) when it asks for restaurant's
// ("" every restaurant's), and returns the restaurant the list is bound to: admin, system and
// support any they ask for; a party role that lists (grant.lists) its own, whichever it asked
// for.
func (a Actor) PermitList(restaurant string) (string, error) {
	g := permissions[a.Role]
	switch p := a.Party(); {
	case g.any, g.every:
		return restaurant, nil
	case !g.lists:
		return "", ordercast.Errorf(ordercast.EForbidden, "role %s may not list orders: its party stream holds its active ones", a.Role)
	case p == (ordercast.Party{}):
		return "", ordercast.Errorf(ordercast.EForbidden, "a %s token without a sub lists no order", a.Role)
	case restaurant != "" && restaurant != p.ID:
		return "", ordercast.Errorf(ordercast.EForbidden, "role %s may list only its own orders (restaurant_id %s)", a.Role, p.ID)
	}
	return a.Sub, nil
}

// PermitCustomerOrders decides whether a may list one customer's orders, every one, ended ones
// too (GET /v1/orders?customer_id=): admin and system, the platform's operators answering an
// access request, and support, answering the customer's call. Not the customer: their party
// stream holds their active orders.
func (a Actor) PermitCustomerOrders() error {
	if a.ActsOnEvery() {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "only an admin, system or support token may list a customer's orders")
}

// PermitErase decides whether a may erase one customer's data (POST
// /v1/customers/{id}/erase): only admin and system. An erasure cannot be undone and is the
// platform's decision to make, not an agent's on a call, nor the customer's.
func (a Actor) PermitErase() error {
	if a.Privileged() {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "only an admin or system token may erase a customer's data")
}

// PermitTrackingToken decides whether a may have a tracking token made for any order (POST
// /v1/orders/{id}/tracking-token): admin, system and support, who send a customer their link
// again. Not a restaurant, for the reason it creates no order (Role.MayCreate): it would mint
// watch access at will; nor a customer, whose own token reads their orders.
func (a Actor) PermitTrackingToken() error {
	if a.ActsOnEvery() {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "only an admin, system or support token may have a tracking token made")
}

// PermitCreate decides whether a may create an order (Role.MayCreate).
func (a Actor) PermitCreate() error {
	if a.Role.MayCreate() {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "role %s may not create orders", a.Role)
}

// PermitPosition decides whether a may report courier courierID's position: the courier itself,
// or a privileged actor (dispatch integrations, tests). Everyone else is refused, whatever the
// position would reach.
func (a Actor) PermitPosition(courierID string) error {
	if a.Privileged() || a.Role == RoleCourier && a.Sub == courierID {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "only courier %s may report its position", courierID)
}

// PermitMany decides whether a may send a request of many items, which may touch any order or
// courier (what names it, for the refusal): only a privileged actor may. A party acts for itself
// only, one order or one courier at a time.
func (a Actor) PermitMany(what string) error {
	if a.Privileged() {
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "only an admin or system token may %s", what)
}
