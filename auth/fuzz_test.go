package auth_test

import (
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

// FuzzParseTracking: no input makes the tracking token parser panic, and whatever it accepts is
// a token this server signed for a valid order id.
func FuzzParseTracking(f *testing.F) {
	a := newAuthority(f)
	good, _, _ := a.SignTracking("ord-a", time.Time{}, time.Hour)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		tr, err := a.ParseTracking(tok)
		if err != nil {
			if code := ordercast.ErrorCode(err); code != ordercast.EUnauthenticated {
				t.Fatalf("error code %q, want %q", code, ordercast.EUnauthenticated)
			}
			return
		}
		if ordercast.ValidateID(tr.OrderID) != nil {
			t.Fatalf("accepted a token for invalid order id %q", tr.OrderID)
		}
	})
}

// FuzzParseActor: no input makes the actor token parser panic, and whatever it accepts has a
// known role.
func FuzzParseActor(f *testing.F) {
	a := newAuthority(f)
	good, _ := a.SignActor(auth.Actor{Role: auth.RoleCourier, Sub: "c-1"}, time.Hour)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYWRtaW4ifQ.")
	f.Fuzz(func(t *testing.T, tok string) {
		actor, err := a.ParseActor(tok)
		if err != nil {
			if code := ordercast.ErrorCode(err); code != ordercast.EUnauthenticated {
				t.Fatalf("error code %q, want %q", code, ordercast.EUnauthenticated)
			}
			return
		}
		if !actor.Role.Valid() {
			t.Fatalf("accepted role %q", actor.Role)
		}
	})
}
