package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// maxTries bounds the retries of one ambiguous write.
const maxTries = 10

// createOrder creates a new order for a random restaurant of the run through a random endpoint.
func (p *phase) createOrder(ctx context.Context, r *rand.Rand) error {
	return p.create(ctx, func() string { return p.endpoint(r) }, p.led.parties[r.IntN(len(p.led.parties))])
}

// create creates a new order for rest through endpoint(), retrying ambiguous failures with the
// same id and details (a repeat returns the existing order), and records it.
func (p *phase) create(ctx context.Context, endpoint func() string, rest *partyState) error {
	id := fmt.Sprintf("%s-o%d", p.led.runID, p.led.next.Add(1))
	note := p.led.note()
	p.led.attempt(Attempt{Order: id, Note: note, Status: "placed", Party: rest.party.Key()})
	var out struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
	body := map[string]any{"id": id, "details": map[string]any{"check": true}, "note": note, "restaurant_id": rest.party.ID}
	var err error
	for try := range maxTries {
		err = p.write(ctx, "POST", endpoint(), "/v1/orders", body, &out)
		p.led.refused(err, Refusal{Request: RCreate, Order: id, Note: note})
		if err == nil || !ambiguous(err) || ctx.Err() != nil {
			break
		}
		p.led.countError("create retried after: " + errClass(err))
		p.backoff(try)
	}
	if err != nil {
		p.led.countError("create: " + err.Error())
		// It may still commit (the server finishes a batch it has taken): settleActive looks
		// for it, so that the restaurant's watchers are waited for on its events too.
		p.led.mu.Lock()
		p.led.pending = append(p.led.pending, pendingCreate{&orderState{id: id}, rest})
		p.led.mu.Unlock()
		return fmt.Errorf("create %s: %w", id, err)
	}
	p.led.ack(Ack{Order: id, Seq: 1, Status: "placed", Note: note})
	o := &orderState{id: id, version: 1, status: "placed"}
	o.known.Store(1)
	p.adopt(pendingCreate{o, rest})
	return nil
}

// pendingCreate is an order whose create got no answer: it may have committed all the same.
type pendingCreate struct {
	o    *orderState
	rest *partyState
}

// adopt puts a created order in the ledger and in its restaurant's orders (and out of the
// pending creates, where it was one).
func (p *phase) adopt(c pendingCreate) {
	p.led.mu.Lock()
	p.led.pending = slices.DeleteFunc(p.led.pending, func(q pendingCreate) bool { return q.o == c.o })
	p.led.orders[c.o.id] = c.o
	p.led.active = append(p.led.active, c.o)
	p.led.mu.Unlock()
	c.rest.add(c.o)
}

