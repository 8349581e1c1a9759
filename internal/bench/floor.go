package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// The floor is what any Go HTTP push server pays on this machine for the bench's workload: a
// plain in-memory push server (`ordercast bench-floor`, started by `bench --floor`) that speaks
// ordercast's wire for the three requests the workload makes (create an order, watch its SSE
// stream, change its status) and nothing else. No store, no durability, no auth, no hub, no
// limits, no metrics: net/http, one map of orders, and one write and flush per watcher per
// change, done in the request that made the change.
//
// Run in the same invocation as ordercast, on the same watchers' count, rate and clients, its row
// says how much of ordercast's latency and CPU per change is the machine, the kernel's loopback
// TCP and the bench's own clients, which no server on these cores avoids. This machine is
// shared, and its speed moves within an hour: a figure is only good beside another of the same
// hour, which is what the floor gives.

// floorHeartbeat keeps the floor's idle streams inside the client's idle timeout
// (client.DefaultIdleTimeout, 45 s), as ordercast's heartbeats do.
const floorHeartbeat = 15 * time.Second

// floor is the plain push server's state.
type floor struct {
	mu     sync.RWMutex
	orders map[string]*floorOrder
}

// floorOrder is one order, the frames of its events (frames[i] is seq i+1) and its watchers.
// Its lock is held while a change is written to every watcher, which keeps them in seq order.
type floorOrder struct {
	mu       sync.Mutex
	order    ordercast.Order
	frames   [][]byte
	watchers map[*floorWatcher]struct{}
}

type floorWatcher struct {
	w     io.Writer
	flush func() error
	gone  chan struct{} // closed when a write fails: the handler returns
	dead  bool
}

// send writes b to the watcher and flushes it; a failed watcher is told to go, once.
func (fw *floorWatcher) send(b []byte) {
	if fw.dead {
		return
	}
	if _, err := fw.w.Write(b); err == nil {
		if err = fw.flush(); err == nil {
			return
		}
	}
	fw.dead = true
	close(fw.gone)
}

// FloorHandler returns the plain push server's handler (see the comment at the top of floor.go).
func FloorHandler(ctx context.Context) http.Handler {
	f := &floor{orders: map[string]*floorOrder{}}
	go f.heartbeats(ctx)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathOrders, f.create)
	mux.HandleFunc("GET "+api.PathOrders+"/{id}/stream", f.stream)
	mux.HandleFunc("POST "+api.PathOrders+"/{id}/status", f.setStatus)
	return mux
}

// RunFloor serves the plain push server on a free loopback port, says "serving on URL" on out
// (as serve does, which is how the bench finds it), and stops when ctx ends.
func RunFloor(ctx context.Context, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench-floor: %w", err)
	}
	srv := &http.Server{Handler: FloorHandler(ctx), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "bench-floor: serving on http://%s\n", ln.Addr())
	stopped := context.AfterFunc(ctx, func() { srv.Close() }) // streams never end by themselves
	defer stopped()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bench-floor: %w", err)
	}
	return nil
}

func (f *floor) get(id string) *floorOrder {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.orders[id]
}

func (f *floor) create(w http.ResponseWriter, r *http.Request) {
	var req api.CreateOrderRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" {
		floorError(w, http.StatusBadRequest, "the floor takes a JSON body with an id")
		return
	}
	now := time.Now().UTC()
	o := &floorOrder{
		order:    ordercast.Order{ID: req.ID, Status: ordercast.StatusPlaced, Version: 1, Details: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now},
		watchers: map[*floorWatcher]struct{}{},
	}
	o.frames = append(o.frames, floorFrame(ordercast.Event{OrderID: req.ID, Seq: 1, Status: ordercast.StatusPlaced, At: now}))
	f.mu.Lock()
	_, taken := f.orders[req.ID]
	if !taken {
		f.orders[req.ID] = o
	}
	f.mu.Unlock()
	if taken {
		floorError(w, http.StatusConflict, "order exists")
		return
	}
	floorJSON(w, http.StatusCreated, api.CreateOrderResponse{Order: o.order})
}

// stream sends the order's events after Last-Event-ID, then each change as it is made.
func (f *floor) stream(w http.ResponseWriter, r *http.Request) {
	o := f.get(r.PathValue("id"))
	if o == nil {
		floorError(w, http.StatusNotFound, "no such order")
		return
	}
	after, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fw := &floorWatcher{w: w, flush: rc.Flush, gone: make(chan struct{})}
	o.mu.Lock()
	fw.send([]byte("retry: 1000\n\n"))
	for _, b := range o.frames[min(max(after, 0), int64(len(o.frames))):] {
		fw.send(b)
	}
	o.watchers[fw] = struct{}{}
	o.mu.Unlock()
	select {
	case <-r.Context().Done():
	case <-fw.gone:
	}
	o.mu.Lock()
	delete(o.watchers, fw)
	o.mu.Unlock()
}

// setStatus appends the change and writes it to every watcher of the order before answering.
func (f *floor) setStatus(w http.ResponseWriter, r *http.Request) {
	o := f.get(r.PathValue("id"))
	if o == nil {
		floorError(w, http.StatusNotFound, "no such order")
		return
	}
	var req api.SetStatusRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		floorError(w, http.StatusBadRequest, "the floor takes a JSON body")
		return
	}
	o.mu.Lock()
	if req.ExpectedVersion != nil && *req.ExpectedVersion != o.order.Version {
		o.mu.Unlock()
		floorError(w, http.StatusConflict, "version moved")
		return
	}
	now := time.Now().UTC()
	o.order.Version++
	o.order.Status, o.order.UpdatedAt = req.Status, now
	ev := ordercast.Event{OrderID: o.order.ID, Seq: o.order.Version, Status: req.Status, At: now, Note: req.Note}
	frame := floorFrame(ev)
	o.frames = append(o.frames, frame)
	for fw := range o.watchers {
		fw.send(frame)
	}
	res := api.SetStatusResponse{Order: o.order, Event: ev, Changed: true}
	o.mu.Unlock()
	floorJSON(w, http.StatusOK, res)
}

// heartbeats writes a comment to every stream every floorHeartbeat until ctx ends.
func (f *floor) heartbeats(ctx context.Context) {
	t := time.NewTicker(floorHeartbeat)
	defer t.Stop()
	ping := []byte(": ping\n\n")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.RLock()
		orders := make([]*floorOrder, 0, len(f.orders))
		for _, o := range f.orders {
			orders = append(orders, o)
		}
		f.mu.RUnlock()
		for _, o := range orders {
			o.mu.Lock()
			for fw := range o.watchers {
				fw.send(ping)
			}
			o.mu.Unlock()
		}
	}
}

// floorFrame is ev as ordercast's SSE streams frame it: id, event name, one JSON data line.
func floorFrame(ev ordercast.Event) []byte {
	data, err := json.Marshal(ev.Wire())
	if err != nil {
		panic("bench-floor: encode event: " + err.Error()) // strings, integers and a time
	}
	return fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, api.EventName(ev), data)
}

func floorJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // a client gone mid-answer is the client's business
}

func floorError(w http.ResponseWriter, code int, msg string) {
	floorJSON(w, code, map[string]any{"error": map[string]string{"code": "floor", "message": msg}})
}
