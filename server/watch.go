package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/stream"
)

// The watch endpoints. Each validates and authorizes its request, then hands it to the stream
// engine, which sets the watch up one way for all (admit, subscribe, read) and runs it.

// handleStream serves GET /v1/orders/{id}/stream: the order's status changes as Server-Sent
// Events, from the current status or after Last-Event-ID; 204 when the client already has the
// terminal event.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	wt, ok := s.watchOrder(w, r)
	if !ok {
		return
	}
	s.engine.ServeSSE(w, r, wt, s.streamEnd(r))
}

// handleWebSocket serves GET /v1/orders/{id}/ws: the same events as the SSE stream, one JSON
// event per text message, with the same resume point (?lastEventId=N). After the terminal event
// the server closes with 1000 (at once on a reconnect after it); a draining node closes with 1001.
// A page of another origin may open it when --cors-origins lets that origin call the API.
func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	if err := stream.CheckWebSocketHandshake(w.Header(), r, s.corsAllowed); err != nil {
		s.writeError(w, r, err)
		return
	}
	wt, ok := s.watchOrder(w, r)
	if !ok {
		return
	}
	s.engine.ServeWebSocket(w, r, wt, s.streamEnd(r))
}

// handleStreamAll serves GET /v1/stream: the changes of every order, for operators' consoles. On
// connect it sends a snapshot of the active orders, then each change as it commits. Its events
// carry no id: status is state, so a reconnect gets a fresh snapshot instead of a replay, and a
// watcher whose mailbox overflowed gets one too.
func (s *Server) handleStreamAll(w http.ResponseWriter, r *http.Request) {
	if err := s.authorizeWatchAll(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	wt, ok := s.watch(w, r, stream.Request{Scope: stream.AllOrders}, true)
	if !ok {
		return
	}
	s.engine.ServeSSE(w, r, wt, s.streamEnd(r))
}

// handlePartyStream serves GET /v1/restaurants/{pid}/stream, GET /v1/couriers/{pid}/stream and
// GET /v1/customers/{pid}/stream: every order in the party's scope as Server-Sent Events. It opens
// with a snapshot of the scope's active orders (id: the party's log position), then each event of
// the party's log (id: its position); a reconnect with Last-Event-ID gets exactly the events after
// that position, of orders still in scope or not. The party's own actor token, or admin or system.
func (s *Server) handlePartyStream(kind ordercast.PartyKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := ordercast.Party{Kind: kind, ID: r.PathValue("pid")}
		if err := ordercast.ValidatePartyID(p.ID); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.authorizeParty(r, p); err != nil {
			s.writeError(w, r, err)
			return
		}
		last, resume, err := lastEventID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		wt, ok := s.watch(w, r, stream.Request{Scope: stream.PartyEvents, Party: p, Last: last, Resume: resume}, true)
		if !ok {
			return
		}
		s.engine.ServeSSE(w, r, wt, s.streamEnd(r))
	}
}

// watchOrder validates and authorizes a watch of one order's events (GET /v1/orders/{id}/…) and
// sets it up.
func (s *Server) watchOrder(w http.ResponseWriter, r *http.Request) (*stream.Watch, bool) {
	sse := r.Pattern != patWebSocket
	id := r.PathValue("id")
	if err := ordercast.ValidateID(id); err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	// A party's token is authorized by reading the order, which meets a store that is away
	// before the watch does.
	courier, err := s.authorizeWatchAs(r, id)
	if err != nil {
		s.writeStreamError(w, r, err, sse)
		return nil, false
	}
	last, resume, err := lastEventID(r)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	wt, ok := s.watch(w, r, stream.Request{Scope: stream.OrderEvents, OrderID: id, Last: last, Resume: resume, Courier: courier}, sse)
	if ok {
		if v, behind := wt.HistoryBehind(); behind {
			w.Header().Set(api.HeaderHistoryBehind, strconv.FormatInt(v, 10))
		}
	}
	return wt, ok
}

// credentialEnd is when the token r watches with, already accepted, stops being accepted (zero
// on an open server, or with public tracking, where a watch needs none): the stream ends then,
// and its client reconnects to be refused, or let in on a newer token (stream.Request.Until).
func (s *Server) credentialEnd(r *http.Request) time.Time {
	if s.Auth == nil || s.Auth.PublicTracking {
		return time.Time{}
	}
	tok, _ := s.watchToken(r) // accepted already: a token refused in the URL never gets here
	return s.Auth.Tokens.AcceptedUntil(tok)
}

