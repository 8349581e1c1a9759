package server

import (
	"errors"
	"net/http"
	"time"
)

// streamReadsNothing clears the request's read deadline (ReadTimeout) once a stream, long poll or
// WebSocket is set up: the deadline bounds a request body that never arrives, but on a request
// that stays open it would fire later and cut the stream (net/http cancels the request when its
// background read fails). The WebSocket reads its own frames with deadlines of its own.
func streamReadsNothing(w http.ResponseWriter) error {
	err := http.NewResponseController(w).SetReadDeadline(time.Time{})
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
