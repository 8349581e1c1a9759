package server

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ordercast/ordercast"
)

// MaxLongPollWait caps the wait of a long poll: longer asks are shortened to it. Proxies and
// load balancers commonly cut idle requests at 60 s.
const MaxLongPollWait = 60 * time.Second

// handleLongPoll serves GET /v1/orders/{id}?wait=30s&after_version=N: the order as soon as its
// version is past N. It answers at once when it already is (or the order has ended and will not
// change again); otherwise it holds the request until a change commits or the wait ends, and then
// answers 200 with the order either way: the client compares the version, so a timeout needs no
// status of its own (304 would need validators, and some clients and proxies treat it specially).
// wait is a Go duration or a number of seconds, capped at MaxLongPollWait; after_version defaults
// to 0. Like the SSE stream it subscribes to the hub before reading the store, so a change
// committed in between wakes it; it never polls the store on a timer.
func (s *Server) handleLongPoll(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var after int64
	if v := q.Get("after_version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "after_version must be a non-negative integer"))
			return
		}
		after = n
	}
	// Authorized by handleGetOrder. A held request counts against the stream limits.
	release, err := s.admitStream(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()

	// Subscribe before reading, so that a change committed in between is queued, not lost.
	sub := s.Hub.Subscribe(id)
	defer sub.Close()

	ctx := r.Context()
	o, err := s.Store.Order(ctx, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if o.Version > after || o.Status.Terminal() || wait == 0 || s.streamsClosing() {
		writeJSON(w, http.StatusOK, o)
		return
	}
	// The server-wide WriteTimeout is shorter than the longest wait: move this response's
	// deadline past the wait, as the streams do before each write.
	if err := streamReadsNothing(w); err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(wait + s.StreamWriteTimeout)); err != nil {
		s.writeError(w, r, err)
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return // the client left, or the shutdown deadline cut the request
		case <-timer.C:
			writeJSON(w, http.StatusOK, o) // unchanged
			return
		case <-s.closing:
			writeJSON(w, http.StatusOK, o) // draining: answer now, the client polls elsewhere
			return
		case <-sub.Ready():
			msgs, overflowed := sub.Take()
			changed := overflowed
			for _, m := range msgs {
				changed = changed || m.Event.Seq > after
			}
			if !changed {
				continue
			}
			if o, err = s.Store.Order(ctx, id); err != nil {
				s.writeError(w, r, err)
				return
			}
			if o.Version > after {
				writeJSON(w, http.StatusOK, o)
				return
			}
		}
	}
}

// parseWait reads the wait of a long poll: a Go duration ("30s") or whole seconds ("30"), not
// negative, capped at MaxLongPollWait.
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseUint(v, 10, 64)
		if errors.Is(nerr, strconv.ErrRange) {
			n, nerr = math.MaxUint64, nil // all digits, just very many: as capped as any long wait
		}
		if nerr != nil {
			return 0, ordercast.Errorf(ordercast.EInvalid, "wait must be a duration such as 30s")
		}
		d = time.Duration(min(n, uint64(MaxLongPollWait/time.Second))) * time.Second
	}
	if d < 0 {
		return 0, ordercast.Errorf(ordercast.EInvalid, "wait must not be negative")
	}
	return min(d, MaxLongPollWait), nil
}
