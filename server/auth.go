package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

// Auth is who may watch and who may change orders. A Server whose Auth is nil is open: anyone may
// watch and change any order, and created orders carry no tracking token. That suits tests and
// embedding; `ordercast serve` always sets it.
type Auth struct {
	// Tokens verifies tracking and actor tokens and signs tracking tokens. Required.
	Tokens *auth.Authority
	// PublicTracking lets anyone read and watch any order without a token (demos). Changes still
	// need an actor token.
	PublicTracking bool
	// TrackingTTL is the lifetime of the tracking tokens handed out on creation.
	TrackingTTL time.Duration
	// ConsoleToken makes the console page carry a short-lived admin token, so that it works without
	// a login. Only for demo mode: whoever can load the page can change every order.
	ConsoleToken bool
}

// TrackingCookie is the name of the HttpOnly cookie that carries a tracking token for the pages.
// Its path is the order's API path, so each order's cookie goes only to that order's endpoints.
const TrackingCookie = "ordercast_track"

// StreamCookie is the name of the HttpOnly cookie that carries the actor token of the console or
// a party's page to the one stream that page opens: its path is that stream's (/v1/stream, or
// /v1/restaurants/{id}/stream and /v1/customers/{id}/stream), so the page's EventSource, which
// cannot send a header, sends it there instead of a token in its URL, which a proxy's access log
// or an intermediary would keep. Like every cookie it authorizes reading only, never a change.
const StreamCookie = "ordercast_stream"

// consoleTokenTTL is the lifetime of the admin token embedded in the demo console page.
const consoleTokenTTL = 12 * time.Hour

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// watchToken finds the token a watcher presents: the Authorization header (apps, first choice),
// the token query parameter (the fallback for an EventSource on another origin, which can send
// neither a header nor our cookies), or a page's cookie: the tracking page's, or the stream
// cookie of the console or a party's page. Only reads and watches take it (authorizeWatchAs,
// authorizeParty, authorizeWatchAll); a change never does (authenticate).
//
// An admin, system or support token in the query is refused (errPlatformTokenInURL): a URL is
// written down by every proxy and server it passes, and kept in their logs, where a token that
// reads every order must not be. The platform's own clients send a
// header; a party's page gets its stream through a cookie.
func (s *Server) watchToken(r *http.Request) (string, error) {
	if t := bearer(r); t != "" {
		return t, nil
	}
	if t := r.URL.Query().Get("token"); t != "" {
		if s.Auth != nil {
			if a, err := s.Auth.Tokens.ParseActor(t); err == nil && a.Role.MayWatchAny() {
				return "", errPlatformTokenInURL
			}
		}
		return t, nil
	}
	for _, name := range []string{TrackingCookie, StreamCookie} {
		if c, err := r.Cookie(name); err == nil {
			return c.Value, nil
		}
	}
	return "", nil
}

// errPlatformTokenInURL is watchToken's refusal of an admin or system token in the URL.
var errPlatformTokenInURL = ordercast.Errorf(ordercast.EUnauthenticated,
	"an admin, system or support token is not taken from the URL (?token=), which proxies and servers keep in their logs: send it in the Authorization header")

// authorizeWatchAs decides whether r may read and watch order id, and says whether the read is
// a courier's whose order it is: a right that ends when the order goes to another courier, which
// a watch then enforces (stream.Request.Courier). Restaurants and customers own their orders for
// good. Every endpoint that reveals an order calls it before it reads anything, so a refusal
// carries no order data.
func (s *Server) authorizeWatchAs(r *http.Request, id string) (courier string, err error) {
	if s.Auth == nil || s.Auth.PublicTracking {
		return "", nil
	}
	tok, err := s.watchToken(r)
	if err != nil {
		return "", err
	}
	return s.watchAs(r.Context(), tok, id)
}

// watchAs is authorizeWatchAs for a token from anywhere: the request's, or the page cookie of a
// page that links to the tracking page (trackWith). A right that hangs on the order's owner (a
// party's actor token, a courier's tracking token) is decided here, on the order as it is now.
func (s *Server) watchAs(ctx context.Context, tok, id string) (courier string, err error) {
	owner, tr, err := s.Auth.Tokens.AuthorizeWatch(tok, id)
	if owner.Party() == (ordercast.Party{}) && (err != nil || tr.Created.IsZero()) {
		return "", err
	}
	// The order is read to decide, and nothing of it leaves unless the decision is yes.
	o, oerr := s.Store.Order(ctx, id)
	switch {
	case ordercast.ErrorCode(oerr) == ordercast.ENotFound:
		return "", err // an unknown order is refused like any order the caller may not read
	case oerr != nil:
		return "", oerr
	case !tr.Reads(o):
		// A tracking token of an order purged since, whose id a new order was given.
		return "", auth.ErrAnotherOrder
	case owner.Party() == (ordercast.Party{}):
		return "", nil
	}
	if owner.Permit(auth.ActRead, o, "") != nil {
		return "", err // the very refusal an unknown order gets: no word of whose order it is
	}
	if owner.Role == auth.RoleCourier {
		courier = owner.Sub
	}
	return courier, nil
}

