package ordercast_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
)

// allowed is the whole transition table, written out by hand so that a change to the rules has to
// change this table too.
var allowed = map[ordercast.Status][]ordercast.Status{
	"placed":           {"confirmed", "preparing", "ready", "out_for_delivery", "delivered", "cancelled"},
	"confirmed":        {"preparing", "ready", "out_for_delivery", "delivered", "cancelled"},
	"preparing":        {"ready", "out_for_delivery", "delivered", "cancelled"},
	"ready":            {"out_for_delivery", "delivered", "cancelled"},
	"out_for_delivery": {"delivered", "cancelled"},
	"delivered":        {},
	"cancelled":        {},
}

func TestCheckTransitionExhaustive(t *testing.T) {
	for _, from := range ordercast.Statuses {
		for _, to := range ordercast.Statuses {
			if from == to {
				continue
			}
			want := ""
			if !contains(allowed[from], to) {
				want = ordercast.EInvalidTransition
			}
			if got := ordercast.ErrorCode(ordercast.CheckTransition(from, to)); got != want {
				t.Errorf("%s -> %s: got code %q, want %q", from, to, got, want)
			}
		}
		if got := ordercast.ErrorCode(ordercast.CheckTransition(from, "eaten")); got != ordercast.EInvalidStatus {
			t.Errorf("%s -> eaten: got %q, want %q", from, got, ordercast.EInvalidStatus)
		}
	}
}

