package server

import (
	"net/http"

	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// handleEraseCustomer serves POST /v1/customers/{pid}/erase: an erasure request (GDPR Art. 17).
// It removes the personal data of the customer's ended orders and keeps what accounting needs
// (ordercast.CustomerEraser), and answers what it changed. Only admin and system, by the
// Authorization header as every change. While an order of the customer is in progress it is 409
// customer_has_active_orders and nothing changes; a second erasure answers 200 with zeros.
//
// POST to an action, not DELETE /v1/customers/{id}: the API has no customer resource to
// delete (the orders stay, anonymised), and the answer is a report of what was done.
func (s *Server) handleEraseCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("pid")
	actor, ok := s.actionRequest(w, r, auth.Actor.PermitErase, "an erasure is idempotent: a repeat answers zeros")
	if !ok {
		return
	}
	// The store judges the id (422 invalid_argument) before it writes anything.
	e, err := s.Store.EraseCustomer(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The customer's id is named here, not left to the request's own line, which --request-log
	// refused logs at debug: this line is the record of whom an erasure was for, to erase again
	// after a database is restored from a copy older than it.
	s.Logger.Info("erased a customer's personal data", "request_id", RequestID(r.Context()), "customer", id, "actor", actor.Sub, "role", actor.Role,
		"orders", e.Orders, "notes", e.Notes, "log_entries", e.LogEntries, "positions", e.Positions)
	s.writeJSON(w, r, http.StatusOK, api.EraseCustomerResponse{CustomerID: id, Erasure: e})
}
