package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/stream"
)

// The pages are plain HTML, CSS and JavaScript with no build step, embedded in the binary so that
// `ordercast serve` is all it takes. Templates are kept apart from static so that the file server
// never hands out a template's source.
var (
	//go:embed static
	staticFiles embed.FS
	//go:embed templates
	templateFiles embed.FS

	pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{"label": statusLabel, "asset": assetURL}).
			ParseFS(templateFiles, "templates/*.html"))
)

// assetURL is the link a page makes to its static file name: /static/name?v=<its version>. A
// page and its scripts are then of one build: through a rolling upgrade, a page from a new node
// whose script request reaches an old node, or a browser's cache of the old script, no longer
// runs the new page with the old script for the cache's five minutes (staticHandler).
func assetURL(name string) (string, error) {
	assets, err := staticAssets()
	if err != nil {
		return "", err
	}
	a := assets[name]
	if a == nil {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + name + "?v=" + a.version, nil
}

// statusLabel is how people read a status; static/api.js has the same words for the scripts.
func statusLabel(st ordercast.Status) string {
	if st == ordercast.StatusOutForDelivery {
		return "Out for delivery"
	}
	s := string(st)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// defaultHomeOrders is how many active orders the home page links to.
const defaultHomeOrders = 20

// pageCSP keeps the pages to their own scripts and styles: no inline code, nothing from elsewhere.
// Forms post only to the pages' own origin (default-src does not cover form-action): a form
// injected into a page could otherwise send what the user types to another site.
const pageCSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// staticAssets are the static files as served, compressed once per process: they are embedded.
var staticAssets = sync.OnceValues(func() (map[string]*asset, error) {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	return loadAssets(sub)
})

// staticHandler serves the pages' scripts, styles and icon (static/), gzipped to clients that
// take it (assets.go).
func (s *Server) staticHandler() http.Handler {
	assets, err := staticAssets()
	if err != nil {
		panic("server: embedded static files: " + err.Error()) // the embed directive guarantees them
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Files only, no directory listings; what is not a file gets the pages' own 404.
		a := assets[strings.TrimPrefix(r.URL.Path, "/static/")]
		if a == nil {
			s.pageNotFound(w, r)
			return
		}
		switch v := r.URL.Query().Get("v"); {
		case v == a.version:
			// The link names these bytes (assetURL): another build links to other ones.
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		case v != "":
			// A page of another build (a node upgraded before or after this one) named bytes
			// this node has not: its own would run another build's page with this build's
			// script (a function one calls that the other has not). 503: a proxy asks another
			// node (the docs' nginx: proxy_next_upstream http_503 for /static/), and no cache
			// keeps the refusal.
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Retry-After", "1")
			http.Error(w, "this node serves another build of "+r.URL.Path+"; ask again", http.StatusServiceUnavailable)
			return
		default:
			// A link without a version: assets change with the binary, which is rare; a short
			// cache keeps reloads cheap but fresh, and the entity tag makes a reload a 304.
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		a.serve(w, r)
	})
}

// handleFavicon serves GET /favicon.ico, which browsers ask for on every page whatever the
// pages link to: the SVG icon the pages name, rather than a 404 in every log.
func handleFavicon(w http.ResponseWriter, r *http.Request) {
	icon, err := staticFiles.ReadFile("static/favicon.svg")
	if err != nil {
		http.Error(w, "no icon", http.StatusNotFound) // the embed directive guarantees the file
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(icon) // in memory: a write error can only mean the client went away
}

// homePage is what the home page template shows.
type homePage struct {
	Orders []ordercast.Order
	// More is set when more orders are in progress than the page lists: it says so, rather than
	// pass the newest few for all of them.
	More bool
	// NeedsCredential is set when the visitor may not see every order: the page then says how
	// to get in instead of listing nothing as if nothing were in progress.
	NeedsCredential bool
	Parties         []PartyLink
}

// Max is the most orders the list shows: the newest.
func (homePage) Max() int { return defaultHomeOrders }

// Names are the names the page knows parties by (demo mode), for its script to name the
// parties of orders that come later as Who names them: "restaurant:luigis" → "Luigi's
// Trattoria", as JSON.
func (p homePage) Names() (string, error) {
	names := make(map[string]string, len(p.Parties))
	for _, l := range p.Parties {
		names[string(l.Party.Kind)+":"+l.Party.ID] = l.Name
	}
	b, err := json.Marshal(names)
	return string(b), err
}

// Who says whose order o is, for the list of orders in progress: its restaurant and customer,
// by the names the home page knows them by (demo mode), else by their ids; "" for an order of
// no party.
func (p homePage) Who(o ordercast.Order) string {
	var who []string
	if o.RestaurantID != "" {
		who = append(who, partyName(p.Parties, ordercast.Party{Kind: ordercast.PartyRestaurant, ID: o.RestaurantID}))
	}
	if o.CustomerID != "" {
		who = append(who, partyName(p.Parties, ordercast.Party{Kind: ordercast.PartyCustomer, ID: o.CustomerID}))
	}
	return strings.Join(who, " → ")
}

// partyName is p's name among links (demo mode's parties), else its id.
func partyName(links []PartyLink, p ordercast.Party) string {
	for _, l := range links {
		if l.Party == p {
			return l.Name
		}
	}
	return p.ID
}

// PartyLink is a party the home page links to (demo mode).
type PartyLink struct {
	Party ordercast.Party
	Name  string
}

// Href is the party's page.
func (l PartyLink) Href() string { return partyCookies(l.Party).page }

// Stream is the party's raw event stream, which the home page links beside a courier's page:
// the simulated couriers drive their orders, and their streams show it as it goes.
func (l PartyLink) Stream() string {
	if l.Party.Kind != ordercast.PartyCourier {
		return ""
	}
	return partyCookies(l.Party).stream
}

// handleHome serves GET /{$}: links to the console and to the tracking pages of active orders.
// Without public tracking the list is left out: it would hand every order to every visitor.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	page := homePage{Parties: s.PartyLinks}
	if r.URL.Query().Has("token") {
		// The home page takes no token from its address: it has no hand-over that takes it out
		// of the address bar (the console's has, which the page links to), and a list of every
		// order shown for an admin's token would leave that token in the browser's history.
		w.Header().Set("Referrer-Policy", "no-referrer")
		r = r.Clone(r.Context())
		q := r.URL.Query()
		q.Del("token")
		r.URL.RawQuery = q.Encode()
	}
	if s.authorizeWatchAll(r) == nil {
		var err error
		page.Orders, err = s.Store.ActiveOrders(r.Context(), defaultHomeOrders+1)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if page.More = len(page.Orders) > defaultHomeOrders; page.More {
			page.Orders = page.Orders[:defaultHomeOrders]
		}
	} else {
		page.NeedsCredential = true
	}
	s.renderPage(w, r, http.StatusOK, "home.html", page)
}

// trackPage is what the tracking page template shows; the script does the rest.
type trackPage struct {
	ID string
	// Viewer is the party whose view of the page this is, a courier or a restaurant that came
	// from its own page (trackingPagePath): the page speaks to it, not to the customer, and links
	// back to its page. The zero Party is the customer's view.
	Viewer ordercast.Party
}

// View names the view for the template and the scripts (data-view): "courier", "restaurant",
// or "" for the customer's.
func (p trackPage) View() string { return string(p.Viewer.Kind) }

// Back is the viewer's page, which its view links back to, or "" in the customer's view. Its id
// stays as it is in the path ({{.Back}} is a whole URL, which the template only normalizes): the
// page's cookie's path names it so.
func (p trackPage) Back() string {
	if p.Viewer.Kind == "" {
		return ""
	}
	return partyCookies(p.Viewer).page
}

// BackWords are the words of the link back to the viewer's page (trackViews).
func (p trackPage) BackWords() string { return trackViews[p.Viewer.Kind] }

// trackViews are the parties whose pages open a view of the tracking page of their own
// (?view={kind}&{kind}={id}, trackingPagePath), with the words of its link back to their page.
// A restaurant's board, kept open on a kiosk tablet with no back button, would otherwise strand
// its staff on the customer's page, whose only link goes to the home page.
var trackViews = map[ordercast.PartyKind]string{
	ordercast.PartyCourier:    "Back to your deliveries",
	ordercast.PartyRestaurant: "Back to the board",
}

// handleTrack serves GET /track/{id}: the live tracking page of one order. Whether the order
// exists is the script's question (it asks the API), so the page is the same for every valid id.
// With ?token=… it sets the tracking cookie and redirects to the clean URL (setTrackingCookie).
// With ?view=courier&courier={id} it is that courier's view of the page, with
// ?view=restaurant&restaurant={id} that restaurant's (trackingPagePath).
func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := ordercast.ValidateID(id); err != nil {
		s.badOrderID(w, r)
		return
	}
	if s.setTrackingCookie(w, r, id) {
		return
	}
	page := trackPage{ID: id}
	// A party's view changes words and one link, to a page of this site: nothing a link's party
	// id could turn against anyone. One that cannot be an id leaves the customer's view.
	q := r.URL.Query()
	kind := ordercast.PartyKind(q.Get("view"))
	if _, ok := trackViews[kind]; ok && ordercast.ValidatePartyID(q.Get(string(kind))) == nil {
		page.Viewer = ordercast.Party{Kind: kind, ID: q.Get(string(kind))}
	}
	s.renderPage(w, r, http.StatusOK, "track.html", page)
}

// consolePage is what the console template shows.
type consolePage struct {
	// Token is the actor token the console's script sends with every request: the demo's own
	// admin token, or the one the operator handed over (handleConsole).
	Token string
	// NeedsToken shows the token entry at once: nothing lets this visitor watch every order.
	NeedsToken bool
	// Problem says why a token handed over was refused.
	Problem string
	// TokenRefused says that Problem is a token's refusal (entered earlier, handed over), not
	// another: the connection indicator then says "token refused" rather than "needs a token".
	TokenRefused bool
	// As names whom Token acts for ("admin:ops"), shown in the page's bar.
	As string
	// Confirm is a token a link handed over: the page asks before using it.
	Confirm *linkedToken
	// Current names whom the console's own cookie acts for, beside a Confirm question.
	Current string
	// MaySet lists the statuses whom Token acts for may set (maySet).
	MaySet string
	// NoCreate says whom Token acts for may not create orders (a support agent): the page has
	// no new-order form.
	NoCreate bool
	// TrackingLinks says whom Token acts for may have a customer's tracking link made again
	// (auth.Actor.PermitTrackingToken): the page offers each order's "Tracking link" only then.
	TrackingLinks bool
	// AssignBefore and Until are the stages from which whom Token acts for may no longer choose
	// an order's courier, and change it at all, as on a board (actAs): "" for a support,
	// admin or system token, which may at any stage.
	AssignBefore, Until string
	// Restaurants and Customers are the ones the new-order form offers (demo mode); without
	// them it asks for their ids.
	Restaurants, Customers []PartyLink
	// SnapshotLimit is the most active orders the console's stream's snapshot holds
	// (stream.SnapshotLimit): one that holds as many says that older ones are not listed.
	SnapshotLimit int
	// Demo marks a page of demo mode (demoPages).
	Demo bool
}

// demoPages says whether the pages are demo mode's, which mint their own tokens (Auth.ConsoleToken)
// signed with a secret the process made for itself: after a restart the tokens the open pages
// hold are refused, and a reload, which mints new ones, is what the pages tell their user.
func (s *Server) demoPages() bool { return s.Auth != nil && s.Auth.ConsoleToken }

// linkedToken is a token handed to the console by a link, and whom it acts for.
type linkedToken struct {
	Token, As string
}

// ConsoleCookie is the name of the HttpOnly cookie that carries the actor token an operator
// handed to the console; its path is /console, so no API request carries it: the page's script
// sends the token as a bearer header, which a cross-site request cannot.
const ConsoleCookie = "ordercast_console"

// handleConsole serves GET /console: the operator's console, with the token its cookie holds.
//
// With ?token=… (a link an operator was sent) it asks, naming whom the token acts for, and
// takes it only when the operator answers with the page's form (handleConsoleSignIn). A link
// that signed the console in by itself would let a page elsewhere, or a link in a mail, sign an
// operator's console in as its author's account (login CSRF), and the operator would type notes
// and changes under it: /console names no one, unlike a party's page or an order's.
func (s *Server) handleConsole(w http.ResponseWriter, r *http.Request) {
	page := consolePage{Demo: s.demoPages(), SnapshotLimit: stream.SnapshotLimit}
	for _, l := range s.PartyLinks {
		switch l.Party.Kind {
		case ordercast.PartyRestaurant:
			page.Restaurants = append(page.Restaurants, l)
		case ordercast.PartyCustomer:
			page.Customers = append(page.Customers, l)
		}
	}
	tok, err := s.consoleToken()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("sign console token: %w", err))
		return
	}
	if tok != "" {
		s.consoleActs(&page, tok, consoleActor)
	}
	status := http.StatusOK
	if page.Token == "" && s.Auth != nil {
		if c, err := r.Cookie(ConsoleCookie); err == nil {
			if actor, err := s.Auth.Tokens.ParseActor(c.Value); err != nil {
				page.Problem = "The token you entered earlier is no longer accepted (" + ordercast.ErrorMessage(err) + "); enter a new one."
				page.TokenRefused = true
				s.setPageCookies(w, r, consoleCookies, "")
			} else {
				s.consoleActs(&page, c.Value, actor)
			}
		}
		if given := r.URL.Query().Get("token"); given != "" {
			// The address holds a token: it must not leave in a Referer (the page's own script
			// and styles), and the page's script takes it out of the address bar.
			w.Header().Set("Referrer-Policy", "no-referrer")
			if actor, err := s.Auth.Tokens.ParseActor(given); err != nil {
				page.Problem, page.TokenRefused = tokenRefused(err, "enter another, or ask for a new link."), true
				status = http.StatusUnauthorized
			} else {
				page.Confirm = &linkedToken{Token: given, As: actor.String()}
				page.Current = page.As
				s.consoleActs(&page, "", auth.Actor{}) // nothing runs until the operator answers
			}
		}
		page.NeedsToken = page.Token == "" && !s.Auth.PublicTracking && page.Confirm == nil
	}
	s.setStreamCookie(w, r, consoleCookies, page.Token)
	s.renderPage(w, r, status, "console.html", page)
}

