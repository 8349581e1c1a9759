package server

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/ordercast/ordercast"
)

// The pages are plain HTML, CSS and JavaScript with no build step, embedded in the binary so that
// `ordercast serve` is all it takes. Templates are kept apart from static so that the file server
// never hands out a template's source.
var (
	//go:embed static
	staticFiles embed.FS
	//go:embed templates
	templateFiles embed.FS

	pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{"label": statusLabel}).
			ParseFS(templateFiles, "templates/*.html"))
)

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

// DefaultHomeOrders is how many active orders the home page links to.
const DefaultHomeOrders = 20

// pageCSP keeps the pages to their own scripts and styles: no inline code, nothing from elsewhere.
const pageCSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic("server: embedded static files: " + err.Error()) // the embed directive guarantees the directory
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets change with the binary, which is rare; a short cache keeps reloads cheap but fresh.
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // files only: no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

// homePage is what the home page template shows.
type homePage struct {
	Orders  []ordercast.Order
	Parties []PartyLink
}

// PartyLink is a party the home page links to (demo mode): its page, or for a courier, which
// has no page, its stream.
type PartyLink struct {
	Party ordercast.Party
	Name  string
}

// Href is where the link goes.
func (l PartyLink) Href() string {
	if l.Party.Kind == ordercast.PartyCourier {
		return "/v1/couriers/" + l.Party.ID + "/stream"
	}
	return "/" + string(l.Party.Kind) + "s/" + l.Party.ID
}

// handleHome serves GET /{$}: links to the console and to the tracking pages of active orders.
// Without public tracking the list is left out: it would hand every order to every visitor.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	var orders []ordercast.Order
	if s.authorizeWatchAll(r) == nil {
		var err error
		orders, err = s.Store.ActiveOrders(r.Context(), DefaultHomeOrders)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.renderPage(w, r, "home.html", homePage{Orders: orders, Parties: s.PartyLinks})
}

// trackPage is what the tracking page template shows; the script does the rest.
type trackPage struct {
	ID string
}

// handleTrack serves GET /track/{id}: the live tracking page of one order. Whether the order
// exists is the script's question (it asks the API), so the page is the same for every valid id.
// With ?token=… it sets the tracking cookie and redirects to the clean URL (setTrackingCookie).
func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := ordercast.ValidateID(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.setTrackingCookie(w, r, id) {
		return
	}
	s.renderPage(w, r, "track.html", trackPage{ID: id})
}

// consolePage is what the console template shows: in demo mode, the admin token its script
// sends with every change.
type consolePage struct {
	Token string
}

// handleConsole serves GET /console: the operator's console.
func (s *Server) handleConsole(w http.ResponseWriter, r *http.Request) {
	tok, err := s.consoleToken()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("sign console token: %w", err))
		return
	}
	s.renderPage(w, r, "console.html", consolePage{Token: tok})
}

// renderPage renders into a buffer first, so a template error becomes a clean 500, not half a page.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	// The body is in memory: a write error can only mean the client went away.
	_, _ = buf.WriteTo(w)
}
