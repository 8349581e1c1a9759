package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// apiClient makes the checker's API calls: loopback only, never through a proxy, each call
// bounded by its context.
var apiClient = &http.Client{Transport: &http.Transport{
	Proxy:               nil,
	DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	MaxIdleConns:        256,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     30 * time.Second,
}}

// orderState is what the writers know of one order. A writer holds mu while it changes the
// order, so each order has one change in flight at a time and every change names the version
// it expects.
type orderState struct {
	id       string
	mu       sync.Mutex
	version  int64
	status   string
	courier  string // the courier the order is assigned to, none when unassigned
	ended    bool
	watchers atomic.Int32
	known    atomic.Int64 // version, readable without mu: the recovery targets
}

// ledger is the writers' record: every attempt, every acknowledgement, the orders.
type ledger struct {
	mu       sync.Mutex
	runID    string
	next     atomic.Int64
	orders   map[string]*orderState
	active   []*orderState
	parties  []*partyState // the restaurants, fixed before the writers start
	couriers []*partyState // the couriers (couriersPerRun), fixed before the writers start
	attempts []Attempt
	acks     []Ack
	refusals []Refusal
	pending  []pendingCreate // creates that got no answer and are not (yet) seen committed
	readback int             // attempts proved committed by reading the history after an unclear answer
	errors   map[string]int
}

func newLedger(runID string) *ledger {
	return &ledger{runID: runID, orders: map[string]*orderState{}, errors: map[string]int{}}
}

func (l *ledger) note() string { return fmt.Sprintf("%s-%d", l.runID, l.next.Add(1)) }

func (l *ledger) attempt(a Attempt) {
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
}

func (l *ledger) ack(a Ack) {
	l.mu.Lock()
	l.acks = append(l.acks, a)
	l.mu.Unlock()
}

// refused records rf when err is a refusal (an answer neither 2xx nor 5xx), with its status
// and code.
func (l *ledger) refused(err error, rf Refusal) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status >= 500 {
		return
	}
	rf.HTTP, rf.Code = ae.status, ae.code
	l.record(rf)
}

// record keeps rf for the judge.
func (l *ledger) record(rf Refusal) {
	l.mu.Lock()
	l.refusals = append(l.refusals, rf)
	l.mu.Unlock()
}

func (l *ledger) countError(what string) {
	l.mu.Lock()
	l.errors[what]++
	l.mu.Unlock()
}

// pickActive returns a random order still in progress, or nil.
func (l *ledger) pickActive(r *rand.Rand) *orderState {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.active) == 0 {
		return nil
	}
	return l.active[r.IntN(len(l.active))]
}

// pickForWatcher returns an order in progress with few watchers (the fewest of three samples).
func (l *ledger) pickForWatcher(r *rand.Rand) *orderState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *orderState
	for range 3 {
		if len(l.active) == 0 {
			return nil
		}
		o := l.active[r.IntN(len(l.active))]
		if best == nil || o.watchers.Load() < best.watchers.Load() {
			best = o
		}
	}
	return best
}

func (l *ledger) setEnded(o *orderState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, a := range l.active {
		if a == o {
			l.active[i] = l.active[len(l.active)-1]
			l.active = l.active[:len(l.active)-1]
			break
		}
	}
}

// apiError is an HTTP answer other than success.
type apiError struct {
	status int
	code   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d %s", e.status, e.code) }

// ambiguous reports whether a failed write may or may not have committed: transport errors and
// 5xx (the node, or the proxy in front, failed somewhere between receiving and answering).
func ambiguous(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status >= 500 || ae.status == http.StatusTooManyRequests
	}
	return err != nil
}

// call makes one API call with a 5 s bound and decodes a 2xx answer into out.
func call(ctx context.Context, method, base, path, token string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{status: resp.StatusCode, code: errorCode(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// errorCode is the code of an error body, or "" when there is none: a proxy's error page is
// not JSON, and the status says enough.
func errorCode(body []byte) string {
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &eb)
	return eb.Error.Code
}

type apiEvent struct {
	OrderID     string    `json:"order_id"`
	Seq         int64     `json:"seq"`
	Kind        string    `json:"kind"`
	Status      string    `json:"status"`
	CourierID   string    `json:"courier_id"`
	CourierName string    `json:"courier_name"`
	Note        string    `json:"note"`
	Actor       string    `json:"actor"`
	At          time.Time `json:"at"`
}

// hist is e as the judge reads it.
func (e apiEvent) hist() HistEvent {
	return HistEvent{Seq: e.Seq, Status: e.Status, Kind: e.Kind, Courier: e.CourierID, CourierName: e.CourierName, Note: e.Note, Actor: e.Actor, At: e.At}
}

type statusAnswer struct {
	Event   apiEvent `json:"event"`
	Changed bool     `json:"changed"`
}

// history reads an order's events through the API, retrying failures for up to a minute.
func history(ctx context.Context, endpoints func() []string, id string) ([]HistEvent, error) {
	var last error
	for try := range 60 {
		eps := endpoints()
		var out struct {
			Events []apiEvent `json:"events"`
		}
		err := call(ctx, "GET", eps[try%len(eps)], "/v1/orders/"+url.PathEscape(id)+"/events?after=0", "", nil, &out)
		if err == nil {
			h := make([]HistEvent, len(out.Events))
			for i, e := range out.Events {
				h[i] = e.hist()
			}
			return h, nil
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return nil, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(time.Duration(100+try*20) * time.Millisecond) // backing off a failing node
	}
	return nil, fmt.Errorf("history of %s: %w", id, last)
}

// nextStatus picks a random move forward from s, skipping stages now and then, or a cancel.
func nextStatus(r *rand.Rand, s string) string {
	if r.IntN(100) < 8 {
		return "cancelled"
	}
	fwd := []string{"confirmed", "preparing", "ready", "out_for_delivery", "delivered"}
	from := rank[s]
	step := 1
	if r.IntN(100) < 25 {
		step = 2 // a skipped stage
	}
	i := min(from-1+step, len(fwd)-1)
	return fwd[i]
}