// consoleActs makes the console act as actor, with its token tok, as actAs does a board: what its
// script sends, whom the bar names, and which of its controls it offers at which stage. With no
// token it acts as nobody, and names nobody.
func (s *Server) consoleActs(page *consolePage, tok string, actor auth.Actor) {
	if tok == "" {
		page.Token, page.As, page.MaySet, page.NoCreate, page.AssignBefore, page.Until = "", "", "", false, "", ""
		page.TrackingLinks = false
		return
	}
	page.Token, page.As, page.MaySet, page.NoCreate = tok, actor.String(), maySet(actor), !actor.Role.MayCreate()
	page.TrackingLinks = actor.PermitTrackingToken() == nil
	page.AssignBefore, page.Until = s.assignBefore(actor), string(actor.Until())
}

// handleConsoleTrack serves GET /console/track/{id}, where the console links each order. The
// tracking page reads with its tracking cookie only, and the operator's token lives in the
// console's cookie, whose path (/console) takes it here and nowhere near /track. So this hands
// the console's token to trackWith, which signs a tracking token for the order from it and sends
// the browser to the tracking page: no token is ever in a URL. A link from another site arrives
// with the console's cookie (SameSite=Lax, see setPageCookies) and opens the order's tracking
// page, as the console's own link would: it shows the operator an order, and changes nothing
// (in demo mode, whose console token is anyone's, tracking is public and nothing is set).
func (s *Server) handleConsoleTrack(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := ordercast.ValidateID(id); err != nil {
		s.badOrderID(w, r)
		return
	}
	tok, err := s.consoleToken()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("sign console token: %w", err))
		return
	}
	if c, cerr := r.Cookie(ConsoleCookie); tok == "" && cerr == nil {
		tok = c.Value
	}
	s.trackWith(w, r, id, tok, ordercast.Party{})
}

