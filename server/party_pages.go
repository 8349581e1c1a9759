package server

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

// PartyCookie is the name of the HttpOnly cookie that carries a party's actor token from the
// ?token= hand-over to its page. Its path is the page's, so each party's cookie goes only there.
const PartyCookie = "ordercast_party"

// boardPage is what the board template shows: a party's live orders. The script does the rest.
type boardPage struct {
	Title    string
	Heading  string // the list's
	Kind     ordercast.PartyKind
	ID       string
	Token    string // the actor token its script sends, from the hand-over cookie
	ReadOnly bool   // a customer watches; a restaurant and a courier move orders on
	// ShareLocation offers a courier to share its phone's position (the server takes positions).
	ShareLocation bool
	// LocationFrom is the first stage at which the server shows a courier's position
	// (--location-from): the page sends none while none of its orders is there.
	LocationFrom ordercast.Status
	// LocationMaxAge is how old a position may be when the server takes it (--location-max-age):
	// the page asks the browser for a fresh fix rather than post one older.
	LocationMaxAge time.Duration
	// Driven names a courier that the demo's simulator drives and posts the positions of: its
	// page says so, rather than offer to share a phone's position that nobody is carrying and
	// say "off" while customers watch the courier move.
	Driven string
	// Problem says why a token handed over was refused; the page then opens no stream.
	Problem string
	// TokenRefused says that Problem is a token's refusal, not the want of one: the connection
	// indicator then says "token refused" rather than "needs a token".
	TokenRefused bool
	// MaySet lists the statuses whom Token acts for may set (maySet).
	MaySet string
	// AssignBefore is the stage from which whom Token acts for may no longer choose a courier
	// or take it away (assignBefore): "" at any stage, "never" where only dispatch assigns.
	AssignBefore string
	// Until is the stage from which whom Token acts for changes an order no more, neither its
	// status nor its courier (auth.Actor.Until): "" at any stage.
	Until ordercast.Status
	// Demo marks a page of demo mode (demoPages).
	Demo bool
	// AskNewLink is what the page tells its reader to do once the server no longer takes its
	// token (askNewLink); its script says it too, when a change is refused mid-shift.
	AskNewLink string
}

// handleRestaurantBoard serves GET /restaurants/{pid}: the restaurant's board, its active orders
// live over its one stream (GET /v1/restaurants/{pid}/stream), with courier assignment and
// status changes. It opens with ?token=… (see partyPage).
func (s *Server) handleRestaurantBoard(w http.ResponseWriter, r *http.Request) {
	s.partyPage(w, r, ordercast.PartyRestaurant)
}

// handleCourierPage serves GET /couriers/{pid}: the courier's orders live over its one stream
// (GET /v1/couriers/{pid}/stream), each with the courier's next step (picked up, delivered), and
// the sharing of the phone's position (POST /v1/couriers/{pid}/location, static/courier.js).
func (s *Server) handleCourierPage(w http.ResponseWriter, r *http.Request) {
	s.partyPage(w, r, ordercast.PartyCourier)
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
// cookie (a cookie never authorizes a change). A token that may not watch the party is refused
// on a page that says why and streams as no one, leaving the cookies alone (see below). The
// page cookie's token is checked the same way on every visit, since it expires: one no longer
// accepted clears both cookies, and the page says why or, in demo mode (Auth.ConsoleToken),
// where a page without a cookie gets a token of the party, gets a fresh one.
func (s *Server) partyPage(w http.ResponseWriter, r *http.Request, kind ordercast.PartyKind) {
	p := ordercast.Party{Kind: kind, ID: r.PathValue("pid")}
	if err := ordercast.ValidatePartyID(p.ID); err != nil {
		s.badPartyID(w, r, p.Kind)
		return
	}
	cookies := partyCookies(p)
	kindPage := partyPages[kind]
	page := boardPage{
		Title: kindPage.title + partyName(s.PartyLinks, p), Heading: kindPage.heading, Kind: kind, ID: p.ID,
		ReadOnly:      kind == ordercast.PartyCustomer,
		ShareLocation: kind == ordercast.PartyCourier && s.Locations != nil,
		Demo:          s.demoPages(),
		AskNewLink:    askNewLink(kind),
	}
	if page.ShareLocation {
		page.LocationFrom = ordercast.LocationFrom(s.Locations.From)
		page.LocationMaxAge = cmp.Or(s.Locations.MaxAge, ordercast.DefaultLocationMaxAge)
		if page.Demo && slices.ContainsFunc(s.PartyLinks, func(l PartyLink) bool { return l.Party == p }) {
			page.Driven = partyName(s.PartyLinks, p)
		}
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		if s.Auth == nil { // an open server needs no token: keep none, and clean the address
			s.handOverToken(w, r, cookies, "")
			return
		}
		_, err := s.partyToken(tok, p)
		if err == nil {
			s.handOverToken(w, r, cookies, tok)
			return
		}
		// The cookies stay as they are. This answer says the token was refused and streams as
		// no one, but any site can send a browser here with a bad token: were the cookies
		// cleared, a link in a mail could sign a restaurant's board out mid-shift. A stale
		// cookie is cleared on the visit that finds it refused (below).
		//
		// The address holds the token: not in a Referer either (the page's script takes it out
		// of the address bar).
		w.Header().Set("Referrer-Policy", "no-referrer")
		page.Problem, page.TokenRefused = tokenRefused(err, page.AskNewLink), true
		s.renderPage(w, r, errorStatus(err), "board.html", page)
		return
	}
	if s.Auth == nil { // an open server needs no token, and its page offers every status
		s.renderPage(w, r, http.StatusOK, "board.html", page)
		return
	}
	if c, err := r.Cookie(PartyCookie); err == nil {
		actor, err := s.partyToken(c.Value, p)
		switch {
		case err == nil:
			s.actAs(&page, c.Value, actor)
		case s.Auth.ConsoleToken:
			// A fresh token follows, into the stream's cookie: only the page's goes.
			http.SetCookie(w, s.tokenCookie(r, cookies.name, cookies.page, ""))
		default:
			s.setPageCookies(w, r, cookies, "")
			page.Problem = "The token this page was opened with is no longer accepted (" + ordercast.ErrorMessage(err) +
				"); " + page.AskNewLink
			page.TokenRefused = true
		}
	}
	if page.Token == "" && page.Problem == "" && !s.Auth.ConsoleToken && !s.Auth.PublicTracking {
		// Nothing to stream as: say how to get in, rather than the stream's bare refusal.
		page.Problem = "This page opens from the link you were given, which ends in ?\u2060token=…: open that link again."
		s.renderPage(w, r, http.StatusUnauthorized, "board.html", page)
		return
	}
	if page.Token == "" && page.Problem == "" && s.Auth.ConsoleToken {
		actor := auth.Actor{Role: kindPage.role, Sub: p.ID}
		tok, err := s.Auth.Tokens.SignActor(actor, consoleTokenTTL)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("sign demo party token: %w", err))
			return
		}
		s.actAs(&page, tok, actor)
	}
	s.setStreamCookie(w, r, cookies, page.Token)
	s.renderPage(w, r, http.StatusOK, "board.html", page)
}