// write makes one of the writers' calls to the endpoint base, counted in flight to it while it
// runs, so that a node's kill can say how many writes it caught unanswered.
func (p *phase) write(ctx context.Context, method, base, path string, in, out any) error {
	n, _ := p.inFlight.LoadOrStore(base, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	defer n.(*atomic.Int64).Add(-1)
	return call(ctx, method, base, path, p.token, in, out)
}

// writesInFlight is how many of the writers' calls to base are unanswered now.
func (p *phase) writesInFlight(base string) int64 {
	if n, ok := p.inFlight.Load(base); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// couriersPerRun is how many couriers the writers give orders to, and take them from.
const couriersPerRun = 3

// courierID is the id of the run's courier n (0 ≤ n < couriersPerRun).
func (p *phase) courierID(n int) string { return fmt.Sprintf("%s-c%d", p.led.runID, n) }

// advance makes one change to a random order in progress: mostly the next status, sometimes,
// before the order is out for delivery, a courier assigned, another in its place, or none. It
// names the version it expects and retries ambiguous failures with the same request, which
// commits at most once. An unclear outcome is settled by reading the order's history.
func (p *phase) advance(ctx context.Context, r *rand.Rand) {
	var o *orderState
	for range 4 {
		if o = p.led.pickActive(r); o != nil && o.mu.TryLock() {
			break
		}
		o = nil
	}
	if o == nil {
		return
	}
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	note := p.led.note()
	a := Attempt{Order: o.id, Note: note, Expected: o.version}
	req := map[string]any{"note": note, "expected_version": o.version}
	method, path, request := "POST", "/v1/orders/"+url.PathEscape(o.id)+"/status", RStatus
	next := nextStatus(r, o.status)
	// Most orders go out for delivery with a courier, as on a platform: one without is given
	// one first, three times in four, so that even a short run's watchers get positions to check.
	if rank[o.status] >= rank["confirmed"] && rank[o.status] <= rank["ready"] &&
		(r.IntN(100) < 25 || o.courier == "" && next == "out_for_delivery" && r.IntN(100) < 75) {
		a.Kind, a.Courier = KindCourier, p.otherCourier(r, o.courier)
		req["courier_id"] = a.Courier
		if a.Courier == "" {
			req["courier_id"] = nil // an unassignment
		} else {
			req["courier_name"] = courierName(a.Courier)
		}
		method, path, request = "PUT", "/v1/orders/"+url.PathEscape(o.id)+"/courier", RCourier
	} else {
		a.Status = next
		req["status"] = a.Status
	}
	p.led.attempt(a)
	var err error
	for try := range maxTries {
		var ans statusAnswer
		err = p.write(ctx, method, p.endpoint(r), path, req, &ans)
		p.led.refused(err, Refusal{Request: request, Order: o.id, Note: note, Expected: o.version})
		if err == nil {
			ev := ans.Event.hist()
			if ev.Note == note && ev.Kind == a.Kind && (a.Kind == KindCourier && ev.Courier == a.Courier || a.Kind == "" && ev.Status == a.Status) {
				p.led.ack(Ack{Order: o.id, Seq: ev.Seq, Kind: ev.Kind, Status: ev.Status, Note: note})
				p.acked.Add(1)
				p.applied(o, ev)
				return
			}
			// Changed nothing and the latest event is not ours: our picture of the order was old,
			// which the history must show (Refusal.wrong).
			p.led.record(Refusal{Request: request, Order: o.id, Note: note, Expected: o.version, HTTP: http.StatusOK, Code: CodeUnchanged})
			err = errors.New(request + " answer not ours")
			break
		}
		if !ambiguous(err) || ctx.Err() != nil {
			break
		}
		p.led.countError(request + " retried after: " + errClass(err))
		p.backoff(try)
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusConflict {
		p.led.countError("conflict (settled from the history)")
	} else if err != nil {
		p.led.countError(request + ": unclear outcome (settled from the history)")
	}
	p.settle(ctx, o, note)
}

// courierName is the name the writers assign courier id under (none for no courier): the judge
// finds it on the courier's every event, in the history and on every stream.
func courierName(id string) string {
	if id == "" {
		return ""
	}
	return "Rider " + id
}

// otherCourier picks what a courier change gives an order assigned to current: another of the
// run's couriers, or, now and then, none (an unassignment) when it has one. Never current: a
// change to what is already so changes nothing, which the judge would read as a refusal.
func (p *phase) otherCourier(r *rand.Rand, current string) string {
	if current != "" && r.IntN(4) == 0 {
		return ""
	}
	for {
		if c := p.courierID(r.IntN(couriersPerRun)); c != current {
			return c
		}
	}
}

// positionEvery is how often each of the run's couriers posts its position: often beside the
// time an order stays out for delivery under the writers' rate (half a second in the tiny runs
// of the tests), so that most such orders show their courier to their watchers.
const positionEvery = 200 * time.Millisecond

// couriers post the run's couriers' positions until ctx ends, each every positionEvery: every
// order out for delivery with a courier shows them, at the nodes' pace (--location-interval), so
// that the watchers' positions are judged under the faults. A position is state, not history:
// one that fails is not retried, the next takes its place.
func (p *phase) couriers(ctx context.Context) {
	r := rand.New(rand.NewPCG(uint64(p.seed), 999))
	tick := time.NewTicker(positionEvery / couriersPerRun)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C: // the positions' schedule
		}
		cid := p.courierID(i % couriersPerRun)
		body := map[string]any{"lat": 52.5 + r.Float64()/100, "lng": 13.4 + r.Float64()/100}
		err := call(ctx, "POST", p.endpoint(r), "/v1/couriers/"+url.PathEscape(cid)+"/location", p.token, body, nil)
		p.led.refused(err, Refusal{Request: RLocation, Party: "courier:" + cid})
		if err != nil && ctx.Err() == nil {
			p.led.countError("location: " + errClass(err))
		}
	}
}

// applied moves the writers' picture of o to ev, its event at the latest seq they know.
func (p *phase) applied(o *orderState, ev HistEvent) {
	if ev.Seq > o.version {
		after := o.courier
		if ev.Kind == KindCourier {
			after = ev.Courier
		}
		if ev.Seq == o.version+1 {
			p.logCourier(o.courier, after)
		}
		o.version, o.status, o.courier = ev.Seq, ev.Status, after
		o.known.Store(ev.Seq)
	}
	if terminal(o.status) && !o.ended {
		o.ended = true
		p.led.setEnded(o)
		p.ordersEnded.Add(1)
	}
}

// settle reads o's history to learn whether the attempt with note committed, and where o is.
func (p *phase) settle(ctx context.Context, o *orderState, note string) {
	h, err := history(ctx, p.endpoints, o.id)
	if err != nil || len(h) == 0 {
		if ctx.Err() == nil { // writers stopping: the end of the phase reads every history anyway
			p.led.countError("settle: cannot read history")
		}
		return
	}
	for _, ev := range h {
		if ev.Note == note {
			p.led.mu.Lock()
			p.led.readback++
			p.led.mu.Unlock()
		}
	}
	p.caughtUp(o, h)
}

// caughtUp moves the writers' picture of o to its history h (not empty), courier included.
func (p *phase) caughtUp(o *orderState, h []HistEvent) {
	for _, ev := range h {
		p.applied(o, ev) // one event at a time, so that each courier's log counts each
	}
}

// logCourier counts an event that leaves an order with courier after, where it had before,
// in the logs of the couriers it belongs to: the one the order has after it, and the one it
// takes the order from (ordercast.LogParties).
func (p *phase) logCourier(before, after string) {
	for _, c := range p.led.couriers {
		if id := c.party.ID; id == after || id == before {
			c.logged.Add(1)
		}
	}
}

// writers runs the writers until ctx ends: a dispatcher hands out changes at the phase's rate
// (times the burst factor while a burst is on) to a pool that makes them; every order that ends
// is replaced by a new one.
func (p *phase) writers(ctx context.Context, n int) {
	work := make(chan struct{}, n)
	done := make(chan struct{})
	for i := range n {
		p.wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(p.seed), uint64(1000+i)))
			for {
				select {
				case <-ctx.Done():
					return
				case <-work:
				}
				p.advance(ctx, r)
				// Keep the number of orders in progress steady, so events keep flowing.
				for p.activeCount() < p.orders && ctx.Err() == nil {
					if err := p.createOrder(ctx, r); err != nil {
						break
					}
				}
			}
		})
	}
	go func() {
		defer close(done)
		next := time.Now()
		for ctx.Err() == nil {
			rate := p.rate * float64(p.burst.Load())
			next = next.Add(time.Duration(float64(time.Second) / rate))
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d): // the write schedule
				}
			} else if d < -time.Second {
				next = time.Now() // fell behind (writers busy): do not make up for it in a rush
			}
			select {
			case work <- struct{}{}:
			default: // every writer busy: this change is skipped, counted by the rate achieved
			}
		}
	}()
	<-done
}

func (p *phase) activeCount() int {
	p.led.mu.Lock()
	defer p.led.mu.Unlock()
	return len(p.led.active)
}

// errClass names the kind of a failed call, for counting.
func errClass(err error) string {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d", ae.status)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF"):
		return "connection reset"
	}
	return "transport error"
}

func (p *phase) backoff(try int) {
	time.Sleep(time.Duration(50*(try+1)) * time.Millisecond) // retry schedule of an ambiguous call
}