// watch sets a watch up through the engine, admitted under the stream limits; on failure it has
// answered the request. sse says the answer is an event stream (see writeStreamError).
func (s *Server) watch(w http.ResponseWriter, r *http.Request, req stream.Request, sse bool) (*stream.Watch, bool) {
	beat, err := query(r, api.ParamHeartbeat)
	if err != nil {
		s.writeStreamError(w, r, err, sse)
		return nil, false
	}
	switch beat {
	case "", "comment":
	case "event":
		req.VisibleHeartbeats = sse
	default:
		s.writeStreamError(w, r, ordercast.Errorf(ordercast.EInvalid, "%s must be event or comment, got %s", api.ParamHeartbeat, ordercast.Quote(beat)), sse)
		return nil, false
	}
	every, err := query(r, api.ParamLocationInterval)
	if err == nil && every != "" {
		req.LocationInterval, err = parseLocationInterval(every)
	}
	if err != nil {
		s.writeStreamError(w, r, err, sse)
		return nil, false
	}
	req.Admit = func() (func(), error) { return s.admitStream(r) }
	req.Until = s.credentialEnd(r)
	wt, err := s.engine.Watch(r.Context(), req)
	if err != nil {
		s.writeStreamError(w, r, err, sse)
		return nil, false
	}
	if err := streamReadsNothing(w); err != nil {
		wt.Close()
		s.writeError(w, r, fmt.Errorf("stream set-up: clear read deadline: %w", err))
		return nil, false
	}
	return wt, true
}

// parseLocationInterval reads api.ParamLocationInterval: a duration from 0 to
// api.MaxLocationInterval.
func parseLocationInterval(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > api.MaxLocationInterval {
		return 0, ordercast.Errorf(ordercast.EInvalid, "%s must be a duration from 0s to %s (such as 5s), got %s",
			api.ParamLocationInterval, api.MaxLocationInterval, ordercast.Quote(v))
	}
	return d, nil
}

// streamEnd returns what the engine calls when a stream of r ends, which may be after the handler
// returned (a held stream): it completes the request's log line and, for a connection taken from
// net/http, counts it closed.
func (s *Server) streamEnd(r *http.Request) func(stream.End) {
	finish := handOver(r.Context())
	id, path := RequestID(r.Context()), r.URL.Path
	return func(e stream.End) {
		var attrs []slog.Attr
		if e.Reason != "" {
			attrs = append(attrs, slog.String("reason", e.Reason), slog.Int64("events", e.Events))
		}
		if e.Held {
			attrs = append(attrs, slog.Bool("held", true))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("err", e.Err.Error()))
			if e.Reason == stream.ReasonStoreError {
				// The client resumes from its Last-Event-ID, here or elsewhere: nothing is lost.
				// An outage (the store away, which its own line reports once) is no error of
				// this stream's; anything else is.
				level := slog.LevelError
				if ordercast.ErrorCode(e.Err) == ordercast.EUnavailable {
					level = slog.LevelWarn
				}
				s.Logger.Log(context.Background(), level, "stream catch-up failed", "request_id", id, "path", path, "err", e.Err)
			}
		}
		var bypassed int64
		if e.Hijacked {
			// Its bytes never went through the response writer, and net/http stopped counting
			// the connection when it was taken over.
			bypassed = e.Bytes
			s.Metrics.hijackedClosed()
		}
		finish(bypassed, attrs...)
	}
}

// lastEventID reads where a client resumes: the Last-Event-ID header, or the lastEventId query
// parameter for clients that cannot set headers (see parseLastEventID). The header wins: an
// EventSource keeps its first URL, query included, and sends its newest id in the header.
func lastEventID(r *http.Request) (last int64, resume bool, err error) {
	// One id, one field: of two, which was meant? (RFC 9110 §5.3: a field that is no list must
	// not be sent twice; nor is the query parameter that stands for it.)
	vs := r.Header.Values(api.HeaderLastEventID)
	if len(vs) > 1 {
		return 0, false, ordercast.Errorf(ordercast.EMalformed, "Last-Event-ID must be sent once")
	}
	if len(vs) == 0 || vs[0] == "" {
		v, err := query(r, api.ParamLastEventID)
		if err != nil {
			return 0, false, err
		}
		return parseLastEventID(api.ParamLastEventID, v)
	}
	return parseLastEventID(api.HeaderLastEventID, vs[0])
}

