package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// corsAllowHeaders are the request headers a page of an allowed origin may send: the API's own.
var corsAllowHeaders = strings.Join([]string{"Authorization", "Content-Type", api.HeaderIdempotencyKey,
	"If-Match", "If-None-Match", api.HeaderLastEventID, RequestIDHeader}, ", ")

// corsExposeHeaders are the answer's headers such a page may read: what a client acts on (when
// to retry, the request's id, a created order's place, a replay, the version, why a token was
// refused, the server's clock, a history behind the client's resume point).
var corsExposeHeaders = strings.Join([]string{"Retry-After", RequestIDHeader, "Location", api.HeaderIdempotentReplayed,
	"ETag", "WWW-Authenticate", "Date", api.HeaderHistoryBehind}, ", ")

// corsAllowed reports whether the pages of origin (an Origin header's value) may call the API
// with credentials: the one rule for the CORS headers and for a cross-origin WebSocket.
func (s *Server) corsAllowed(origin string) bool {
	return slices.Contains(s.Limits.CORSOrigins, origin)
}

// cors answers preflights and marks responses for the allowed origins, with credentials. A
// disallowed origin gets no CORS headers (the browser hides the response from its page) and its
// preflight is refused, so its page can send neither a body nor an Authorization header. A
// preflight's Access-Control-Allow-Methods are the methods routes has for its path, as its Allow
// would say; a path with no route is 404, as its request would be.
func (s *Server) cors(routes *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		// Only the API is shared with other origins. The pages put the signed-in party's token
		// in their HTML: no other origin may read them, allowed or not.
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := s.corsAllowed(origin)
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			w.Header().Add("Vary", "Access-Control-Request-Method")
			w.Header().Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				s.writeError(w, r, ordercast.Errorf(ordercast.EForbidden, "origin %s may not call this API", ordercast.Quote(origin)))
				return
			}
			methods := allowedMethods(routes, r)
			if len(methods) == 0 {
				s.writeError(w, r, ordercast.Errorf(ordercast.ENotFound, "no API endpoint at this path"))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}
