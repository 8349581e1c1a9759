package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

// answer is a fake server's answer: an HTTP status, a JSON body and, when replayed, the
// Idempotent-Replayed header.
func answer(status int, body string, replayed bool) *http.Response {
	h := http.Header{"Content-Type": {"application/json"}}
	if replayed {
		h.Set(api.HeaderIdempotentReplayed, "true")
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

var errReset = errors.New("connection reset by peer")

// TestIdempotencyKeyRetries: a write with an idempotency key is sent again, with the same key
// and body, while its outcome is unknown (no answer, idempotency_key_in_use, or a store away),
// at most MaxAttempts times with a growing wait (at least the answer's Retry-After), and never
// after its context ended; any other answer is final. A write without a key is sent again only
// when it applied nothing (refused 429, or never sent), never when it may have applied. The
// fake clock makes the waits exact.
func TestIdempotencyKeyRetries(t *testing.T) {
	lost := func() (*http.Response, error) { return nil, errReset }
	inUse := func() (*http.Response, error) {
		return answer(http.StatusConflict, `{"error":{"code":"idempotency_key_in_use","message":"being answered"}}`, false), nil
	}
	replayed := func() (*http.Response, error) { return answer(http.StatusCreated, createdJSON, true), nil }
	away := func() (*http.Response, error) {
		r := answer(http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"the database is unreachable"}}`, false)
		r.Header.Set("Retry-After", "2")
		return r, nil
	}
	limited := func() (*http.Response, error) {
		r := answer(http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"over budget"}}`, false)
		r.Header.Set("Retry-After", "1")
		return r, nil
	}
	created := func() (*http.Response, error) { return answer(http.StatusCreated, createdJSON, false), nil }
	refused := func() (*http.Response, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	for _, tc := range []struct {
		name        string
		maxAttempts int
		key         *string
		timeout     time.Duration
		answers     []func() (*http.Response, error)
		wantSent    int
		wantErr     string // "" for success, else ordercast.ErrorCode's
		fresh       bool   // the success is the first answer, not a replay
		unknown     bool   // the failure leaves the call's outcome unknown (OutcomeUnknown)
		wantWaits   [][2]time.Duration
	}{
		{name: "no answer, three times", key: new("k-1"), answers: []func() (*http.Response, error){lost},
			wantSent: 3, wantErr: ordercast.EInternal,
			wantWaits: [][2]time.Duration{{200 * time.Millisecond, 300 * time.Millisecond}, {400 * time.Millisecond, 600 * time.Millisecond}}},
		{name: "no answer, then the first answer replayed", key: new("k-1"), answers: []func() (*http.Response, error){lost, replayed},
			wantSent: 2},
		{name: "the first request still being answered", key: new("k-1"), answers: []func() (*http.Response, error){inUse, replayed},
			wantSent: 2},
		{name: "the store away, then the first answer replayed", key: new("k-1"), answers: []func() (*http.Response, error){away, replayed},
			wantSent: 2, wantWaits: [][2]time.Duration{{2 * time.Second, 2 * time.Second}}},
		{name: "the store away every time", key: new("k-1"), answers: []func() (*http.Response, error){away},
			wantSent: 3, wantErr: ordercast.EUnavailable, wantWaits: [][2]time.Duration{{2 * time.Second, 2 * time.Second}, {2 * time.Second, 2 * time.Second}}},
		{name: "the store away, back only after longer than a call waits", key: new("k-1"), answers: []func() (*http.Response, error){func() (*http.Response, error) {
			r, err := away()
			r.Header.Set("Retry-After", "3600")
			return r, err
		}}, wantSent: 1, wantErr: ordercast.EUnavailable},
		{name: "the store away, without a key", answers: []func() (*http.Response, error){away},
			wantSent: 1, wantErr: ordercast.EUnavailable},
		{name: "over its rate (nothing applied), then created", key: new("k-1"), answers: []func() (*http.Response, error){limited, created},
			wantSent: 2, fresh: true, wantWaits: [][2]time.Duration{{time.Second, time.Second}}},
		{name: "over its rate, without a key: nothing applied, so sent again", answers: []func() (*http.Response, error){limited, created},
			wantSent: 2, fresh: true, wantWaits: [][2]time.Duration{{time.Second, time.Second}}},
		{name: "over its rate every time, without a key", answers: []func() (*http.Response, error){limited},
			wantSent: 3, wantErr: ordercast.ERateLimited},
		{name: "not sent, without a key: sent again", answers: []func() (*http.Response, error){refused, created},
			wantSent: 2, fresh: true, wantWaits: [][2]time.Duration{{200 * time.Millisecond, 300 * time.Millisecond}}},
		{name: "no answer, then over its rate: the outcome stays unknown", key: new("k-1"), answers: []func() (*http.Response, error){lost, limited},
			wantSent: 3, wantErr: ordercast.ERateLimited, unknown: true,
			wantWaits: [][2]time.Duration{{200 * time.Millisecond, 300 * time.Millisecond}, {time.Second, time.Second}}},
		{name: "an answer is final", key: new("k-1"), answers: []func() (*http.Response, error){func() (*http.Response, error) {
			return answer(http.StatusConflict, `{"error":{"code":"order_exists","message":"differs"}}`, false), nil
		}}, wantSent: 1, wantErr: ordercast.EOrderExists},
		{name: "no answer, many times: the wait stops growing at 5 s", maxAttempts: 8, key: new("k-1"), answers: []func() (*http.Response, error){lost},
			wantSent: 8, wantErr: ordercast.EInternal,
			wantWaits: [][2]time.Duration{
				{200 * time.Millisecond, 300 * time.Millisecond}, {400 * time.Millisecond, 600 * time.Millisecond},
				{800 * time.Millisecond, 1200 * time.Millisecond}, {1600 * time.Millisecond, 2400 * time.Millisecond},
				{3200 * time.Millisecond, 4800 * time.Millisecond}, {5 * time.Second, 7500 * time.Millisecond},
				{5 * time.Second, 7500 * time.Millisecond},
			}},
		{name: "MaxAttempts 1 turns the retry off", maxAttempts: 1, key: new("k-1"), answers: []func() (*http.Response, error){lost},
			wantSent: 1, wantErr: ordercast.EInternal},
		{name: "no retry after the context ended", key: new("k-1"), timeout: 100 * time.Millisecond, answers: []func() (*http.Response, error){lost},
			wantSent: 1, wantErr: ordercast.EInternal},
		{name: "without a key, sent once", answers: []func() (*http.Response, error){lost},
			wantSent: 1, wantErr: ordercast.EInternal},
		{name: "an invalid key is never sent", key: new(""), answers: []func() (*http.Response, error){lost},
			wantSent: 0, wantErr: ordercast.EInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var at []time.Time
				var keys, bodies []string
				c := &client.Client{BaseURL: "http://ordercast.test", MaxAttempts: tc.maxAttempts, HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					at = append(at, time.Now())
					keys = append(keys, strings.Join(r.Header.Values(api.HeaderIdempotencyKey), ","))
					b, _ := io.ReadAll(r.Body)
					bodies = append(bodies, string(b))
					return tc.answers[min(len(at), len(tc.answers))-1]()
				})}}
				ctx := t.Context()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				var opts []client.CallOption
				if tc.key != nil {
					opts = append(opts, client.WithIdempotencyKey(*tc.key))
				}
				res, err := c.CreateOrder(ctx, client.CreateOrderRequest{RestaurantID: "luigi"}, opts...)
				if len(at) != tc.wantSent {
					t.Fatalf("sent %d times, want %d (err %v)", len(at), tc.wantSent, err)
				}
				if got := ordercast.ErrorCode(err); got != tc.wantErr {
					t.Fatalf("err = %v (code %q), want code %q", err, got, tc.wantErr)
				}
				if err == nil && (res.Replayed == tc.fresh || !res.Created || res.ID != "o-1") {
					t.Errorf("result %+v, want o-1 created, replayed %v", res, !tc.fresh)
				}
				if err != nil && client.OutcomeUnknown(err) != (tc.unknown || tc.wantErr == ordercast.EInternal || tc.wantErr == ordercast.EUnavailable) {
					t.Errorf("OutcomeUnknown(%v) = %v", err, client.OutcomeUnknown(err))
				}
				if tc.wantErr == ordercast.EInternal && !errors.As(err, new(net.Error)) {
					t.Errorf("err = %v, want a net.Error: the outcome is unknown", err)
				}
				if tc.timeout > 0 && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want the context's deadline", err)
				}
				for i := range at {
					if keys[i] != keys[0] || bodies[i] != bodies[0] {
						t.Errorf("attempt %d sent key %q and %s, the first %q and %s", i+1, keys[i], bodies[i], keys[0], bodies[0])
					}
				}
				if tc.key != nil && len(keys) > 0 && keys[0] != *tc.key {
					t.Errorf("Idempotency-Key %q, want %q", keys[0], *tc.key)
				}
				for i, w := range tc.wantWaits {
					if gap := at[i+1].Sub(at[i]); gap < w[0] || gap > w[1] {
						t.Errorf("wait before attempt %d = %v, want within %v", i+2, gap, w)
					}
				}
			})
		})
	}
}