// trackWith sends the browser to order id's tracking page from a page that links there, whose
// token is tok: viewer's view of it when that is a courier's page or a restaurant's board, the
// customer's when viewer is the zero Party (toTrackingPage). When tracking needs a token and tok
// may watch the order, it first keeps a credential for the order in the tracking cookie
// (pageTrackingCookie); else the tracking page shows the API's refusal.
func (s *Server) trackWith(w http.ResponseWriter, r *http.Request, id, tok string, viewer ordercast.Party) {
	if s.Auth != nil && !s.Auth.PublicTracking && tok != "" {
		c, err := s.pageTrackingCookie(r, id, tok)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if c != nil {
			http.SetCookie(w, c)
		}
	}
	toTrackingPage(w, r, trackingPagePath(id, viewer))
}

// pageTrackingCookie is the tracking cookie that a page whose token is tok hands order id's
// tracking page, or nil when tok may not watch the order (or the order cannot be read now). It
// lives no longer than tok: a page signed out by its token's expiry must not go on watching
// through the pages it opened, and one whose token expires within the second (or did, just after
// it was accepted) sets nothing.
//
// It holds a tracking token for the order, signed from tok and marked with its actor
// (auth.Authority.SignPageTracking), which the hand-over of a customer's link refuses; from a
// courier's token, a courier's tracking token, which reads the order only while it is that
// courier's, as the courier's own token does (watchAs, and a watch ends when the order goes to
// another courier). Never tok itself: a cookie kept for days must not hold a token that changes
// orders and posts positions, and a tracking token changes nothing.
func (s *Server) pageTrackingCookie(r *http.Request, id, tok string) (*http.Cookie, error) {
	courier, err := s.watchAs(r.Context(), tok, id)
	if err != nil {
		return nil, nil // refused, or the order unreadable: the tracking page says so
	}
	o, err := s.Store.Order(r.Context(), id) // the token reads this order, not one of its id made later
	if err != nil {
		return nil, nil
	}
	via, until, err := s.Auth.Tokens.ActorExpiry(tok)
	if err != nil || !until.IsZero() && time.Until(until) < time.Second {
		return nil, nil
	}
	ttl := s.trackingTTL()
	if !until.IsZero() {
		ttl = min(ttl, time.Until(until))
	}
	track, _, err := s.Auth.Tokens.SignPageTracking(id, courier, o.CreatedAt, via, ttl)
	if err != nil {
		return nil, fmt.Errorf("sign tracking token for a page's link: %w", err)
	}
	return s.trackingCookie(r, id, track), nil
}