// parseLastEventID parses an event id this server sent, given as name (the header or the query
// parameter, which a refusal names): a seq or a party log's position, a non-negative decimal
// integer, written one way. resume is false for none (empty: EventSource sends no header before
// its first id), a fresh connect; 0 is an id like any other, asking for every event after it.
func parseLastEventID(name, v string) (last int64, resume bool, err error) {
	if v == "" {
		return 0, false, nil
	}
	n, ok := parseNonNegative(v)
	if !ok {
		return 0, false, ordercast.Errorf(ordercast.EMalformed, "%s must be an event's id as the server sent it: a non-negative integer in decimal digits, with no sign or leading zero; got %s", name, ordercast.Quote(v))
	}
	return n, true, nil
}

// maxLongPollWait caps the wait of a long poll: longer asks are shortened to it. Proxies and
// load balancers commonly cut idle requests at 60 s.
const maxLongPollWait = 60 * time.Second

// handleLongPoll serves GET /v1/orders/{id}?wait=30s&after_version=N (authorized, and N and the
// wait read, by handleGetOrder): the order as soon as its version is past N. It answers at once when it
// already is (or the order has ended and will not change again); otherwise it holds the request
// until a change commits or the wait ends, and then answers 200 with the order either way: the
// client compares the version, so a timeout needs no status of its own (304 would need
// validators, and some clients and proxies treat it specially). wait is a Go duration or a number
// of seconds, capped at maxLongPollWait; after_version defaults to 0. A held request counts
// against the stream limits.
func (s *Server) handleLongPoll(w http.ResponseWriter, r *http.Request, id, courier string, after int64, wait time.Duration) {
	wt, ok := s.watch(w, r, stream.Request{Scope: stream.OrderState, OrderID: id, Courier: courier}, false)
	if !ok {
		return
	}
	holdOpen(r.Context())
	o, err := s.engine.LongPoll(r.Context(), w, wt, after, wait)
	switch {
	case r.Context().Err() != nil:
		return // the client left, or the shutdown deadline cut the request
	case err != nil:
		s.writeError(w, r, err)
	default:
		s.writeLongPollAnswer(w, r, o)
	}
}

// writeLongPollAnswer answers a long poll with order o: with its courier's position when
// positions are taken (longPollAnswer).
func (s *Server) writeLongPollAnswer(w http.ResponseWriter, r *http.Request, o ordercast.Order) {
	if s.Locations == nil {
		s.writeJSON(w, r, http.StatusOK, o)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.longPollAnswer(r, o))
}

// parseAfterVersion reads a long poll's after_version: a non-negative integer, 0 when absent.
func parseAfterVersion(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, ok := parseNonNegative(v)
	if !ok {
		return 0, ordercast.Errorf(ordercast.EInvalid, "after_version must be a non-negative integer")
	}
	return n, nil
}

// durationSyntax is what time.ParseDuration reads, whatever the value: a string that has it but
// does not parse holds more than a time.Duration does (about 292 years).
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// secondsSyntax is a wait in seconds: decimal digits, with a fraction or not.
var secondsSyntax = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)$`)

// parseWait reads the wait of a long poll: a Go duration ("30s") or seconds ("30", "2.5"), not
// negative, capped at maxLongPollWait. A value too large for a time.Duration, in either
// spelling, is as capped as any long wait.
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil && durationSyntax.MatchString(v) {
		d, err = time.Duration(math.MaxInt64), nil
		if v[0] == '-' {
			d = math.MinInt64
		}
	}
	if err != nil {
		if !secondsSyntax.MatchString(v) {
			return 0, ordercast.Errorf(ordercast.EInvalid, "wait must be a duration such as 30s, or seconds such as 30 or 2.5")
		}
		// Decimal digits only: ParseFloat's one failure is a number past float64, which is +Inf,
		// as capped as any long wait.
		n, _ := strconv.ParseFloat(v, 64)
		d = time.Duration(min(n, maxLongPollWait.Seconds()) * float64(time.Second))
	}
	if d < 0 {
		return 0, ordercast.Errorf(ordercast.EInvalid, "wait must not be negative")
	}
	return min(d, maxLongPollWait), nil
}