// TestReadsAreRetried: a read is safe to repeat, so it is sent again while no answer comes or the
// store is away, as a keyed write is, up to MaxAttempts; an answer that is not unavailable is
// final.
func TestReadsAreRetried(t *testing.T) {
	order := func() (*http.Response, error) {
		return answer(http.StatusOK, `{"id":"o-1","status":"placed","version":1}`, false), nil
	}
	away := func() (*http.Response, error) {
		r := answer(http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"the database is unreachable"}}`, false)
		r.Header.Set("Retry-After", "1")
		return r, nil
	}
	notFound := func() (*http.Response, error) {
		return answer(http.StatusNotFound, `{"error":{"code":"not_found","message":"no such order"}}`, false), nil
	}
	lost := func() (*http.Response, error) { return nil, errReset }
	for _, tc := range []struct {
		name     string
		answers  []func() (*http.Response, error)
		wantSent int
		wantErr  string
	}{
		{"no answer, then the order", []func() (*http.Response, error){lost, order}, 2, ""},
		{"the store away, then the order", []func() (*http.Response, error){away, away, order}, 3, ""},
		{"the store away every time", []func() (*http.Response, error){away}, 3, ordercast.EUnavailable},
		{"not found is final", []func() (*http.Response, error){notFound, order}, 1, ordercast.ENotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sent := 0
				c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					sent++
					return tc.answers[min(sent, len(tc.answers))-1]()
				})}}
				o, err := c.Order(t.Context(), "o-1")
				if sent != tc.wantSent {
					t.Fatalf("sent %d times, want %d (err %v)", sent, tc.wantSent, err)
				}
				if got := ordercast.ErrorCode(err); got != tc.wantErr {
					t.Fatalf("err = %v (code %q), want code %q", err, got, tc.wantErr)
				}
				if err == nil && o.ID != "o-1" {
					t.Errorf("order %+v, want o-1", o)
				}
			})
		})
	}
}

// TestIdempotencyKeyRecoversALostAnswer: through a proxy that lets a write reach a real server
// and loses its answer, a create and a status change with a key come back answered (the
// server's replay of the first answer) and applied once; without a key the error is a network
// error, whose outcome is unknown, and the client has not sent it again.
func TestIdempotencyKeyRecoversALostAnswer(t *testing.T) {
	srv := startServer(t, false, nil)
	p := newProxy(t, srv.url)
	ctx := context.Background()
	c := clientOf(t, p.url())

	p.loseAnswer.Store(true)
	created, err := c.CreateOrder(ctx, client.CreateOrderRequest{RestaurantID: "luigi"}, client.WithIdempotencyKey("create-1"))
	if err != nil || !created.Replayed || !created.Created {
		t.Fatalf("CreateOrder = %+v, %v; want the first answer replayed", created, err)
	}
	if n := p.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the lost one and the retry", n)
	}

	p.loseAnswer.Store(true)
	res, err := c.SetStatus(ctx, created.ID, client.SetStatusRequest{Status: ordercast.StatusConfirmed}, client.WithIdempotencyKey("confirm-1"))
	if err != nil || !res.Replayed || !res.Changed || res.Event.Seq != 2 {
		t.Fatalf("SetStatus = %+v, %v; want the first answer replayed", res, err)
	}

	p.loseAnswer.Store(true)
	_, err = c.CreateOrder(ctx, client.CreateOrderRequest{RestaurantID: "luigi"})
	if errors.As(err, new(*client.Error)) || !errors.As(err, new(net.Error)) || ordercast.ErrorCode(err) != ordercast.EInternal {
		t.Fatalf("CreateOrder without a key = %v, want a network error", err)
	}

	orders, err := srv.store.ActiveOrders(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 2 {
		t.Errorf("%d orders, want 2: one per create", len(orders))
	}
	if o, err := srv.store.Order(ctx, created.ID); err != nil || o.Version != 2 {
		t.Errorf("order %s at version %d (%v), want 2: confirmed once", created.ID, o.Version, err)
	}
}

// TestSetCourier: an order is assigned, under a name, assigned again to the same courier (no
// change), and unassigned; a change the server refuses comes back with its code.
func TestSetCourier(t *testing.T) {
	srv := startServer(t, false, nil)
	ctx := context.Background()
	c := &client.Client{BaseURL: srv.url}
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.SetCourier(ctx, "o-1", client.SetCourierRequest{CourierID: api.AssignTo("kofi"), CourierName: "Kofi", Note: "nearest"})
	if err != nil || !res.Changed || res.Order.CourierID != "kofi" || res.Order.CourierName != "Kofi" || res.Event.Seq != 2 ||
		res.Event.Kind != ordercast.KindCourier || res.Event.CourierID != "kofi" || res.Event.CourierName != "Kofi" || res.Event.Note != "nearest" {
		t.Fatalf("assign = %+v, %v", res, err)
	}
	if res, err := c.SetCourier(ctx, "o-1", client.SetCourierRequest{CourierID: api.AssignTo("kofi")}); err != nil || res.Changed || res.Event.Seq != 2 {
		t.Errorf("the same courier again = %+v, %v; want no change", res, err)
	}
	if res, err := c.SetCourier(ctx, "o-1", client.SetCourierRequest{CourierID: api.Unassign()}); err != nil || !res.Changed || res.Order.CourierID != "" || res.Event.Seq != 3 {
		t.Errorf("unassign = %+v, %v", res, err)
	}
	if _, err := c.SetCourier(ctx, "o-1", client.SetCourierRequest{CourierID: api.Assignment{}}); ordercast.ErrorCode(err) != ordercast.EInvalid {
		t.Errorf("no assignment: %v, want %s", err, ordercast.EInvalid)
	}
	if _, err := c.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if _, err := c.SetCourier(ctx, "o-1", client.SetCourierRequest{CourierID: api.AssignTo("kofi")}); !errors.As(err, &ce) || ce.StatusCode != http.StatusConflict || ce.Code != ordercast.EInvalidTransition {
		t.Errorf("a cancelled order: %v, want 409 %s", err, ordercast.EInvalidTransition)
	}
}

// TestOutcomeUnknownSaysWhichFailuresMayHaveApplied: the rule the client retries keyed writes
// by, exported for callers without a key: no answer, an answer cut short, a store or proxy
// away (503, 502, 504) and a key still being answered may have applied; any other answer,
// an *Error or not, changed nothing.
func TestOutcomeUnknownSaysWhichFailuresMayHaveApplied(t *testing.T) {
	errAnswer := func(status int, code string) func() (*http.Response, error) {
		return func() (*http.Response, error) {
			return answer(status, `{"error":{"code":"`+code+`","message":"m"}}`, false), nil
		}
	}
	proxy := func(status int) func() (*http.Response, error) {
		return func() (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(strings.NewReader("<html>bad gateway</html>"))}, nil
		}
	}
	for _, tc := range []struct {
		name    string
		rt      func() (*http.Response, error)
		unknown bool
	}{
		{"no answer", func() (*http.Response, error) { return nil, errReset }, true},
		{"an answer cut short", func() (*http.Response, error) { return answer(http.StatusOK, `{"order":{"id":"o-1"`, false), nil }, true},
		{"503 unavailable", errAnswer(http.StatusServiceUnavailable, ordercast.EUnavailable), true},
		{"a proxy's 502", proxy(http.StatusBadGateway), true},
		{"a proxy's 504", proxy(http.StatusGatewayTimeout), true},
		{"409 idempotency_key_in_use", errAnswer(http.StatusConflict, ordercast.EIdempotencyKeyInUse), true},
		{"500 internal", errAnswer(http.StatusInternalServerError, ordercast.EInternal), true},
		{"a proxy's 500", proxy(http.StatusInternalServerError), true},
		{"404 not_found", errAnswer(http.StatusNotFound, ordercast.ENotFound), false},
		{"409 version_conflict", errAnswer(http.StatusConflict, ordercast.EVersionConflict), false},
		{"422 invalid_status", errAnswer(http.StatusUnprocessableEntity, ordercast.EInvalidStatus), false},
		{"429 rate_limited", errAnswer(http.StatusTooManyRequests, ordercast.ERateLimited), false},
		{"a body that is not JSON", func() (*http.Response, error) { return answer(http.StatusOK, `<html>`, false), nil }, false},
	} {
		c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return tc.rt() })}}
		_, err := c.SetStatus(t.Context(), "o-1", client.SetStatusRequest{Status: ordercast.StatusConfirmed})
		if err == nil {
			t.Errorf("%s: SetStatus succeeded", tc.name)
			continue
		}
		if got := client.OutcomeUnknown(err); got != tc.unknown {
			t.Errorf("%s: OutcomeUnknown(%v) = %v, want %v", tc.name, err, got, tc.unknown)
		}
	}
	bad := &client.Client{BaseURL: "http://exa mple.com"}
	if _, err := bad.SetStatus(t.Context(), "o-1", client.SetStatusRequest{Status: ordercast.StatusConfirmed}, client.WithIdempotencyKey("k-1")); err == nil || client.OutcomeUnknown(err) {
		t.Errorf("a request that could not be built: %v, OutcomeUnknown %v; want known (nothing was sent)", err, client.OutcomeUnknown(err))
	}
	if client.OutcomeUnknown(nil) {
		t.Error("OutcomeUnknown(nil) is true")
	}
	if _, err := offline(t).SetStatus(t.Context(), "o-1", client.SetStatusRequest{Status: ordercast.StatusConfirmed}, client.WithIdempotencyKey("bad key with spaces")); err == nil || client.OutcomeUnknown(err) {
		t.Errorf("a key refused before sending: %v, OutcomeUnknown %v; want known (nothing was sent)", err, client.OutcomeUnknown(err))
	}
	// A call whose context ended before it began sent nothing: net/http gives up before asking
	// for a connection, which read as a request lost on the way (a client integrator's review).
	sent := false
	spy := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		sent = true
		return nil, errors.New("sent")
	})}}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := spy.SetStatus(ended, "o-1", client.SetStatusRequest{Status: ordercast.StatusConfirmed}); sent || !errors.Is(err, context.Canceled) || client.OutcomeUnknown(err) {
		t.Errorf("a call whose context had ended: sent %v, %v, OutcomeUnknown %v; want not sent, context.Canceled, known", sent, err, client.OutcomeUnknown(err))
	}
}

// TestRefusedDialSentNothing: a write whose connection was refused at dial was never sent, so
// its outcome is known: nothing applied. It stays unknown when the request had left before, on
// an earlier attempt of the call or on a connection net/http resent it from.
func TestRefusedDialSentNothing(t *testing.T) {
	set := client.SetStatusRequest{Status: ordercast.StatusConfirmed}
	t.Run("a closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		c := &client.Client{BaseURL: base, MaxAttempts: 2}
		for _, tc := range []struct {
			name string
			opts []client.CallOption
		}{{"without a key", nil}, {"with a key, every attempt refused", []client.CallOption{client.WithIdempotencyKey("k-1")}}} {
			_, err := c.SetStatus(t.Context(), "o-1", set, tc.opts...)
			if err == nil || client.OutcomeUnknown(err) || !errors.As(err, new(net.Error)) {
				t.Errorf("%s: %v, OutcomeUnknown %v; want a network error, outcome known", tc.name, err, client.OutcomeUnknown(err))
			}
		}
	})
	// The call's last error is the refusal, or its context's end in the wait after it: either way
	// the first attempt may have applied.
	for _, tc := range []struct {
		name        string
		maxAttempts int
		timeout     time.Duration // ends in the wait after the second attempt (the fake clock's)
	}{{"no answer, then refused", 2, 0}, {"no answer, then refused, then the context ends", 3, 350 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sent := 0
				c := &client.Client{BaseURL: "http://ordercast.test", MaxAttempts: tc.maxAttempts, HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
					if sent++; sent == 1 {
						return nil, errReset
					}
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
				})}}
				ctx := t.Context()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				_, err := c.SetStatus(ctx, "o-1", set, client.WithIdempotencyKey("k-1"))
				if sent != 2 || err == nil || !client.OutcomeUnknown(err) {
					t.Errorf("sent %d times: %v, OutcomeUnknown %v; want 2, outcome unknown (the first may have applied)", sent, err, client.OutcomeUnknown(err))
				}
			})
		})
	}
	t.Run("written, then resent to a refused dial", func(t *testing.T) {
		// A server that answers one request, then reads a second and goes away, closing its
		// port first: net/http resends the keyed write on a new connection, which is refused.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() {
			served <- func() error {
				defer ln.Close()
				conn, err := ln.Accept()
				if err != nil {
					return err
				}
				defer conn.Close()
				br := bufio.NewReader(conn)
				for i := range 2 {
					req, err := http.ReadRequest(br)
					if err != nil {
						return err
					}
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						return err
					}
					if i == 1 {
						return ln.Close()
					}
					const order = `{"id":"o-1","status":"placed","version":1}`
					if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+
						strconv.Itoa(len(order))+"\r\n\r\n"+order); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		c := &client.Client{BaseURL: "http://" + ln.Addr().String(), MaxAttempts: 1, HTTPClient: &http.Client{Transport: tr}}
		if _, err := c.Order(t.Context(), "o-1"); err != nil {
			t.Fatalf("the first request, which leaves its connection to be reused: %v", err)
		}
		_, err = c.SetStatus(t.Context(), "o-1", set, client.WithIdempotencyKey("k-1"))
		if serr := <-served; serr != nil {
			t.Fatalf("server: %v", serr)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			t.Fatalf("%v; want the resend's refused dial (net/http resent no request, so this tests nothing)", err)
		}
		if !client.OutcomeUnknown(err) {
			t.Errorf("%v: OutcomeUnknown false; want true, the request was written before the dial", err)
		}
	})
}

// TestAFailedHandshakeSentNothing: a write whose TLS handshake failed (a certificate the client
// does not trust, a server that does not speak TLS), or whose proxy opened no tunnel, was never
// sent, so its outcome is known:
// nothing applied, and the server saw no request, however often the call tried.
func TestAFailedHandshakeSentNothing(t *testing.T) {
	set := client.SetStatusRequest{Status: ordercast.StatusConfirmed}
	var seen atomic.Int32
	count := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen.Add(1) })
	untrusted := httptest.NewTLSServer(count) // its certificate is signed by no CA the client trusts
	defer untrusted.Close()
	plain := httptest.NewServer(count)
	defer plain.Close()
	// A proxy that refuses to open a tunnel to the server.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			seen.Add(1)
		}
		http.Error(w, "no tunnel", http.StatusForbidden)
	}))
	defer proxy.Close()
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		proxy     bool
	}{
		{"a certificate not trusted", untrusted.URL, false},
		{"a server that does not speak TLS", strings.Replace(plain.URL, "http://", "https://", 1), false},
		{"a proxy that opens no tunnel", untrusted.URL, true},
	} {
		tr := &http.Transport{}
		if tc.proxy {
			tr.Proxy = http.ProxyURL(proxyURL)
		}
		c := &client.Client{BaseURL: tc.url, MaxAttempts: 2, HTTPClient: &http.Client{Transport: tr}}
		for _, opts := range [][]client.CallOption{nil, {client.WithIdempotencyKey("k-1")}} {
			_, err := c.SetStatus(t.Context(), "o-1", set, opts...)
			if err == nil || client.OutcomeUnknown(err) {
				t.Errorf("%s, %d options: %v, OutcomeUnknown %v; want an error, outcome known", tc.name, len(opts), err, client.OutcomeUnknown(err))
			}
		}
		tr.CloseIdleConnections()
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("the servers saw %d requests, want none", n)
	}
}

// offline is a client whose every request fails the test.
func offline(t *testing.T) *client.Client {
	t.Helper()
	return &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("a request was sent")
		return nil, errReset
	})}}
}