// maySet lists, space separated, the statuses a page acting as a may set, for its script to offer
// only those: a button that can only earn a 403 is not offered. The templates give it only with
// the page's token: a page without one (an open server) offers every status.
func maySet(a auth.Actor) string {
	var names []string
	for _, st := range a.Settable() {
		names = append(names, string(st))
	}
	return strings.Join(names, " ")
}

// consoleOrigin checks that a sign-in came from the console's own page: the browser's
// Sec-Fetch-Site, or without it its Origin against the request's host (Go's cross-origin
// protection). A request that carries neither is not a browser's, and has no session to steal.
var consoleOrigin = http.NewCrossOriginProtection()

// handleConsoleSignIn serves POST /console: the console's forms (the token entry, and the
// answer to a linked token's question) hand a token over in the body. A good one goes into the
// console's HttpOnly cookie, and the browser to GET /console.
func (s *Server) handleConsoleSignIn(w http.ResponseWriter, r *http.Request) {
	if s.Auth == nil {
		http.Redirect(w, r, "/console", http.StatusSeeOther)
		return
	}
	page := consolePage{NeedsToken: !s.Auth.PublicTracking, Demo: s.demoPages()}
	if err := consoleOrigin.Check(r); err != nil {
		page.Problem = "A page of another site tried to sign this console in; nothing was changed."
		s.renderPage(w, r, http.StatusForbidden, "console.html", page)
		return
	}
	// A sign-in carries no credential until its body is read, which a client may send slowly
	// for as long as --read-timeout allows: charged to the anonymous write budget, as a write
	// that fails authentication is, one address holds few of them at once, however many HTTP/2
	// streams its connections carry.
	if err := s.allowWrite(w, r, true); err != nil {
		page.Problem = "Too many sign-in attempts from your address: try again in a moment."
		s.renderPage(w, r, http.StatusTooManyRequests, "console.html", page)
		return
	}
	// The form is one token: read no more than that takes, and only as the page's form sends
	// it (net/http would otherwise hold megabytes of it in memory, or a multipart body on disk).
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		page.Problem = "Sign in with the form on this page."
		s.renderPage(w, r, http.StatusUnsupportedMediaType, "console.html", page)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, consoleFormMaxBytes)
	if err := r.ParseForm(); err != nil {
		code := http.StatusBadRequest
		page.Problem = "That form could not be read."
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			code, page.Problem = http.StatusRequestEntityTooLarge, "That form was too large to be a token."
		}
		s.renderPage(w, r, code, "console.html", page)
		return
	}
	given := r.PostForm.Get("token")
	if _, err := s.Auth.Tokens.ParseActor(given); err != nil {
		page.Problem, page.TokenRefused = tokenRefused(err, "enter another."), true
		s.renderPage(w, r, http.StatusUnauthorized, "console.html", page)
		return
	}
	s.handOverToken(w, r, consoleCookies, given)
}

