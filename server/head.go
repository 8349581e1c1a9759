package server

import (
	"net/http"

	"github.com/ordercast/ordercast"
)

// handleStreamHead serves HEAD on the stream routes (/v1/orders/{id}/stream, /v1/orders/{id}/ws,
// /v1/stream): the headers a GET would get, after the same checks, and no body. It opens no
// stream: nothing is subscribed, counted or held. (The party streams answer HEAD in their own
// handler, which knows the party's kind.)
func (s *Server) handleStreamHead(w http.ResponseWriter, r *http.Request) {
	var err error
	if id := r.PathValue("id"); id != "" {
		if err = ordercast.ValidateID(id); err == nil {
			err = s.authorizeWatch(r, id)
		}
	} else {
		err = s.authorizeWatchAll(r)
	}
	// A WebSocket's GET is an upgrade, with no body type.
	sse := r.Pattern != "HEAD /v1/orders/{id}/ws"
	if err != nil {
		s.writeStreamError(w, r, err, sse) // a party's token reads the order: the store may be away
		return
	}
	writeStreamHead(w, sse)
}

// writeStreamHead answers HEAD on a stream route that passed its checks.
func writeStreamHead(w http.ResponseWriter, eventStream bool) {
	if eventStream {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}
