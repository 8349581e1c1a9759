package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

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
	if s.Draining() {
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "shutting down"))
		return
	}
	// Subscribe before reading, so that a change committed in between is queued, not lost.
	sub := s.Hub.SubscribeAll()
	defer sub.Close()

	ctx := r.Context()
	snap, err := s.activeSnapshot(ctx)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	st := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.StreamWriteTimeout}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
	w.WriteHeader(http.StatusOK)
	st.retry(s.Retry)
	seen := snap.write(st)
	if err := st.flush(); err != nil {
		s.Logger.Debug("stream write failed", "stream", "all", "err", err)
		return
	}

	heartbeat := time.NewTicker(s.Heartbeat)
	defer heartbeat.Stop()
	var drain <-chan time.Time // armed when the server starts closing
	closing := s.closing
	for {
		select {
		case <-ctx.Done():
			return
		case <-closing:
			closing = nil
			drain = time.After(s.drainDelay())
		case <-drain:
			return // the console reconnects and gets a fresh snapshot
		case <-heartbeat.C:
			st.comment("ping")
		case <-sub.Ready():
			msgs, overflowed := sub.Take()
			if overflowed {
				// Some changes were dropped; status is state, so the current state replaces them.
				snap, err := s.activeSnapshot(ctx)
				if err != nil {
					s.Logger.Error("stream snapshot failed", "stream", "all", "err", err)
					return
				}
				seen = snap.write(st)
				break
			}
			for _, m := range msgs {
				writeStatusChange(st, seen, m)
			}
		}
		if err := st.flush(); err != nil {
			s.Logger.Debug("stream write failed", "stream", "all", "err", err)
			return
		}
	}
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
func (snap snapshot) write(st *sseWriter) map[string]int64 {
	seen := make(map[string]int64, len(snap.orders))
	for _, o := range snap.orders {
		seen[o.ID] = o.Version
	}
	st.named(EventSnapshot, snap.json)
	return seen
}

// writeStatusChange sends m unless the watcher already has it. seen forgets an order once it
// ends, so it holds only orders that are still active.
func writeStatusChange(st *sseWriter, seen map[string]int64, m *hub.Message) {
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
func (st *sseWriter) named(event string, data []byte) {
	st.buf = append(st.buf, "event: "...)
	st.buf = append(st.buf, event...)
	st.buf = append(st.buf, "\ndata: "...)
	st.buf = append(st.buf, data...)
	st.buf = append(st.buf, "\n\n"...)
}