// consoleFormMaxBytes bounds the console's sign-in form: a token is a few hundred bytes.
const consoleFormMaxBytes = 8 << 10

// pageCookies are the two cookies that carry the actor token handed to a page: the page's own
// (named name, scoped to the page), from which the page hands the token to its script for the
// bearer header of its API requests, and StreamCookie, scoped to the one stream the page opens,
// which its EventSource sends instead of a token in the URL.
type pageCookies struct {
	name   string // the page cookie's name
	page   string // the page's path
	stream string // the path of the page's stream
	kept   bool   // the cookies outlive their token, not the browser's session (keep)
}

// consoleCookies are the console's; its stream is every order's (GET /v1/stream).
var consoleCookies = pageCookies{name: ConsoleCookie, page: "/console", stream: api.PathStreamAll}

// partyCookies are party p's page's (/restaurants/{id}, /couriers/{id}, /customers/{id}); its
// stream is the party's (GET /v1/restaurants/{id}/stream, and so on).
func partyCookies(p ordercast.Party) pageCookies {
	page := "/" + string(p.Kind) + "s/" + p.ID
	return pageCookies{name: PartyCookie, page: page, stream: "/v1" + page + "/stream", kept: true}
}

// setPageCookies keeps tok in both of a page's cookies, or with tok "" deletes both: a page must
// never go on streaming as a token it no longer holds.
//
// The page's own cookie is SameSite=Lax, where every other cookie is Strict: an operator who
// follows a link to the console or a board from a chat or a mail must find it signed in (with
// Strict it looked signed out, and its hand-over question could not name the account it would
// replace, the one defence against a link that signs the console in as its author). Lax sends
// it only with a top-level GET, which renders a page and changes nothing (changes take the
// bearer header, never a cookie), and no other site can read or frame what it renders
// (frame-ancestors 'none'). The stream's cookie stays Strict: only the page itself opens it.
func (s *Server) setPageCookies(w http.ResponseWriter, r *http.Request, c pageCookies, tok string) {
	page := s.tokenCookie(r, c.name, c.page, tok)
	page.SameSite = http.SameSiteLaxMode
	http.SetCookie(w, c.keep(s, page))
	http.SetCookie(w, c.keep(s, s.tokenCookie(r, StreamCookie, c.stream, tok)))
}