// authorizeParty decides whether r may watch party p's stream: public tracking, an admin or
// system token, or the party's own actor token.
func (s *Server) authorizeParty(r *http.Request, p ordercast.Party) error {
	if s.Auth == nil || s.Auth.PublicTracking {
		return nil
	}
	actor, err := s.readingActor(r)
	if err != nil {
		return err
	}
	return actor.PermitParty(p)
}

// readingActor is the actor whose token r reads with (watchToken), for a read of more than one
// order (a party's stream, a list of orders): no token is 401, and a tracking token, which reads
// its one order only, 403.
func (s *Server) readingActor(r *http.Request) (auth.Actor, error) {
	tok, err := s.watchToken(r)
	if err != nil {
		return auth.Actor{}, err
	}
	if tok == "" {
		return auth.Actor{}, auth.NoToken("an actor token is required")
	}
	if _, err := s.Auth.Tokens.ParseTracking(tok); err == nil {
		return auth.Actor{}, ordercast.Errorf(ordercast.EForbidden, "a tracking token reads and watches its one order only")
	}
	return s.Auth.Tokens.ParseActor(tok)
}

// owner is the party a change by actor must be made for, checked in the write's transaction:
// none for an unrestricted actor. A party role without a sub owns nothing.
func (s *Server) owner(a auth.Actor) (ordercast.Party, error) {
	if a.ActsOnEvery() {
		return ordercast.Party{}, nil
	}
	p := a.Party()
	if p == (ordercast.Party{}) {
		return p, ordercast.Errorf(ordercast.EForbidden, "a %s token without a sub acts on no order", a.Role)
	}
	return p, nil
}

// permitSetStatus decides whether a may change orders' statuses at all (the status the request
// names is statusChange's to judge, the order its owner's): a request's permit (changeRequest).
func permitSetStatus(a auth.Actor) error { return a.PermitAction(auth.ActSetStatus, "") }

// permitAssign decides whether actor may assign couriers at all; the order's restaurant is
// checked in the transaction (see owner).
func (s *Server) permitAssign(a auth.Actor) error {
	if err := a.PermitAction(auth.ActAssignCourier, ""); err != nil || a.ActsOnEvery() {
		return err
	}
	// A party chooses a courier only before the courier's position shows (CourierChange.Before,
	// its role's Until), and the courier itself moves the order there by picking it up. A server
	// that shows the position earlier (--location-from) shows it from the assignment on, before
	// the courier has touched the order: there only dispatch, trusted with every courier, may
	// assign.
	if s.Locations != nil && ordercast.LocationFrom(s.Locations.From) != a.Until() {
		return ordercast.Errorf(ordercast.EForbidden, "couriers are assigned by dispatch (an admin or system token) on this server: it shows a courier's position from %s, before the courier has picked the order up", s.Locations.From)
	}
	return nil
}

// authorizeWatchAll decides whether r may watch every order (the console's stream, the home
// page's list): public tracking, or an admin or system token.
func (s *Server) authorizeWatchAll(r *http.Request) error {
	if s.Auth == nil || s.Auth.PublicTracking {
		return nil
	}
	tok, err := s.watchToken(r)
	if err != nil {
		return err
	}
	return s.Auth.Tokens.AuthorizeWatchAll(tok)
}

// authenticate returns who makes a change, from the Authorization header only: a cookie or a
// query parameter never authorizes a change, which keeps cross-site requests and leaked links
// harmless. On an open server (nil Auth) it is auth.Anyone.
func (s *Server) authenticate(r *http.Request) (auth.Actor, error) {
	if s.Auth == nil {
		return auth.Anyone, nil
	}
	tok := bearer(r)
	if tok == "" {
		return auth.Actor{}, auth.NoToken("an actor token is required (Authorization: Bearer)")
	}
	return s.Auth.Tokens.ParseActor(tok)
}

// trackingToken signs a tracking token for order o, as a creation hands out and POST
// …/tracking-token makes again, and says when it expires; "" and nil on an open server.
func (s *Server) trackingToken(o ordercast.Order) (string, *time.Time, error) {
	if s.Auth == nil {
		return "", nil, nil
	}
	tok, exp, err := s.Auth.Tokens.SignTracking(o.ID, o.CreatedAt, s.trackingTTL())
	if err != nil {
		return "", nil, err
	}
	return tok, &exp, nil
}

