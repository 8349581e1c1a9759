package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// DefaultSnapshotLimit bounds the active orders sent in one snapshot of GET /v1/stream: an
// operator's console shows a screenful, and a snapshot is re-sent on every reconnect.
const DefaultSnapshotLimit = 500

// The event names of GET /v1/stream. A snapshot's data is a JSON array of orders (every
// non-terminal order, most recently updated first); a status event's data is one event, the same
// JSON as on an order's own stream.
const (
	EventSnapshot = "snapshot"
	EventStatus   = "status"
)

// handleStreamAll serves GET /v1/stream: the changes of every order, for operators' consoles. On
// connect it sends a snapshot of the active orders, then each change as it commits. Its events
// carry no id: status is state, so a reconnect gets a fresh snapshot instead of a replay, and a
// watcher whose mailbox overflowed gets one too.
func (s *Server) handleStreamAll(w http.ResponseWriter, r *http.Request) {
	if err := s.authorizeWatchAll(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.streamsClosing() {
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "shutting down"))
		return
	}
	release, err := s.admitStream(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
	// Subscribe before reading, so that a change committed in between is queued, not lost.
	sub := s.Hub.SubscribeAll()
	defer sub.Close()

	ctx := r.Context()
	snap, err := s.activeSnapshot(ctx)
	if err != nil {
		if s.answerStreamStoreAway(w, r, err) {
			return
		}
		s.writeError(w, r, err)
		return
	}

	if err := streamReadsNothing(w); err != nil {
		s.Logger.Debug("stream set-up: clear read deadline", "request_id", RequestID(ctx), "err", err)
		return
	}
	st, sse := s.newSSEStream(w, 0)
	sse.retry(s.Retry)
	seen := snap.write(sse)
	s.serveSSE(w, r, st, sub, func(msgs []*hub.Message, overflowed bool) error {
		if overflowed {
			// Some changes were dropped; status is state, so the current state replaces them.
			s.Metrics.caughtUp.Inc()
			snap, err := s.activeSnapshot(ctx)
			if err != nil {
				return err
			}
			seen = snap.write(sse)
			return nil
		}
		for _, m := range msgs {
			writeStatusChange(sse, seen, m)
		}
		return nil
	})
}

// snapshot is the active orders as read from the store, encoded once.
type snapshot struct {
	orders []ordercast.Order
	json   []byte
}

func (s *Server) activeSnapshot(ctx context.Context) (snapshot, error) {
	orders, err := s.Store.ActiveOrders(ctx, DefaultSnapshotLimit)
	if err != nil {
		return snapshot{}, fmt.Errorf("read active orders: %w", err)
	}
	if orders == nil {
		orders = []ordercast.Order{}
	}
	b, err := json.Marshal(orders)
	if err != nil {
		return snapshot{}, fmt.Errorf("encode snapshot: %w", err)
	}
	return snapshot{orders: orders, json: b}, nil
}

// write sends the snapshot and returns the version of each order in it, so that changes queued
// before the snapshot was read, and already part of it, are not sent again.
func (snap snapshot) write(st *sseFrames) map[string]int64 {
	seen := make(map[string]int64, len(snap.orders))
	for _, o := range snap.orders {
		seen[o.ID] = o.Version
	}
	st.named(EventSnapshot, snap.json)
	return seen
}

// writeStatusChange sends m unless the watcher already has it. seen forgets an order once it
// ends, so it holds only orders that are still active.
func writeStatusChange(st *sseFrames, seen map[string]int64, m *hub.Message) {
	id := m.Event.OrderID
	if m.Event.Seq <= seen[id] {
		return
	}
	st.named(EventStatus, m.JSON)
	if m.Event.Status.Terminal() {
		delete(seen, id)
	} else {
		seen[id] = m.Event.Seq
	}
}

// named appends an event without an id: a named event with one JSON data line.
func (f *sseFrames) named(event string, data []byte) {
	f.buf = append(f.buf, "event: "...)
	f.buf = append(f.buf, event...)
	f.buf = append(f.buf, "\ndata: "...)
	f.buf = append(f.buf, data...)
	f.buf = append(f.buf, "\n\n"...)
}