// setStreamCookie keeps tok, the token a page is rendered with, in its stream cookie, whatever
// the token came from: a hand-over, or one minted for the page in demo mode. A page rendered
// without a token leaves the cookie as it is.
func (s *Server) setStreamCookie(w http.ResponseWriter, r *http.Request, c pageCookies, tok string) {
	if tok != "" {
		http.SetCookie(w, c.keep(s, s.tokenCookie(r, StreamCookie, c.stream, tok)))
	}
}

// keep makes cookie, one of c's, outlive its token (outliveToken) when c's page keeps its
// cookies: a party's page. The console's end with the browser's session: they may hold an admin
// token of months, on a machine others use.
func (c pageCookies) keep(s *Server, cookie *http.Cookie) *http.Cookie {
	if c.kept {
		s.outliveToken(cookie)
	}
	return cookie
}

// handOverToken keeps a token handed to a page (by ?token=… or a form) in the page's cookies and
// redirects to the clean URL, so that the token leaves the address bar and the history. The
// page's script then sends it as a bearer header, and its EventSource sends the stream cookie.
// An empty tok (an open server, which needs none) keeps nothing.
func (s *Server) handOverToken(w http.ResponseWriter, r *http.Request, c pageCookies, tok string) {
	if tok != "" {
		s.setPageCookies(w, r, c, tok)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, c.page, http.StatusSeeOther)
}

