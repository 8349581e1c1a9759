package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// The floor is what any Go HTTP push server pays on this machine for the bench's workload: a
// plain in-memory push server (`ordercast bench-floor`, started by `bench --floor`) that speaks
// ordercast's wire for the requests the bench's workloads make (create an order, assign its
// courier, watch its SSE stream, change its status, one or many a request, post couriers'
// positions, one or many a request) and nothing else. No store, no durability, no auth, no hub,
// no limits, no metrics, and for positions no conflation, no cap and no ETA: net/http, one map
// of orders, and one write and flush per watcher per change or position, done in the request
// that made it.
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
	mu       sync.RWMutex
	orders   map[string]*floorOrder
	couriers map[string][]*floorOrder // the orders each courier carries
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
	w    io.Writer
	rc   *http.ResponseController
	gone chan struct{} // closed when a write fails: the handler returns
	dead bool
}

// floorWriteTimeout bounds one write to a watcher, as ordercast's --stream-write-timeout does: a
// watcher that stops reading must not hold its order's lock, and with it every change of the
// order and every heartbeat after it, for good.
var floorWriteTimeout = 10 * time.Second // a variable for the test of a watcher that stops reading

// send writes b to the watcher and flushes it; a failed watcher is told to go, once.
func (fw *floorWatcher) send(b []byte) {
	if fw.dead {
		return
	}
	err := fw.rc.SetWriteDeadline(time.Now().Add(floorWriteTimeout))
	if err == nil {
		_, err = fw.w.Write(b)
	}
	if err == nil {
		err = fw.rc.Flush()
	}
	if err != nil {
		fw.dead = true
		close(fw.gone)
	}
}

// FloorHandler returns the plain push server's handler (see the comment at the top of floor.go).
func FloorHandler(ctx context.Context) http.Handler {
	f := &floor{orders: map[string]*floorOrder{}, couriers: map[string][]*floorOrder{}}
	go f.heartbeats(ctx)
	mux := http.NewServeMux()
	mux.HandleFunc(api.RouteCreateOrder, f.create)
	mux.HandleFunc(api.RouteStream, f.stream)
	mux.HandleFunc(api.RouteSetStatus, f.setStatus)
	mux.HandleFunc(api.RouteSetStatuses, f.setStatuses)
	mux.HandleFunc(api.RouteSetCourier, f.setCourier)
	mux.HandleFunc(api.RoutePostLocation, f.postLocation)
	mux.HandleFunc(api.RoutePostLocations, f.postLocations)
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
	created := o.order // the answer's copy: once in the map, a change may move o.order
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
	floorJSON(w, http.StatusCreated, api.CreateOrderResponse{Order: created})
}

// stream sends the order's events after Last-Event-ID, then each change as it is made.
func (f *floor) stream(w http.ResponseWriter, r *http.Request) {
	o := f.get(r.PathValue("id"))
	if o == nil {
		floorError(w, http.StatusNotFound, "no such order")
		return
	}
	// An id it cannot read (or none) replays from the first event, as ordercast's streams do
	// without one; the bench's watchers send only ids the floor gave them.
	after, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fw := &floorWatcher{w: w, rc: rc, gone: make(chan struct{})}
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
	var req api.SetStatusRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, code, msg := f.change(r.PathValue("id"), req)
	if code != http.StatusOK {
		floorError(w, code, msg)
		return
	}
	floorJSON(w, http.StatusOK, res)
}

// setStatuses applies each change of the request as setStatus does, in order.
func (f *floor) setStatuses(w http.ResponseWriter, r *http.Request) {
	var req api.SetStatusesRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res := api.SetStatusesResponse{Results: make([]api.StatusResult, len(req.Changes))}
	for i, ch := range req.Changes {
		one, code, msg := f.change(ch.OrderID, ch.SetStatusRequest)
		if code != http.StatusOK {
			res.Results[i].Error = &api.ErrorDetail{Code: "floor", Message: msg}
			res.Refused++
			continue
		}
		res.Results[i].SetStatusResponse = &one
		res.Accepted++
	}
	floorJSON(w, http.StatusOK, res)
}

