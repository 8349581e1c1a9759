package server

import (
	"fmt"
	"net/http"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

// PartyCookie is the name of the HttpOnly cookie that carries a party's actor token from the
// ?token= hand-over to its page. Its path is the page's, so each party's cookie goes only there.
const PartyCookie = "ordercast_party"

// boardPage is what the board template shows: a party's live orders. The script does the rest.
type boardPage struct {
	Title    string
	Kind     ordercast.PartyKind
	ID       string
	Token    string // the actor token its script sends, from the hand-over cookie
	ReadOnly bool   // a customer watches; a restaurant also assigns couriers and moves orders
	// Problem says why a token handed over was refused; the page then opens no stream.
	Problem string
}

// handleRestaurantBoard serves GET /restaurants/{pid}: the restaurant's board, its active orders
// live over its one stream (GET /v1/restaurants/{pid}/stream), with courier assignment and
// status changes. It opens with ?token=… (see partyPage).
func (s *Server) handleRestaurantBoard(w http.ResponseWriter, r *http.Request) {
	s.partyPage(w, r, ordercast.PartyRestaurant)
}

// handleCustomerPage serves GET /customers/{pid}: the customer's live orders over its one stream
// (GET /v1/customers/{pid}/stream), read only.
func (s *Server) handleCustomerPage(w http.ResponseWriter, r *http.Request) {
	s.partyPage(w, r, ordercast.PartyCustomer)
}

// partyPage serves a party's page. With ?token=… a token that may watch the party goes into the
// page's cookies (partyCookies), and the browser is sent to the clean URL, so the token leaves the
// address bar and the history, as on the tracking page; the page then hands the page cookie's
// token to its script, which sends it as a bearer token, and its EventSource sends the stream
// cookie (a cookie never authorizes a change). A token that may not watch the party clears both
// cookies and the page says why: the page must not go on as an earlier hand-over's token. In demo
// mode (Auth.ConsoleToken) a page without a cookie gets a token of the party.
func (s *Server) partyPage(w http.ResponseWriter, r *http.Request, kind ordercast.PartyKind) {
	p := ordercast.Party{Kind: kind, ID: r.PathValue("pid")}
	if err := ordercast.ValidatePartyID(p.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	cookies := partyCookies(p)
	page := boardPage{Kind: kind, ID: p.ID, ReadOnly: kind != ordercast.PartyRestaurant}
	page.Title = map[ordercast.PartyKind]string{
		ordercast.PartyRestaurant: "Restaurant " + p.ID,
		ordercast.PartyCustomer:   "Orders of " + p.ID,
	}[kind]
	if tok := r.URL.Query().Get("token"); tok != "" {
		if s.Auth == nil { // an open server needs no token: keep none, and clean the address
			s.handOverToken(w, r, cookies, "")
			return
		}
		err := s.partyToken(tok, p)
		if err == nil {
			s.handOverToken(w, r, cookies, tok)
			return
		}
		s.setPageCookies(w, r, cookies, "")
		// The address holds the token: not in a Referer either (the page's script takes it out
		// of the address bar).
		w.Header().Set("Referrer-Policy", "no-referrer")
		page.Problem = "That token was not accepted: " + ordercast.ErrorMessage(err)
		s.renderPage(w, r, errorStatus(err), "board.html", page)
		return
	}
	if c, err := r.Cookie(PartyCookie); err == nil {
		page.Token = c.Value
	} else if s.Auth != nil && s.Auth.ConsoleToken {
		role := map[ordercast.PartyKind]auth.Role{ordercast.PartyRestaurant: auth.RoleRestaurant, ordercast.PartyCustomer: auth.RoleCustomer}[kind]
		tok, err := s.Auth.Tokens.SignActor(auth.Actor{Role: role, Sub: p.ID}, consoleTokenTTL)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("sign demo party token: %w", err))
			return
		}
		page.Token = tok
	}
	s.setStreamCookie(w, r, cookies, page.Token)
	s.renderPage(w, r, http.StatusOK, "board.html", page)
}

// partyToken decides whether tok, handed to party p's page, may watch the party.
func (s *Server) partyToken(tok string, p ordercast.Party) error {
	actor, err := s.Auth.Tokens.ParseActor(tok)
	if err != nil {
		return err
	}
	return actor.PermitParty(p)
}
