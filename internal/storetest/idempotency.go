package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// idem returns an Idempotency whose answer names the result, so a test can tell answers apart.
func idem(scope, key, fingerprint string, expires time.Time) *ordercast.Idempotency {
	return &ordercast.Idempotency{
		Scope: scope, Key: key, Fingerprint: fingerprint, Expires: expires,
		Render: func(res ordercast.Result) (ordercast.Answer, error) {
			status := 200
			if res.Created {
				status = 201
			}
			body := fmt.Sprintf(`{"id":%q,"version":%d,"seq":%d,"created":%t,"changed":%t}`,
				res.Order.ID, res.Order.Version, res.Event.Seq, res.Created, res.Changed)
			return ordercast.Answer{Status: status, Body: []byte(body)}, nil
		},
	}
}

func wantAnswer(t *testing.T, h *harness, scope, key, fingerprint string, status int, body string) {
	t.Helper()
	a, err := h.s.IdempotentAnswer(h.ctx, scope, key, time.Now())
	if err != nil {
		t.Fatalf("IdempotentAnswer(%s, %s): %v", scope, key, err)
	}
	if a.Fingerprint != fingerprint || a.Status != status || string(a.Body) != body {
		t.Fatalf("IdempotentAnswer(%s, %s) = %s %d %s, want %s %d %s", scope, key, a.Fingerprint, a.Status, a.Body, fingerprint, status, body)
	}
}

// exerciseIdempotency: a write with an idempotency key records its answer in its own transaction;
// the key cannot be recorded twice in a scope (the second write commits nothing); an expired
// record is forgotten; a failing Render commits nothing.
func exerciseIdempotency(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	later := time.Now().Add(time.Hour)

	if _, err := h.s.IdempotentAnswer(h.ctx, "s", "k-1", time.Now()); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Fatalf("unknown key: %v, want not found", err)
	}
	h.create(t, ordercast.NewOrder{ID: "i-1", Idem: idem("s", "k-1", "f-1", later)})
	wantAnswer(t, h, "s", "k-1", "f-1", 201, `{"id":"i-1","version":1,"seq":1,"created":true,"changed":false}`)

	// The same key again in the scope: nothing of the second write commits.
	before := h.snapshot(t, "i-1", "i-2")
	_, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "i-2", Idem: idem("s", "k-1", "f-2", later)})
	wantCode(t, err, ordercast.EIdempotencyKeyInUse)
	_, _, _, err = h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "i-1", Status: ordercast.StatusConfirmed, Idem: idem("s", "k-1", "f-3", later)})
	wantCode(t, err, ordercast.EIdempotencyKeyInUse)
	h.unchanged(t, before, "i-1", "i-2")
	wantAnswer(t, h, "s", "k-1", "f-1", 201, `{"id":"i-1","version":1,"seq":1,"created":true,"changed":false}`)

	// Another scope's same key is another request; repeats (no change) are recorded too.
	if _, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "i-1", Idem: idem("t", "k-1", "f-4", later)}); err != nil || created {
		t.Fatalf("repeat create in another scope: created %v, %v", created, err)
	}
	wantAnswer(t, h, "t", "k-1", "f-4", 200, `{"id":"i-1","version":1,"seq":1,"created":false,"changed":false}`)
	if _, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "i-1", Status: ordercast.StatusConfirmed, Idem: idem("s", "k-2", "f-5", later)}); err != nil || !changed {
		t.Fatalf("status change with a key: changed %v, %v", changed, err)
	}
	wantAnswer(t, h, "s", "k-2", "f-5", 200, `{"id":"i-1","version":2,"seq":2,"created":false,"changed":true}`)
	if _, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "i-1", Status: ordercast.StatusConfirmed, Idem: idem("s", "k-3", "f-6", later)}); err != nil || changed {
		t.Fatalf("repeated status with a key: changed %v, %v", changed, err)
	}
	wantAnswer(t, h, "s", "k-3", "f-6", 200, `{"id":"i-1","version":2,"seq":2,"created":false,"changed":false}`)
	// The answers of writes that changed nothing are kept for UnchangedAnswerTTL only, those of
	// changes as long as the key asks.
	past := time.Now().Add(ordercast.UnchangedAnswerTTL + time.Minute)
	for _, k := range []struct{ scope, key string }{{"t", "k-1"}, {"s", "k-3"}} {
		if _, err := h.s.IdempotentAnswer(h.ctx, k.scope, k.key, past); ordercast.ErrorCode(err) != ordercast.ENotFound {
			t.Fatalf("the answer of a write that changed nothing (%s %s), after %s: %v, want not found", k.scope, k.key, ordercast.UnchangedAnswerTTL, err)
		}
	}
	if _, err := h.s.IdempotentAnswer(h.ctx, "s", "k-2", past); err != nil {
		t.Fatalf("the answer of a change, after %s: %v, want it kept", ordercast.UnchangedAnswerTTL, err)
	}

	// An expired record is not found, and its key may be used afresh.
	h.create(t, ordercast.NewOrder{ID: "i-3", Idem: idem("s", "k-old", "f-7", time.Now().Add(-time.Second))})
	if _, err := h.s.IdempotentAnswer(h.ctx, "s", "k-old", time.Now()); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Fatalf("expired key: %v, want not found", err)
	}
	h.create(t, ordercast.NewOrder{ID: "i-4", Idem: idem("s", "k-old", "f-8", later)})
	wantAnswer(t, h, "s", "k-old", "f-8", 201, `{"id":"i-4","version":1,"seq":1,"created":true,"changed":false}`)

	// A Render that fails commits nothing: neither the change nor the key.
	failing := idem("s", "k-fail", "f-9", later)
	boom := errors.New("render failed")
	failing.Render = func(ordercast.Result) (ordercast.Answer, error) { return ordercast.Answer{}, boom }
	before = h.snapshot(t, "i-5")
	if _, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "i-5", Idem: failing}); !errors.Is(err, boom) {
		t.Fatalf("create with a failing render: %v, want %v", err, boom)
	}
	h.unchanged(t, before, "i-5")
	if _, err := h.s.IdempotentAnswer(h.ctx, "s", "k-fail", time.Now()); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Fatalf("key of a failed write: %v, want not found", err)
	}
}