// change moves order id to req's status, writing the event to its watchers; code is the HTTP
// status of a refusal (and msg why), or 200.
func (f *floor) change(id string, req api.SetStatusRequest) (res api.SetStatusResponse, code int, msg string) {
	o := f.get(id)
	if o == nil {
		return res, http.StatusNotFound, "no such order"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if req.ExpectedVersion != nil && *req.ExpectedVersion != o.order.Version {
		return res, http.StatusConflict, "version moved"
	}
	ev := o.append(ordercast.Event{Status: req.Status, Note: req.Note})
	return api.SetStatusResponse{Order: o.order, Event: ev, Changed: true}, http.StatusOK, ""
}

// append gives ev the order's next seq and the time now, applies it to the order and writes it
// to every watcher. Called with o.mu held.
func (o *floorOrder) append(ev ordercast.Event) ordercast.Event {
	now := time.Now().UTC()
	o.order.Version++
	o.order.Status, o.order.UpdatedAt = ev.Status, now
	ev.OrderID, ev.Seq, ev.At = o.order.ID, o.order.Version, now
	frame := floorFrame(ev)
	o.frames = append(o.frames, frame)
	o.send(frame)
	return ev
}

// send writes b to every watcher of the order. Called with o.mu held.
func (o *floorOrder) send(b []byte) {
	for fw := range o.watchers {
		fw.send(b)
	}
}

// setCourier gives the order to a courier (an event of kind courier, as ordercast's), whose
// positions then reach it.
func (f *floor) setCourier(w http.ResponseWriter, r *http.Request) {
	o := f.get(r.PathValue("id"))
	if o == nil {
		floorError(w, http.StatusNotFound, "no such order")
		return
	}
	var req api.SetCourierRequest
	if !decodeBody(w, r, &req) {
		return
	}
	cid, _ := req.CourierID.Courier()
	// The order's lock, then the floor's (nothing takes them the other way round): the couriers'
	// lists change with the order's courier, never apart from it. A courier's list is copied on
	// write: a post reads it under the read lock and walks it after.
	o.mu.Lock()
	f.mu.Lock()
	if old := o.order.CourierID; old != "" {
		f.couriers[old] = slices.DeleteFunc(slices.Clone(f.couriers[old]), func(x *floorOrder) bool { return x == o })
	}
	if cid != "" {
		f.couriers[cid] = append(slices.Clip(f.couriers[cid]), o)
	}
	f.mu.Unlock()
	ev := o.append(ordercast.Event{Kind: ordercast.KindCourier, Status: o.order.Status, CourierID: cid})
	o.order.CourierID = cid
	res := api.SetStatusResponse{Order: o.order, Event: ev, Changed: true}
	o.mu.Unlock()
	floorJSON(w, http.StatusOK, res)
}

// postLocation writes the courier's position to the watchers of every order it carries.
func (f *floor) postLocation(w http.ResponseWriter, r *http.Request) {
	var req api.PostLocationRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Lat == nil || req.Lng == nil {
		floorError(w, http.StatusBadRequest, "the floor takes a JSON body with lat and lng")
		return
	}
	floorJSON(w, http.StatusOK, api.PostLocationResponse{Orders: f.locate(r.PathValue("cid"), req)})
}

// postLocations is postLocation for each position of the request, in order.
func (f *floor) postLocations(w http.ResponseWriter, r *http.Request) {
	var req api.PostLocationsRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res := api.PostLocationsResponse{Results: make([]api.LocationResult, len(req.Positions))}
	for i, p := range req.Positions {
		if p.Lat == nil || p.Lng == nil {
			res.Results[i].Error = &api.ErrorDetail{Code: "floor", Message: "lat and lng are required"}
			res.Refused++
			continue
		}
		n := f.locate(p.CourierID, p.PostLocationRequest)
		res.Results[i].Orders = &n
		res.Accepted++
	}
	floorJSON(w, http.StatusOK, res)
}

// locate writes a position of courier cid to the watchers of the orders it carries, and says how
// many those are.
func (f *floor) locate(cid string, p api.PostLocationRequest) int {
	u := ordercast.LocationUpdate{Type: ordercast.LocationType, CourierID: cid, Lat: *p.Lat, Lng: *p.Lng,
		AccuracyM: p.AccuracyM, Heading: p.Heading, SpeedMPS: p.SpeedMPS, At: time.Now().UTC()}
	if p.At != nil {
		u.At = *p.At
	}
	f.mu.RLock()
	orders := f.couriers[cid]
	f.mu.RUnlock()
	for _, o := range orders {
		u.OrderID = o.order.ID // set once at creation: read without o.mu
		data, err := json.Marshal(u)
		if err != nil {
			panic("bench-floor: encode position: " + err.Error()) // finite numbers, strings, a time
		}
		frame := fmt.Appendf(nil, "event: %s\ndata: %s\n\n", api.EventLocation, data)
		o.mu.Lock()
		o.send(frame)
		o.mu.Unlock()
	}
	return len(orders)
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
			o.send(ping)
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

// decodeBody decodes the request's JSON body into v, or answers 400 and reports false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		floorError(w, http.StatusBadRequest, "the floor takes a JSON body")
		return false
	}
	return true
}

func floorError(w http.ResponseWriter, code int, msg string) {
	floorJSON(w, code, map[string]any{"error": map[string]string{"code": "floor", "message": msg}})
}
