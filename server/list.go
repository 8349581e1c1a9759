package server

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// handleListOrders serves GET /v1/orders: a page of orders, ended ones too, oldest created first,
// for a point of sale that rebuilds or reconciles its day, or newest first, for an agent who looks
// up a customer's last orders. Admin and system list every order (or
// one restaurant's), a restaurant its own; a courier, a customer and a tracking token none (their
// party streams hold their active orders). One customer's orders (customer_id, an access
// request's export) only admin and system list.
func (s *Server) handleListOrders(w http.ResponseWriter, r *http.Request) {
	q, err := listQuery(r)
	if err == nil {
		q.RestaurantID, err = s.listScope(r, q.RestaurantID, q.CustomerID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// One more than the page, to know whether a page follows.
	limit := q.Limit
	q.Limit++
	orders, err := s.Store.ListOrders(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := api.ListOrdersResponse{Orders: orders}
	if len(orders) > limit {
		res.Orders = orders[:limit]
		res.Next = q.Next(orders[limit-1]).String()
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

// listQuery reads GET /v1/orders' query: each parameter once, a status, RFC 3339 times, a way
// to list them, a cursor this server gave, a limit from 1 to api.MaxOrdersPerPage. (Any other parameter was
// refused before: knownQuery.)
func listQuery(r *http.Request) (ordercast.OrderQuery, error) {
	q := ordercast.OrderQuery{Limit: api.DefaultOrdersPerPage}
	v := map[string]string{}
	// A filter or a cursor sent empty is refused (filledQuery): read as absent, it would list
	// every customer's orders as one's, or every page again from the first.
	filled := []string{api.ParamRestaurantID, api.ParamCustomerID, api.ParamStatus, api.ParamCursor}
	for _, name := range api.QueryParams[api.RouteListOrders] {
		read := query
		if slices.Contains(filled, name) {
			read = filledQuery
		}
		var err error
		if v[name], err = read(r, name); err != nil {
			return q, err
		}
	}
	q.RestaurantID, q.CustomerID, q.Status = v[api.ParamRestaurantID], v[api.ParamCustomerID], ordercast.Status(v[api.ParamStatus])
	switch v[api.ParamOrder] {
	case "", api.OrderOldest:
	case api.OrderNewest:
		q.Newest = true
	default:
		return q, ordercast.Errorf(ordercast.EInvalid, "%s must be %s or %s, not %s", api.ParamOrder, api.OrderOldest, api.OrderNewest, ordercast.Quote(v[api.ParamOrder]))
	}
	for name, t := range map[string]*time.Time{api.ParamSince: &q.Since, api.ParamUntil: &q.Until} {
		if v[name] == "" {
			continue
		}
		var err error
		if *t, err = time.Parse(time.RFC3339Nano, v[name]); err != nil {
			hint := ""
			if strings.Contains(v[name], " ") {
				// "+01:00" unencoded in a query reads as " 01:00": a URL's + is a space.
				hint = ": a + in a query string must be sent as %2B"
			}
			return q, ordercast.Errorf(ordercast.EInvalid, "%s must be an RFC 3339 time (2026-12-06T00:00:00Z), not %s%s", name, ordercast.Quote(v[name]), hint)
		}
	}
	if c := v[api.ParamCursor]; c != "" {
		cursor, err := ordercast.ParseCursor(c)
		if err != nil {
			return q, err
		}
		q.After = &cursor
	}
	if l := v[api.ParamLimit]; l != "" {
		// Above the maximum is refused, not cut down, as on GET …/events.
		n, ok := parseNonNegative(l)
		if !ok || n < 1 || n > api.MaxOrdersPerPage {
			return q, ordercast.Errorf(ordercast.EInvalid, "%s must be an integer from 1 to %d", api.ParamLimit, api.MaxOrdersPerPage)
		}
		q.Limit = int(n)
	}
	return q, q.Validate()
}

// listScope decides whose orders r may list when it asks for restaurant's ("" every
// restaurant's) and customer's ("" every customer's), and returns the restaurant the list is
// bound to (auth.Actor.PermitList, auth.Actor.PermitCustomerOrders). On an open server, or with
// public tracking, anyone lists every order, as anyone reads each.
func (s *Server) listScope(r *http.Request, restaurant, customer string) (string, error) {
	if s.Auth == nil || s.Auth.PublicTracking {
		return restaurant, nil
	}
	actor, err := s.readingActor(r)
	if err != nil {
		return "", err
	}
	if customer != "" {
		if err := actor.PermitCustomerOrders(); err != nil {
			return "", err
		}
	}
	return actor.PermitList(restaurant)
}
