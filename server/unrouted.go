package server

import (
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/ordercast/ordercast"
)

// API paths the mux has no route for are answered here, so that every answer under /v1/ is the
// JSON error body a client reads its code from. Other paths go to patPages (handlePageNotFound):
// a page that says there is none, or the mux's plain 405.
const (
	patAPIRoot    = "/v1"
	patAPISubtree = "/v1/"
	patPages      = "/"
)

// handleUnrouted serves /v1 and /v1/ for any method, which the mux reaches only when no route
// takes the request: 405 method_not_allowed with the Allow header net/http would send when the
// path has routes for other methods (OPTIONS among them), 404 not_found when it has none. An
// OPTIONS request to a path with routes (not a CORS preflight, which cors answers) asks what the
// path takes: 204 with that Allow (RFC 9110, 9.3.7).
func (s *Server) handleUnrouted(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Not a route: the log line and the metrics count the request as unmatched, as they did
		// when the mux answered it itself.
		r.Pattern = ""
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			// OPTIONS is answered on every path that has routes, so every Allow lists it
			// (RFC 9110, 15.5.6: a 405's Allow lists the methods the resource supports).
			allow = append(allow, http.MethodOptions)
			slices.Sort(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			s.writeError(w, r, ordercast.Errorf(ordercast.EMethodNotAllowed, "method %s is not allowed here; allowed: %s", ordercast.Quote(r.Method), strings.Join(allow, ", ")))
			return
		}
		s.writeError(w, r, ordercast.Errorf(ordercast.ENotFound, "no API endpoint at this path"))
	}
}

// routeMethods are the methods a route may take; the Allow of a 405 lists those of them that
// have a route for the path, in net/http's (sorted) order.
var routeMethods = []string{
	http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut,
}

// allowedMethods returns the methods mux has a route for at r's path, the fallbacks excluded.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range routeMethods {
		_, pattern := mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host})
		if pattern != "" && pattern != patAPIRoot && pattern != patAPISubtree && pattern != patPages {
			allow = append(allow, m)
		}
	}
	return allow
}

// cleanAPIPaths answers an API path that is not in its clean form (a doubled slash, a . or ..
// segment), before or after cleaning (//v1/orders: a base URL with a trailing slash), with the
// JSON 404 of any path the API has no endpoint at. The mux would redirect it to the clean form
// with a page of HTML, which an API client neither expects nor reads, and a client that follows
// a 307 would send its write again there.
func (s *Server) cleanAPIPaths(next http.Handler) http.Handler {
	isAPI := func(p string) bool { return p == patAPIRoot || strings.HasPrefix(p, patAPISubtree) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		clean := path.Clean(p)
		if strings.HasSuffix(p, "/") && clean != "/" {
			clean += "/" // as the mux cleans: a trailing slash is kept
		}
		if clean != p && (isAPI(p) || isAPI(clean)) {
			s.writeError(w, r, ordercast.Errorf(ordercast.ENotFound, "no API endpoint at this path: paths are sent in their clean form, as %s", ordercast.Quote(clean)))
			return
		}
		next.ServeHTTP(w, r)
	})
}