// tokenCookie is the cookie that carries a token handed to a page (an actor token, or a tracking
// token), or with an empty tok the one that deletes it: HttpOnly, same-site only, and Secure
// whenever the client came over HTTPS, directly or through a trusted proxy that ended TLS
// (viaHTTPS), so that the token never travels over plain HTTP. It is a session cookie, unless
// outliveToken keeps it.
func (s *Server) tokenCookie(r *http.Request, name, path, tok string) *http.Cookie {
	c := &http.Cookie{Name: name, Value: tok, Path: path, HttpOnly: true, Secure: s.viaHTTPS(r), SameSite: http.SameSiteStrictMode}
	if tok == "" {
		c.MaxAge = -1
	}
	return c
}

// outliveToken makes the token cookie c last until tokenCookieAfterlife after its token expires,
// not end with the browser's session: a board left open on a kitchen's tablet for a dinner
// service, opened again after the browser restarted (a home-screen shortcut to its clean URL),
// said to open the link again, though its token was good for hours. Past the token's end, the
// browser still presents it, and the API refuses it as expired, so the page can say that its
// link expired and to ask for a new one; a cookie that ended with its token left the page
// nothing to present, and it said to open the link it came from, which holds the same token. An
// expired token opens nothing. The cookie ends as both Expires and Max-Age (which a browser
// counts from the answer, whatever its own clock says), no sooner than a second from now: a
// Max-Age of 0 or less would delete it at once.
func (s *Server) outliveToken(c *http.Cookie) {
	if c.Value == "" || s.Auth == nil {
		return
	}
	exp := s.Auth.Tokens.Expiry(c.Value)
	if exp.IsZero() {
		return
	}
	end := exp.Add(tokenCookieAfterlife)
	c.Expires, c.MaxAge = end, max(int(time.Until(end).Seconds()), 1)
}

// tokenCookieAfterlife is how long a kept token cookie outlives its token: a customer who looks
// at an order the day after its link expired, or a kitchen opening its board the next day, is
// told so.
const tokenCookieAfterlife = 24 * time.Hour

// errorPage is what the error page shows: a heading and a sentence that says what went wrong.
type errorPage struct {
	Title, Message string
}

// renderError answers a page's request that cannot be served with the error page: the API's
// JSON would show raw in the browser.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	s.renderPage(w, r, status, "error.html", errorPage{Title: title, Message: message})
}

// badOrderID answers a page's address whose order id cannot be one.
// The id is not repeated: the page would show the site's own words around whatever text, of any
// length and with any bidirectional controls, a link put in its address.
func (s *Server) badOrderID(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "No such order", fmt.Sprintf(
		"This address names no order: an order id is 1 to %d letters, digits and the characters . _ : -. Check the link you were given.", ordercast.MaxIDLength))
}

// handlePageNotFound answers the paths no route takes outside the API (which handleUnrouted
// answers in JSON): a page that says so rather than the mux's plain text, or 405 with the Allow
// net/http would send when the path has routes for other methods.
func (s *Server) handlePageNotFound(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "" // not a route: counted as unmatched, as when the mux answered it
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		s.pageNotFound(w, r)
	}
}

// pageNotFound answers a request for a page or an asset there is none of.
func (s *Server) pageNotFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "Page not found",
		"There is no page at this address: check the link, or start again from the home page.")
}

// renderPage renders into a buffer first, so a template error becomes a clean 500, not half a page.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	if status == http.StatusUnauthorized {
		// A 401 names its scheme (RFC 9110 §11.6.1), the page's as the API's: its token, which
		// a page takes from its link. A browser prompts for Basic only, so nothing shows.
		h.Set("WWW-Authenticate", bearerChallenge(auth.ErrNoToken))
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	// Only the pages' own origin may ask for the position (the courier's page shares it), and
	// no page asks for a camera or a microphone; a window another site opened cannot script a
	// page that holds a party's token.
	h.Set("Permissions-Policy", "geolocation=(self), camera=(), microphone=()")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if h.Get("Referrer-Policy") == "" {
		h.Set("Referrer-Policy", "same-origin")
	}
	w.WriteHeader(status)
	// The body is in memory: a write error can only mean the client went away.
	_, _ = buf.WriteTo(w)
}

// tokenRefused is what a page says of a token it was given and refused (err): why, in the
// server's words, then what to do next, a sentence's end.
func tokenRefused(err error, next string) string {
	return "That token was not accepted (" + ordercast.ErrorMessage(err) + "): " + next
}