// exerciseExpiredKeysPurge: PurgeExpiredKeys deletes the records expired at the time it is
// given, no more than its limit a call, and only those: a record still answered at that time
// stays. What it deleted is gone from the database, not merely past its expiry: asked at a time
// before the expiry, it is not found either. Expired records went only with later keyed writes
// (ExpiredKeysToPurge), so an integration that stopped sending keys left its last day of
// answers, an order's details each, in the database for ever.
func exerciseExpiredKeysPurge(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	p, ok := h.s.(ordercast.KeyPurger)
	if !ok {
		t.Fatalf("%T is not an ordercast.KeyPurger", h.s)
	}
	now := time.Now()
	soon, later := now.Add(time.Hour), now.Add(3*time.Hour)
	const expiring = 5
	for i := range expiring {
		h.create(t, ordercast.NewOrder{ID: fmt.Sprintf("e-%d", i), Idem: idem("s", fmt.Sprintf("k-%d", i), "f", soon)})
	}
	h.create(t, ordercast.NewOrder{ID: "kept", Idem: idem("s", "k-kept", "f", later)})

	if n, err := p.PurgeExpiredKeys(h.ctx, now.Add(2*time.Hour), 0); n != 0 || err != nil {
		t.Errorf("PurgeExpiredKeys with limit 0 = %d, %v; want 0, nil", n, err)
	}
	// Not yet expired at now: nothing goes.
	if n, err := p.PurgeExpiredKeys(h.ctx, now, 10); n != 0 || err != nil {
		t.Errorf("PurgeExpiredKeys(now) = %d, %v; want 0 (none expired yet)", n, err)
	}
	var got []int
	for len(got) <= expiring {
		n, err := p.PurgeExpiredKeys(h.ctx, now.Add(2*time.Hour), 2)
		if err != nil {
			t.Fatalf("PurgeExpiredKeys: %v", err)
		}
		if got = append(got, n); n == 0 {
			break
		}
	}
	if fmt.Sprint(got) != "[2 2 1 0]" {
		t.Errorf("PurgeExpiredKeys with limit 2, again until none is left, deleted %v, want [2 2 1 0]", got)
	}
	for i := range expiring {
		if _, err := h.s.IdempotentAnswer(h.ctx, "s", fmt.Sprintf("k-%d", i), now); ordercast.ErrorCode(err) != ordercast.ENotFound {
			t.Errorf("the purged record k-%d, asked at a time it had not expired: %v, want it gone (%s)", i, err, ordercast.ENotFound)
		}
	}
	wantAnswer(t, h, "s", "k-kept", "f", 201, `{"id":"kept","version":1,"seq":1,"created":true,"changed":false}`)
	for i := range expiring { // the orders are not the records: they stay
		if _, err := h.s.Order(h.ctx, fmt.Sprintf("e-%d", i)); err != nil {
			t.Errorf("Order(e-%d) after its key's record was purged: %v", i, err)
		}
	}
}