// partyPages says what differs between the pages of each kind of party: the title (before the
// party's name, or its id), the list's heading, and the role of the token demo mode mints for the page.
var partyPages = map[ordercast.PartyKind]struct {
	title, heading string
	role           auth.Role
}{
	ordercast.PartyRestaurant: {"Restaurant ", "Active orders", auth.RoleRestaurant},
	ordercast.PartyCourier:    {"Courier ", "Your deliveries", auth.RoleCourier},
	ordercast.PartyCustomer:   {"Orders of ", "Your orders", auth.RoleCustomer},
}

// askNewLink is what a party's page tells its reader to do once the server no longer takes the
// token its link carried (expired, revoked, or not this party's): to get a new link. Opening the
// same link again cannot help, as it carries the same token. A courier's links come from
// dispatch, or from the app the courier works in.
func askNewLink(kind ordercast.PartyKind) string {
	if kind == ordercast.PartyCourier {
		return "ask dispatch, or the app that gave you this page, for a new link."
	}
	return "ask for a new link where you got this one."
}

// partyToken decides whether tok, handed to party p's page, may watch the party, and says whom it
// acts for.
func (s *Server) partyToken(tok string, p ordercast.Party) (auth.Actor, error) {
	actor, err := s.Auth.Tokens.ParseActor(tok)
	if err != nil {
		return auth.Actor{}, err
	}
	return actor, actor.PermitParty(p)
}

// badPartyID answers a party page's address whose party id cannot be one.
// The id is not repeated, as badOrderID says.
func (s *Server) badPartyID(w http.ResponseWriter, r *http.Request, kind ordercast.PartyKind) {
	s.renderError(w, r, http.StatusNotFound, "No such "+string(kind), fmt.Sprintf(
		"This address names no %s: an id is 1 to %d letters, digits and the characters . _ : -. Check the link you were given.", kind, ordercast.MaxIDLength))
}

// handlePartyTrack serves GET /restaurants/{pid}/track/{id}, GET /couriers/{pid}/track/{id} and
// GET /customers/{pid}/track/{id}, where a party's page links each of its orders. As the
// console's link does (handleConsoleTrack), it hands the page's token to trackWith, which hands
// the tracking page a credential for the order when that token may watch it: the page's cookie,
// whose path is the page's, comes along to this path below it and goes nowhere near /track. A
// courier's page opens the courier's view of the tracking page, a restaurant's board the
// restaurant's (trackingPagePath), each with a link back to the page; a customer's page opens
// the customer's.
func (s *Server) handlePartyTrack(kind ordercast.PartyKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := ordercast.Party{Kind: kind, ID: r.PathValue("pid")}
		if err := ordercast.ValidatePartyID(p.ID); err != nil {
			s.badPartyID(w, r, p.Kind)
			return
		}
		id := r.PathValue("id")
		if err := ordercast.ValidateID(id); err != nil {
			s.badOrderID(w, r)
			return
		}
		var tok string
		if c, err := r.Cookie(PartyCookie); err == nil {
			tok = c.Value
		}
		var viewer ordercast.Party
		if _, ok := trackViews[kind]; ok {
			viewer = p
		}
		s.trackWith(w, r, id, tok, viewer)
	}
}

// actAs makes page act as actor, with its token tok: what its script sends, and which of its
// controls it offers at which stage, so that a control that can only earn a refusal is not.
func (s *Server) actAs(page *boardPage, tok string, actor auth.Actor) {
	page.Token, page.MaySet, page.AssignBefore, page.Until = tok, maySet(actor), s.assignBefore(actor), actor.Until()
}

// assignBefore says until which stage a page acting as a offers to choose a courier or take it
// away, for its script to offer Assign and Unassign only there (permitAssign,
// CourierChange.Before): the stage, "" for any stage, "never" where the server keeps assignment
// to dispatch.
func (s *Server) assignBefore(a auth.Actor) string {
	if s.permitAssign(a) != nil {
		return "never"
	}
	return string(a.Until())
}
