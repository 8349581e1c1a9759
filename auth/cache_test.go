package auth

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newTestAuthority(t *testing.T, clock *time.Time) *Authority {
	t.Helper()
	a, err := New([]byte("cache-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	a.Now = func() time.Time { return *clock }
	return a
}

// TestActorCache_Hit: a token that verified is not verified again while cached (shown by
// changing the secret behind it), and is forgotten after ActorCacheTTL.
func TestActorCache_Hit(t *testing.T) {
	clock := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	a := newTestAuthority(t, &clock)
	tok, err := a.SignActor(Actor{Role: RoleCourier, Sub: "c-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ParseActor(tok); err != nil {
		t.Fatal(err)
	}
	a.hmac = []jwt.VerificationKey{[]byte(strings.Repeat("z", MinSecretBytes))} // tokens now verify with another secret
	if got, err := a.ParseActor(tok); err != nil || got != (Actor{Role: RoleCourier, Sub: "c-1"}) {
		t.Errorf("cached token: %v, %v; want the courier", got, err)
	}
	clock = clock.Add(ActorCacheTTL)
	if _, err := a.ParseActor(tok); err == nil {
		t.Errorf("token verified again after ActorCacheTTL with another secret: want an error")
	}
}

// TestActorCache_Expiry: a cached token is refused once it has expired, however recently it
// was cached.
func TestActorCache_Expiry(t *testing.T) {
	clock := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	a := newTestAuthority(t, &clock)
	tok, err := a.SignActor(Actor{Role: RoleAdmin}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ParseActor(tok); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(10*time.Second + a.Leeway + time.Second)
	if _, err := a.ParseActor(tok); err == nil {
		t.Errorf("expired token accepted from the cache")
	}
}

// TestActorCache_Bounded: many distinct tokens never hold more than ActorCacheSize entries.
func TestActorCache_Bounded(t *testing.T) {
	var c actorCache
	now := time.Now()
	for i := range ActorCacheSize + 100 {
		c.put(fmt.Sprint(i), Actor{Role: RoleAdmin}, now.Add(time.Hour), now)
	}
	if got := len(c.entries); got != ActorCacheSize {
		t.Errorf("%d entries, want %d", got, ActorCacheSize)
	}
}

// TestActorCache_HoldsAFleet: every courier of a fleet on the road posts its position with its
// own token every second or two; each token stays cached (shown by changing the secret behind
// them all), not pushed out by the others. At 4,096 entries nearly every post of 19,000
// couriers verified its token again.
func TestActorCache_HoldsAFleet(t *testing.T) {
	clock := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	a := newTestAuthority(t, &clock)
	const fleet = 19000
	tokens := make([]string, fleet)
	for i := range tokens {
		tok, err := a.SignActor(Actor{Role: RoleCourier, Sub: fmt.Sprintf("c-%d", i)}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ParseActor(tok); err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}
	a.hmac = []jwt.VerificationKey{[]byte(strings.Repeat("z", MinSecretBytes))} // tokens now verify with another secret
	missed := 0
	for i, tok := range tokens {
		if got, err := a.ParseActor(tok); err != nil || got.Sub != fmt.Sprintf("c-%d", i) {
			missed++
		}
	}
	if missed > 0 {
		t.Errorf("%d of %d couriers' tokens were no longer cached a moment after they verified", missed, fleet)
	}
}

// BenchmarkParseActorCached is the cost of a token on every request after its first.
func BenchmarkParseActorCached(b *testing.B) {
	a, err := New([]byte("cache-test-secret-0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := a.SignActor(Actor{Role: RoleCourier, Sub: "c-1"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.ParseActor(tok); err != nil {
			b.Fatal(err)
		}
	}
}