// trackingTTL is how long a tracking token lives (Auth.TrackingTTL, or its default).
func (s *Server) trackingTTL() time.Duration {
	if s.Auth.TrackingTTL <= 0 {
		return auth.DefaultTrackingTTL
	}
	return s.Auth.TrackingTTL
}

// setTrackingCookie handles GET /track/{id}?token=…: a valid token for this order becomes an
// HttpOnly cookie scoped to the order's API path, and the browser is sent to the clean URL so the
// token leaves the address bar, the history and any Referer. It reports whether it redirected.
func (s *Server) setTrackingCookie(w http.ResponseWriter, r *http.Request, id string) bool {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		return false
	}
	to := trackingPagePath(id, ordercast.Party{})
	if s.Auth != nil {
		// The token handed out with the order only. One a page made from its own token (a
		// courier's, a restaurant's, the console's: pageTrackingCookie) reaches the tracking page
		// through that page's link, never through a link its holder could send the customer,
		// whose cookie it would replace with one that dies with the page's token, or when the
		// order changes hands.
		if tr, err := s.Auth.Tokens.ParseTracking(tok); err == nil && tr.OrderID == id && tr.Courier == "" && tr.Via == "" {
			http.SetCookie(w, s.trackingCookie(r, id, tok))
		} else {
			// A refused token sets nothing, and the page says the link was refused (rather than
			// to open the link just opened) should the API refuse it for want of a credential:
			// a cookie from an earlier link may still let it in.
			to += "?" + trackLinkParam + "=" + trackLinkRefused
		}
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	toTrackingPage(w, r, to)
	return true
}

// The tracking page's address after a hand-over whose token was refused: ?link=refused.
const (
	trackLinkParam   = "link"
	trackLinkRefused = "refused"
)

// trackingCookie is the tracking cookie that carries tok, a tracking token for order id, to the
// order's API path only: a token cookie (tokenCookie) that outlives its token (outliveToken), so
// that a customer who opens the page after the link expired is told so, rather than told to open
// the link ("a tracking token is required").
func (s *Server) trackingCookie(r *http.Request, id, tok string) *http.Cookie {
	c := s.tokenCookie(r, TrackingCookie, "/v1/orders/"+id, tok)
	s.outliveToken(c)
	return c
}

// toTrackingPage sends the browser to to, a tracking page (trackingPagePath), after a hand-over
// that may have set its cookie: an answer not to be cached.
func toTrackingPage(w http.ResponseWriter, r *http.Request, to string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// trackingPagePath is order id's tracking page or, with viewer set (a courier, a restaurant:
// trackViews), the view of it for that party, which came from its page
// (?view=courier&courier=…, ?view=restaurant&restaurant=…): its words are the party's, and it
// links back to the party's page. The view carries no credential: the cookie does.
func trackingPagePath(id string, viewer ordercast.Party) string {
	if viewer == (ordercast.Party{}) {
		return "/track/" + id
	}
	kind := string(viewer.Kind)
	return "/track/" + id + "?" + url.Values{"view": {kind}, kind: {viewer.ID}}.Encode()
}

// consoleToken is the admin token the demo console page carries, or "".
func (s *Server) consoleToken() (string, error) {
	if s.Auth == nil || !s.Auth.ConsoleToken {
		return "", nil
	}
	return s.Auth.Tokens.SignActor(consoleActor, consoleTokenTTL)
}

// consoleActor is whom the demo's console token acts for.
var consoleActor = auth.Actor{Role: auth.RoleAdmin, Sub: "console"}

// blindError is what the refusal of a change made for its owner (a party's: the change carried
// Owner) tells the party: an unknown order is the same 403, word for word, as another party's
// order, not 404. A refusal for the order's version or its stage passes unchanged: the change
// is judged for those only once the order is found to be the caller's (Apply checks the owner
// first), and a party may read its own order. Other errors (bad input, limits, an unavailable
// store) say nothing about the order and pass unchanged too.
func blindError(a auth.Actor, err error) error {
	switch ordercast.ErrorCode(err) {
	case ordercast.ENotFound, ordercast.EForbidden:
		return ordercast.Errorf(ordercast.EForbidden, "role %s may not change this order; no change was made", a.Role)
	}
	return err
}

// viaHTTPS reports whether the client reached us over HTTPS: directly, or through a trusted
// proxy that terminated TLS and says so in X-Forwarded-Proto (from anyone else it is ignored).
func (s *Server) viaHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !trusted(s.Limits.TrustedProxies, peerAddr(r.RemoteAddr)) {
		return false
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}