func contains(list []ordercast.Status, s ordercast.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestApply(t *testing.T) {
	o := ordercast.Order{ID: "o1", Status: ordercast.StatusPreparing, Version: 3}
	tests := []struct {
		name        string
		change      ordercast.StatusChange
		wantChanged bool
		wantCode    string
	}{
		{"forward", ordercast.StatusChange{Status: "ready"}, true, ""},
		{"skip ahead", ordercast.StatusChange{Status: "delivered"}, true, ""},
		{"cancel", ordercast.StatusChange{Status: "cancelled"}, true, ""},
		{"backward", ordercast.StatusChange{Status: "confirmed"}, false, ordercast.EInvalidTransition},
		{"idempotent repeat", ordercast.StatusChange{Status: "preparing"}, false, ""},
		{"idempotent repeat with stale version", ordercast.StatusChange{Status: "preparing", ExpectedVersion: 2}, false, ""},
		{"expected version matches", ordercast.StatusChange{Status: "ready", ExpectedVersion: 3}, true, ""},
		{"stale version", ordercast.StatusChange{Status: "ready", ExpectedVersion: 2}, false, ordercast.EVersionConflict},
		{"future version", ordercast.StatusChange{Status: "ready", ExpectedVersion: 4}, false, ordercast.EVersionConflict},
		{"before the actor's part begins", ordercast.StatusChange{Status: "delivered", NotBefore: "out_for_delivery"}, false, ordercast.EInvalidTransition},
		{"where the actor's part begins", ordercast.StatusChange{Status: "ready", NotBefore: "preparing"}, true, ""},
		{"after the actor's part began", ordercast.StatusChange{Status: "out_for_delivery", NotBefore: "confirmed"}, true, ""},
		{"before the actor's part ends", ordercast.StatusChange{Status: "cancelled", Before: "out_for_delivery"}, true, ""},
		{"where the actor's part ends", ordercast.StatusChange{Status: "cancelled", Before: "preparing"}, false, ordercast.EInvalidTransition},
		{"a repeat after the actor's part ended", ordercast.StatusChange{Status: "preparing", Before: "confirmed"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed, err := tt.change.Apply(o)
			if changed != tt.wantChanged || ordercast.ErrorCode(err) != tt.wantCode {
				t.Fatalf("got changed=%v err=%v, want changed=%v code=%q", changed, err, tt.wantChanged, tt.wantCode)
			}
		})
	}
	done := ordercast.Order{ID: "o2", Status: ordercast.StatusDelivered, Version: 6}
	if _, err := (ordercast.StatusChange{Status: "cancelled"}).Apply(done); ordercast.ErrorCode(err) != ordercast.EInvalidTransition {
		t.Fatalf("cancel after delivered: got %v, want %s", err, ordercast.EInvalidTransition)
	}
}

func TestValidateID(t *testing.T) {
	good := []string{"a", "ORDER-1", "shop:42.7_x", strings.Repeat("z", 64)}
	bad := []string{"", strings.Repeat("z", 65), "a b", "a/b", "é", "a\x00", "<script>"}
	for _, id := range good {
		if err := ordercast.ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range bad {
		if got := ordercast.ErrorCode(ordercast.ValidateID(id)); got != ordercast.EInvalidID {
			t.Errorf("ValidateID(%q) code = %q, want %q", id, got, ordercast.EInvalidID)
		}
	}
	if err := ordercast.ValidateID(ordercast.NewID()); err != nil {
		t.Errorf("generated id is invalid: %v", err)
	}
}

func TestNormalizeDetails(t *testing.T) {
	a, err := ordercast.NormalizeDetails(json.RawMessage(`{"b":1,"a":{"y":2,"x":1.50}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ordercast.NormalizeDetails(json.RawMessage(` {"a":{"x":1.50,"y":2},"b":1}`))
	if err != nil {
		t.Fatal(err)
	}
	// Kept as given (compacted), compared by value.
	if string(a) != `{"b":1,"a":{"y":2,"x":1.50}}` || string(b) != `{"a":{"x":1.50,"y":2},"b":1}` {
		t.Fatalf("details not kept as given: %s, %s", a, b)
	}
	if !ordercast.SameDetails(a, b) || !ordercast.SameDetails(json.RawMessage(`{"n":1e5}`), json.RawMessage(`{"n":100000.0}`)) {
		t.Fatalf("the same values compare different")
	}
	if ordercast.SameDetails(a, json.RawMessage(`{"b":2,"a":{"y":2,"x":1.50}}`)) {
		t.Fatalf("different values compare the same")
	}
	// What is served is what was checked: escaped as encoding/json serves it.
	if got, _ := ordercast.NormalizeDetails(json.RawMessage(`{"a": "<b>"}`)); string(got) != `{"a":"\u003cb\u003e"}` {
		t.Fatalf("served form = %s", got)
	}
	for _, raw := range []string{`{"n":4.9e-324}`, `{"n":-1.5e308}`, `{"n":0e-5}`, `{"n":0.0}`} {
		if _, err := ordercast.NormalizeDetails(json.RawMessage(raw)); err != nil {
			t.Errorf("NormalizeDetails(%s): %v", raw, err)
		}
	}
	if got, _ := ordercast.NormalizeDetails(nil); string(got) != "{}" {
		t.Fatalf("empty details = %s, want {}", got)
	}
	for _, raw := range []string{`[1]`, `"x"`, `3`, `{"a":`, `{"a":"` + strings.Repeat("x", ordercast.MaxDetailsBytes) + `"}`,
		`{"n":1e131000}`, `{"n":1e400}`, `{"n":-1e309}`, `{"n":1e-400}`, `{"n":[1e-131000]}`,
		`{"n":1` + strings.Repeat("0", 400) + `}`, `{"s":"a\u0000b"}`, `{"a\u0000":1}`, `{"a":1}{"b":2}`,
		`{"a":"` + strings.Repeat("<", ordercast.MaxDetailsBytes/2) + `"}`} {
		if _, err := ordercast.NormalizeDetails(json.RawMessage(raw)); ordercast.ErrorCode(err) != ordercast.EInvalidDetails {
			t.Errorf("NormalizeDetails(%.20q) = %v, want %s", raw, err, ordercast.EInvalidDetails)
		}
	}
}

// TestReadableByCourier: a courier reads an order only while it carries it; a reader that is no
// courier is not concerned.
func TestReadableByCourier(t *testing.T) {
	o := ordercast.Order{ID: "o-1", RestaurantID: "r-1", CustomerID: "u-1", CourierID: "c-1"}
	for _, tt := range []struct {
		courier string
		want    string
	}{{"", ""}, {"c-1", ""}, {"c-2", ordercast.EForbidden}, {"r-1", ordercast.EForbidden}} {
		if got := ordercast.ErrorCode(o.ReadableByCourier(tt.courier)); got != tt.want {
			t.Errorf("ReadableByCourier(%q) = %q, want %q", tt.courier, got, tt.want)
		}
	}
	if got := ordercast.ErrorCode((ordercast.Order{ID: "o-2"}).ReadableByCourier("c-1")); got != ordercast.EForbidden {
		t.Errorf("an order with no courier, read as c-1's: %q, want %q", got, ordercast.EForbidden)
	}
}
