package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newAuthority(t testing.TB) *auth.Authority {
	t.Helper()
	a, err := auth.New(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ordercast.ErrorCode(err); got != code {
		t.Errorf("error %v: code %q, want %q", err, got, code)
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := auth.New([]byte("short")); err == nil {
		t.Fatal("New accepted a 5-byte secret")
	}
}

// TestRolesMaySet is the table of who may set which status.
func TestRolesMaySet(t *testing.T) {
	want := map[auth.Role][]ordercast.Status{
		auth.RoleRestaurant: {ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady, ordercast.StatusCancelled},
		auth.RoleCourier:    {ordercast.StatusOutForDelivery, ordercast.StatusDelivered},
		auth.RoleAdmin:      ordercast.Statuses,
		auth.RoleSystem:     ordercast.Statuses,
		auth.RoleSupport:    ordercast.Statuses,
	}
	for _, r := range auth.Roles {
		for _, st := range ordercast.Statuses {
			allowed := false
			for _, w := range want[r] {
				allowed = allowed || w == st
			}
			if got := (auth.Actor{Role: r}).PermitAction(auth.ActSetStatus, st) == nil; got != allowed {
				t.Errorf("%s may set %s: %v, want %v", r, st, got, allowed)
			}
		}
		// "" asks whether the role may set any status: whether a request to change one is its to
		// send at all (a customer's is not, and is charged as an anonymous one).
		if got, want := (auth.Actor{Role: r}).PermitAction(auth.ActSetStatus, "") == nil, len(want[r]) > 0; got != want {
			t.Errorf("%s may set some status: %v, want %v", r, got, want)
		}
		// What a page offers an actor of the role is the same table.
		if got := (auth.Actor{Role: r, Sub: "x"}).Settable(); !slices.Equal(got, want[r]) {
			t.Errorf("%s: Settable() = %v, want %v", r, got, want[r])
		}
		if got, want := r.MayCreate(), r == auth.RoleAdmin || r == auth.RoleSystem; got != want {
			t.Errorf("%s may create: %v, want %v", r, got, want)
		}
	}
	if auth.Role("root").Valid() || (auth.Actor{}).MayDo(auth.ActSetStatus, ordercast.StatusDelivered) {
		t.Error("an unknown role is valid or may set a status")
	}
}

// TestAnyone: the actor of an open server acts on every order and for every courier, is recorded
// as no one, and is no role a token may carry.
func TestAnyone(t *testing.T) {
	a := auth.Anyone
	if !a.Privileged() || a.PermitCreate() != nil || a.PermitMany("x") != nil || a.PermitPosition("c-1") != nil ||
		a.Permit(auth.ActSetStatus, ordercast.Order{ID: "o-1", RestaurantID: "r-1"}, ordercast.StatusDelivered) != nil {
		t.Error("Anyone is refused something")
	}
	if a.String() != "" {
		t.Errorf("Anyone is recorded as %q, want no one", a.String())
	}
	if a.Role.Valid() {
		t.Errorf("role %q is valid in a token", a.Role)
	}
	if _, err := newAuthority(t).SignActor(a, time.Hour); err == nil {
		t.Error("a token was signed for Anyone")
	}
}

// TestPermitPositionAndMany: a courier reports only its own position; a request of many items is
// a privileged actor's.
func TestPermitPositionAndMany(t *testing.T) {
	for _, tt := range []struct {
		a              auth.Actor
		position, many bool
	}{
		{auth.Actor{Role: auth.RoleCourier, Sub: "c-1"}, true, false},
		{auth.Actor{Role: auth.RoleCourier, Sub: "c-2"}, false, false},
		{auth.Actor{Role: auth.RoleCourier}, false, false},
		{auth.Actor{Role: auth.RoleRestaurant, Sub: "c-1"}, false, false},
		{auth.Actor{Role: auth.RoleCustomer, Sub: "c-1"}, false, false},
		{auth.Actor{Role: auth.RoleSupport, Sub: "ana"}, false, false},
		{auth.Actor{Role: auth.RoleAdmin}, true, true},
		{auth.Actor{Role: auth.RoleSystem, Sub: "dispatch"}, true, true},
	} {
		if got := tt.a.PermitPosition("c-1") == nil; got != tt.position {
			t.Errorf("%s may report c-1's position: %t, want %t", tt.a, got, tt.position)
		}
		if got := tt.a.PermitMany("x") == nil; got != tt.many {
			t.Errorf("%s may send many: %t, want %t", tt.a, got, tt.many)
		}
	}
}

// TestRolesNotBefore: a courier picks up only an order its restaurant has accepted and delivers
// only one it picked up; every other role may set what it may set from any stage.
func TestRolesNotBefore(t *testing.T) {
	want := map[auth.Role]map[ordercast.Status]ordercast.Status{
		auth.RoleCourier: {ordercast.StatusOutForDelivery: ordercast.StatusConfirmed, ordercast.StatusDelivered: ordercast.StatusOutForDelivery},
	}
	for _, r := range auth.Roles {
		for _, st := range ordercast.Statuses {
			if got := (auth.Actor{Role: r, Sub: "x"}).NotBefore(st); got != want[r][st] {
				t.Errorf("%s setting %s: not before %q, want %q", r, st, got, want[r][st])
			}
		}
	}
}

func TestActorString(t *testing.T) {
	if got := (auth.Actor{Role: auth.RoleCourier, Sub: "c-42"}).String(); got != "courier:c-42" {
		t.Errorf("got %q", got)
	}
	if got := (auth.Actor{Role: auth.RoleSystem}).String(); got != "system" {
		t.Errorf("got %q", got)
	}
}

func TestTrackingToken(t *testing.T) {
	a := newAuthority(t)
	tok, exp, err := a.SignTracking("ord-a", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := a.ParseTracking(tok)
	if err != nil || tr != (auth.Tracking{OrderID: "ord-a", Exp: exp}) {
		t.Fatalf("ParseTracking: %+v %v, want ord-a %v", tr, err, exp)
	}
	if owner, _, err := a.AuthorizeWatch(tok, "ord-a"); err != nil || owner != (auth.Actor{}) {
		t.Errorf("watch own order: %v, owner %+v", err, owner)
	}
	wantCode(t, watchErr(a, tok, "ord-b"), ordercast.EForbidden)
	// A tracking token is not an actor token: a good token for something else, 403.
	_, err = a.ParseActor(tok)
	wantCode(t, err, ordercast.EForbidden)
	// It is a valid token for something else: 403 saying so, not a misleading 401.
	wantCode(t, a.AuthorizeWatchAll(tok), ordercast.EForbidden)
}

// TestTrackingTokenExpiresInUTC: when a tracking token expires is said in UTC, as every time the
// API answers with, whatever zone the server's clock is in (TZ on its host); a creation's
// tracking_token_expires_at showed the host's offset beside the order's UTC times.
func TestTrackingTokenExpiresInUTC(t *testing.T) {
	a := newAuthority(t)
	berlin := time.FixedZone("CET", 3600)
	a.Now = func() time.Time { return time.Now().In(berlin) }
	tok, exp, err := a.SignTracking("ord-a", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Location() != time.UTC {
		t.Errorf("SignTracking's expiry is in %v, want UTC", exp.Location())
	}
	if tr, err := a.ParseTracking(tok); err != nil || !tr.Exp.Equal(exp) || tr.Exp.Location() != time.UTC {
		t.Errorf("ParseTracking's expiry %v (%v), want %v in UTC", tr.Exp, err, exp)
	}
}

// TestCourierTrackingToken: a courier's tracking token names its order and its courier, under an
// audience of its own (a server that knows no courier claim refuses it rather than take it for a
// customer's). It reads its order only as its courier, whose ownership the caller decides
// (AuthorizeWatch names the courier as the owner to check), never another order, and it is no
// actor token: it changes nothing. It lives as long as asked.
func TestCourierTrackingToken(t *testing.T) {
	a := newAuthority(t)
	tok, exp, err := a.SignCourierTracking("ord-a", "c-42", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("expires %v, want within the hour", exp)
	}
	tr, err := a.ParseTracking(tok)
	if err != nil || tr != (auth.Tracking{OrderID: "ord-a", Courier: "c-42", Exp: exp}) {
		t.Fatalf("ParseTracking: %+v %v", tr, err)
	}
	owner, _, err := a.AuthorizeWatch(tok, "ord-a")
	wantCode(t, err, ordercast.EForbidden)
	if owner != (auth.Actor{Role: auth.RoleCourier, Sub: "c-42"}) {
		t.Errorf("the courier's tracking token reads its order as %+v, want courier c-42, whose the order must be", owner)
	}
	if owner, _, err := a.AuthorizeWatch(tok, "ord-b"); ordercast.ErrorCode(err) != ordercast.EForbidden || owner != (auth.Actor{}) {
		t.Errorf("another order: %+v %v, want a refusal with no owner to ask", owner, err)
	}
	_, err = a.ParseActor(tok)
	wantCode(t, err, ordercast.EForbidden)
	wantCode(t, a.AuthorizeWatchAll(tok), ordercast.EForbidden)

	// Only this server's courier tokens name a courier, and only they: a customer's audience with
	// a courier claim, or a courier's audience without one, is no token of ours.
	for name, claims := range map[string]jwt.MapClaims{
		"a customer's audience naming a courier": {"sub": "ord-a", "aud": auth.TrackingAudience, "courier": "c-42"},
		"a courier's audience naming none":       {"sub": "ord-a", "aud": auth.CourierTrackingAudience},
		"a courier that cannot be an id":         {"sub": "ord-a", "aud": auth.CourierTrackingAudience, "courier": "c 42"},
	} {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
		forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
		if _, err := a.ParseTracking(forged); ordercast.ErrorCode(err) != ordercast.EUnauthenticated {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	if _, _, err := a.SignCourierTracking("ord-a", "", time.Time{}, time.Hour); err == nil {
		t.Error("signed a courier's tracking token for no courier")
	}
}

// TestPageTrackingToken: a tracking token a page makes from its own token names the page's actor
// (Via), a customer's or, for a courier's page, a courier's, and grants what the same token
// without it grants.
func TestPageTrackingToken(t *testing.T) {
	a := newAuthority(t)
	restaurant := auth.Actor{Role: auth.RoleRestaurant, Sub: "r-1"}
	tok, exp, err := a.SignPageTracking("ord-a", "", time.Time{}, restaurant, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := a.ParseTracking(tok); err != nil || tr != (auth.Tracking{OrderID: "ord-a", Via: "restaurant:r-1", Exp: exp}) {
		t.Fatalf("ParseTracking: %+v %v", tr, err)
	}
	if owner, _, err := a.AuthorizeWatch(tok, "ord-a"); err != nil || owner != (auth.Actor{}) {
		t.Errorf("it reads its order: %+v %v, want yes, with no owner to ask", owner, err)
	}
	wantCode(t, watchErr(a, tok, "ord-b"), ordercast.EForbidden)

	courier := auth.Actor{Role: auth.RoleCourier, Sub: "c-42"}
	tok, exp, err = a.SignPageTracking("ord-a", "c-42", time.Time{}, courier, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := a.ParseTracking(tok); err != nil || tr != (auth.Tracking{OrderID: "ord-a", Courier: "c-42", Via: "courier:c-42", Exp: exp}) {
		t.Fatalf("ParseTracking of a courier's: %+v %v", tr, err)
	}
	if owner, _, _ := a.AuthorizeWatch(tok, "ord-a"); owner != courier {
		t.Errorf("a courier's reads its order as %+v, want courier c-42, whose the order must be", owner)
	}
	if _, _, err := a.SignPageTracking("ord-a", "", time.Time{}, auth.Anyone, time.Hour); err == nil {
		t.Error("signed a page's tracking token for no actor")
	}
	if _, _, err := a.SignPageTracking("ord-a", "c 42", time.Time{}, courier, time.Hour); err == nil {
		t.Error("signed a tracking token for a courier that cannot be an id")
	}
}

// watchErr is AuthorizeWatch's refusal.
func watchErr(a *auth.Authority, tok, orderID string) error {
	_, _, err := a.AuthorizeWatch(tok, orderID)
	return err
}

func TestBadTokensRefused(t *testing.T) {
	a := newAuthority(t)
	good, _, err := a.SignTracking("ord-a", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.New([]byte("another-secret-0123456789abcdefghij"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, _ := other.SignTracking("ord-a", time.Time{}, time.Hour)
	past := newAuthority(t)
	past.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, _, _ := past.SignTracking("ord-a", time.Time{}, time.Hour)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(jwtSegment(`{"iss":"ordercast","sub":"ord-b","aud":["ordercast-tracking"],"exp":99999999999,"iat":1}`), "=") + "." + parts[2]
	none := jwtSegment(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "."
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "ord-a", Audience: jwt.ClaimStrings{auth.TrackingAudience}}).SignedString(testSecret)
	exp := time.Now().Add(time.Hour).Unix()
	numericSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin", "sub": 7, "exp": exp, "iat": time.Now().Unix()}).SignedString(testSecret)
	critical := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin", "sub": "ops", "exp": exp, "iat": time.Now().Unix()})
	critical.Header["crit"] = []string{"b64"}
	withCrit, _ := critical.SignedString(testSecret)
	stringExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin", "sub": "ops", "exp": strconv.FormatInt(exp, 10), "iat": time.Now().Unix()}).SignedString(testSecret)
	// Each refusal says what its holder can put right: a token that is not one, one signed with
	// another secret (or changed since), one past its time, one without a time or with a claim of
	// the wrong type; anything else is only invalid. Only the one past its time has a code of its
	// own (token_expired): it alone is cured by a new token of the same kind.
	un, expiredCode := ordercast.EUnauthenticated, ordercast.ETokenExpired
	for _, tt := range []struct{ name, tok, code, says string }{
		{"missing", "", un, "required"},
		{"garbage", "not-a-token", un, "token is malformed"},
		{"other secret", foreign, un, "signature does not verify"},
		{"expired", expired, expiredCode, "token has expired"},
		{"tampered payload", tampered, un, "signature does not verify"},
		{"alg none", none, un, "signature does not verify"},
		{"no exp", noExp, un, "token has no exp"},
		{"a sub that is a number", numericSub, un, "token is malformed: its header or claims do not decode"},
		{"exp as a string", stringExp, un, `token claim "exp" must be a number`},
		{"a critical extension", withCrit, un, "critical extensions (crit)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := watchErr(a, tt.tok, "ord-a")
			wantCode(t, err, tt.code)
			if got := ordercast.ErrorMessage(err); !strings.Contains(got, tt.says) {
				t.Errorf("AuthorizeWatch says %q, want %q", got, tt.says)
			}
			_, err = a.ParseActor(tt.tok)
			wantCode(t, err, tt.code)
			if got := ordercast.ErrorMessage(err); tt.tok != "" && !strings.Contains(got, tt.says) {
				t.Errorf("ParseActor says %q, want %q", got, tt.says)
			}
		})
	}
}

func jwtSegment(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func TestActorTokens(t *testing.T) {
	a := newAuthority(t)
	tok, err := a.SignActor(auth.Actor{Role: auth.RoleCourier, Sub: "c-42"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.ParseActor(tok)
	if err != nil || got != (auth.Actor{Role: auth.RoleCourier, Sub: "c-42"}) {
		t.Fatalf("ParseActor: %v %v", got, err)
	}
	// A courier may not watch orders it has no tracking token for; an admin may.
	owner, _, err := a.AuthorizeWatch(tok, "ord-a")
	wantCode(t, err, ordercast.EForbidden)
	if owner != (auth.Actor{Role: auth.RoleCourier, Sub: "c-42"}) {
		t.Errorf("a courier's token reads as %+v, want its courier, whose orders decide", owner)
	}
	admin, _ := a.SignActor(auth.Actor{Role: auth.RoleAdmin}, time.Minute)
	if _, _, err := a.AuthorizeWatch(admin, "ord-a"); err != nil {
		t.Errorf("admin watch: %v", err)
	}
	// A role outside the list is refused.
	bad, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "root", "exp": time.Now().Add(time.Minute).Unix()}).SignedString(testSecret)
	_, err = a.ParseActor(bad)
	wantCode(t, err, ordercast.EUnauthenticated)
	// nbf in the future, beyond the leeway.
	early, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin", "exp": time.Now().Add(time.Hour).Unix(), "nbf": time.Now().Add(10 * time.Minute).Unix()}).SignedString(testSecret)
	_, err = a.ParseActor(early)
	wantCode(t, err, ordercast.EUnauthenticated)
	// Small clock skew is tolerated.
	skewed, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin", "exp": time.Now().Add(-5 * time.Second).Unix()}).SignedString(testSecret)
	if _, err := a.ParseActor(skewed); err != nil {
		t.Errorf("token expired 5 s ago, within the leeway: %v", err)
	}
}

// TestPublicKeys: RS256 and ES256 tokens verify with configured public keys; HS256 tokens signed
// with the RSA public key's bytes as the secret (algorithm confusion) do not.
func TestPublicKeys(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var pemData []byte
	for _, k := range []any{&rk.PublicKey, &ek.PublicKey} {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	keys, err := auth.ParsePublicKeys(pemData)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParsePublicKeys: %d keys, %v", len(keys), err)
	}
	a, err := auth.New(testSecret, keys...)
	if err != nil {
		t.Fatal(err)
	}
	a.ExternalAudience = "ordercast"
	claims := jwt.MapClaims{"role": "system", "sub": "checkout", "aud": "ordercast", "exp": time.Now().Add(time.Minute).Unix()}
	rs, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(rk)
	es, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(ek)
	for name, tok := range map[string]string{"RS256": rs, "ES256": es} {
		if got, err := a.ParseActor(tok); err != nil || got.String() != "system:checkout" {
			t.Errorf("%s: %v %v", name, got, err)
		}
	}
	confused, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pemData)
	_, err = a.ParseActor(confused)
	wantCode(t, err, ordercast.EUnauthenticated)
	// RS384 is not on the list even with an RSA key configured.
	rs384, _ := jwt.NewWithClaims(jwt.SigningMethodRS384, claims).SignedString(rk)
	_, err = a.ParseActor(rs384)
	wantCode(t, err, ordercast.EUnauthenticated)
	// Without public keys, RS256 is refused.
	_, err = newAuthority(t).ParseActor(rs)
	wantCode(t, err, ordercast.EUnauthenticated)
}

// rsaAuthority is an authority with the test secret that also takes RS256 tokens of a new RSA
// key, an identity provider's, and that key.
func rsaAuthority(t *testing.T) (*auth.Authority, *rsa.PrivateKey) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(testSecret, &rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return a, rk
}

// TestExternalTokenChecks: an RS256/ES256 token must name the configured audience (and issuer,
// when one is set) and live no longer than ExternalMaxLifetime: a token an identity provider
// minted for another service, or for ten years, does not act here (issue 13, finding 4).
func TestExternalTokenChecks(t *testing.T) {
	a, rk := rsaAuthority(t)
	now := time.Now()
	sign := func(c jwt.MapClaims) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(rk)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := jwt.MapClaims{"role": "admin", "aud": "ordercast", "iss": "https://idp", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	// No audience configured: external tokens are refused whatever they carry.
	_, err := a.ParseActor(sign(good))
	wantCode(t, err, ordercast.EUnauthenticated)

	a.ExternalAudience, a.ExternalIssuer = "ordercast", "https://idp"
	if _, err := a.ParseActor(sign(good)); err != nil {
		t.Fatalf("a good token: %v", err)
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	for name, c := range map[string]jwt.MapClaims{
		"another service's audience": with("aud", "billing"),
		"no audience":                with("aud", nil),
		"another issuer":             with("iss", "https://evil"),
		"ten years":                  with("exp", now.Add(10*365*24*time.Hour).Unix()),
		"ten years without iat":      with("iat", nil),
	} {
		if name == "ten years without iat" {
			c["exp"] = now.Add(10 * 365 * 24 * time.Hour).Unix()
		}
		_, err := a.ParseActor(sign(c))
		if ordercast.ErrorCode(err) != ordercast.EUnauthenticated {
			t.Errorf("%s: %v, want unauthenticated", name, err)
		}
	}
	// Our own HS256 tokens are not held to the external audience.
	own, err := a.SignActor(auth.Actor{Role: auth.RoleAdmin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ParseActor(own); err != nil {
		t.Fatalf("own HS256 token: %v", err)
	}
}

// TestATokenHasOneSpelling: a token whose signature's last character is changed in its spare bits
// alone (the same bytes to a loose base64url reader) is refused: one token, one string, so no
// variant is a cache entry of its own or passes a list of refused tokens.
func TestATokenHasOneSpelling(t *testing.T) {
	a := newAuthority(t)
	actor, err := a.SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "x"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tracking, _, err := a.SignTracking("o-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, tc := range []struct {
		name  string
		tok   string
		parse func(string) error
	}{
		{"actor", actor, func(s string) error { _, err := a.ParseActor(s); return err }},
		{"tracking", tracking, func(s string) error { _, err := a.ParseTracking(s); return err }},
	} {
		accepted := 0
		for _, c := range alphabet {
			if tc.parse(tc.tok[:len(tc.tok)-1]+string(c)) == nil {
				accepted++
			}
		}
		if accepted != 1 {
			t.Errorf("%s token: %d spellings accepted, want 1 (its own)", tc.name, accepted)
		}
	}
}

// TestARotationAcceptsBothSecrets: a node that signs with a new secret and accepts the old one
// takes tokens of both, actor and tracking alike, and signs with the new one only; once the old
// one is dropped, its tokens are refused (a leaked token revoked), the new one's still taken.
func TestARotationAcceptsBothSecrets(t *testing.T) {
	oldSecret, newSecret := []byte("the-old-secret-0123456789abcdefghij"), []byte("the-new-secret-0123456789abcdefghij")
	before, err := auth.New(oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	oldActor, _ := before.SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "ops"}, time.Hour)
	oldTracking, _, _ := before.SignTracking("o-1", time.Time{}, time.Hour)

	during, err := auth.New(newSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := during.AcceptSecrets(oldSecret); err != nil {
		t.Fatal(err)
	}
	newActor, _ := during.SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "ops"}, time.Hour)
	for name, err := range map[string]error{
		"an old actor token":    func() error { _, err := during.ParseActor(oldActor); return err }(),
		"an old tracking token": func() error { _, err := during.ParseTracking(oldTracking); return err }(),
		"a new actor token":     func() error { _, err := during.ParseActor(newActor); return err }(),
	} {
		if err != nil {
			t.Errorf("during the rotation, %s: %v", name, err)
		}
	}
	if _, err := before.ParseActor(newActor); err == nil {
		t.Error("a token signed during the rotation verifies with the old secret: it was not signed with the new one")
	}

	after, err := auth.New(newSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := after.ParseActor(oldActor); ordercast.ErrorCode(err) != ordercast.EUnauthenticated {
		t.Errorf("after the rotation, an old actor token: %v; want it refused", err)
	}
	if _, err := after.ParseTracking(oldTracking); ordercast.ErrorCode(err) != ordercast.EUnauthenticated {
		t.Errorf("after the rotation, an old tracking token: %v; want it refused", err)
	}
	if err := after.AcceptSecrets([]byte("short")); err == nil {
		t.Error("a short secret accepted")
	}
}

// TestATrackingTokenLivesNoLongerThanTheCap: a tracking token shows its order and, out for
// delivery, its courier's position: one that lives longer than TrackingMaxLifetime (a week by
// default) is refused, however it was minted (`ordercast token --order --ttl 876000h`).
func TestATrackingTokenLivesNoLongerThanTheCap(t *testing.T) {
	a := newAuthority(t)
	for _, tc := range []struct {
		ttl  time.Duration
		want bool
	}{
		{auth.DefaultTrackingTTL, true},
		{auth.DefaultTrackingMaxLifetime, true},
		{auth.DefaultTrackingMaxLifetime + time.Hour, false},
		{876000 * time.Hour, false},
	} {
		tok, _, err := a.SignTracking("o-1", time.Time{}, tc.ttl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ParseTracking(tok); (err == nil) != tc.want {
			t.Errorf("a tracking token of %s: %v; want accepted %v", tc.ttl, err, tc.want)
		}
	}
	a.TrackingMaxLifetime = 30 * 24 * time.Hour // a server whose --tracking-ttl is longer
	tok, _, err := a.SignTracking("o-1", time.Time{}, 20*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ParseTracking(tok); err != nil {
		t.Errorf("a 20-day tracking token under a 30-day cap: %v", err)
	}
}

// TestAnActorTokenLivesNoLongerThanTheCap: an HS256 actor token that lives longer than
// ActorMaxLifetime (a quarter by default) is refused, however it was minted; one within it is taken.
func TestAnActorTokenLivesNoLongerThanTheCap(t *testing.T) {
	a := newAuthority(t)
	for _, tc := range []struct {
		ttl  time.Duration
		want bool
	}{
		{auth.DefaultActorMaxLifetime, true},
		{auth.DefaultActorMaxLifetime + time.Hour, false},
		{876000 * time.Hour, false},
	} {
		tok, err := a.SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "ops"}, tc.ttl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ParseActor(tok); (err == nil) != tc.want {
			t.Errorf("an actor token of %s: %v; want accepted %v", tc.ttl, err, tc.want)
		}
	}
	a.ActorMaxLifetime = time.Hour
	tok, _ := a.SignActor(auth.Actor{Role: auth.RoleSystem}, 2*time.Hour)
	if _, err := a.ParseActor(tok); err == nil {
		t.Error("a 2h token accepted under a 1h cap")
	}
}

// TestAWatchSaysWhyAnActorTokenIsRefused: a token that is no tracking token is refused on a read
// for what is wrong with it as an actor token, as a write refuses it, not with a bare "invalid".
func TestAWatchSaysWhyAnActorTokenIsRefused(t *testing.T) {
	a := newAuthority(t)
	now := time.Now()
	sign := func(role string, ttl time.Duration) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": auth.Issuer, "sub": "ops", "role": role, "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
		}).SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tok := range []string{sign("chef", time.Hour), sign("admin", 100000*time.Hour)} {
		_, perr := a.ParseActor(tok)
		werr := watchErr(a, tok, "ord-a")
		wantCode(t, werr, ordercast.EUnauthenticated)
		if got, want := ordercast.ErrorMessage(werr), ordercast.ErrorMessage(perr); got != want || got == "invalid token" {
			t.Errorf("a read says %q, a write %q: want the write's reason, and one that says what is wrong", got, want)
		}
	}
}

// TestAWatchSaysWhyAnExternalTokenIsRefused: an identity provider's RS256 token refused on a read
// (another audience, another issuer, too long a life, expired) says why, as a write does, rather
// than that its signature does not verify with this server's keys: it does, and an operator told
// so looks for the fault in the wrong place.
func TestAWatchSaysWhyAnExternalTokenIsRefused(t *testing.T) {
	a, rk := rsaAuthority(t)
	a.ExternalAudience, a.ExternalIssuer = "ordercast", "https://idp"
	now := time.Now()
	for name, c := range map[string]jwt.MapClaims{
		"another audience": {"role": "admin", "aud": "billing", "iss": "https://idp", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()},
		"another issuer":   {"role": "admin", "aud": "ordercast", "iss": "https://evil", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()},
		"too long a life":  {"role": "admin", "aud": "ordercast", "iss": "https://idp", "iat": now.Unix(), "exp": now.Add(48 * time.Hour).Unix()},
		"expired":          {"role": "admin", "aud": "ordercast", "iss": "https://idp", "iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()},
	} {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(rk)
		if err != nil {
			t.Fatal(err)
		}
		_, perr := a.ParseActor(tok)
		werr := watchErr(a, tok, "ord-a")
		code := ordercast.EUnauthenticated
		if name == "expired" {
			code = ordercast.ETokenExpired
		}
		wantCode(t, perr, code)
		wantCode(t, werr, code)
		if got, want := ordercast.ErrorMessage(werr), ordercast.ErrorMessage(perr); got != want {
			t.Errorf("%s: a read says %q, a write %q: want the write's reason", name, got, want)
		}
	}
}

// TestAnAlgorithmNotAcceptedIsNamed: an identity provider's token signed with an algorithm this
// server does not take (ES384, PS256, RS256 with no RSA key configured) is refused naming the
// algorithm, not as a signature that does not verify with this server's keys, which would send
// the operator looking for a wrong key.
func TestAnAlgorithmNotAcceptedIsNamed(t *testing.T) {
	a, rk := rsaAuthority(t)
	ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a.ExternalAudience = "ordercast"
	now := time.Now()
	claims := jwt.MapClaims{"role": "admin", "aud": "ordercast", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	es384, _ := jwt.NewWithClaims(jwt.SigningMethodES384, claims).SignedString(ek)
	ps256, _ := jwt.NewWithClaims(jwt.SigningMethodPS256, claims).SignedString(rk)
	rs256, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(rk)
	for _, c := range []struct {
		a        *auth.Authority
		tok, alg string
	}{{a, es384, "ES384"}, {a, ps256, "PS256"}, {newAuthority(t), rs256, "RS256"}} {
		_, err := c.a.ParseActor(c.tok)
		wantCode(t, err, ordercast.EUnauthenticated)
		if msg := ordercast.ErrorMessage(err); !strings.Contains(msg, c.alg) {
			t.Errorf("%s: refused with %q, which does not name the algorithm", c.alg, msg)
		}
		// A read says the same.
		if msg := ordercast.ErrorMessage(watchErr(c.a, c.tok, "ord-a")); !strings.Contains(msg, c.alg) {
			t.Errorf("%s: a read refused with %q, which does not name the algorithm", c.alg, msg)
		}
	}
	// The algorithm on the list still verifies.
	if _, err := a.ParseActor(rs256); err != nil {
		t.Fatalf("RS256: %v", err)
	}
}

// TestAClaimHasOneSpelling: a token whose payload writes a claim the service reads twice, or in
// another letter case, is refused, however well signed: encoding/json would take "AUD" for the
// audience and the last of two roles, so such a token could pass the audience, issuer or role
// check with a claim its identity provider never meant as one. Claims the service does not read
// may be spelled as their issuer likes.
func TestAClaimHasOneSpelling(t *testing.T) {
	a, rk := rsaAuthority(t)
	a.ExternalAudience, a.ExternalIssuer = "ordercast", "https://idp"
	now := time.Now()
	times := fmt.Sprintf(`"iat":%d,"exp":%d`, now.Unix(), now.Add(time.Hour).Unix())
	sign := func(method jwt.SigningMethod, key any, payload string) string {
		t.Helper()
		unsigned := jwtSegment(`{"alg":"`+method.Alg()+`","typ":"JWT"}`) + "." + jwtSegment(payload)
		sig, err := method.Sign(unsigned, key)
		if err != nil {
			t.Fatal(err)
		}
		return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	actor := func(tok string) error { _, err := a.ParseActor(tok); return err }
	tracking := func(tok string) error { _, err := a.ParseTracking(tok); return err }
	for _, tc := range []struct {
		name     string
		method   jwt.SigningMethod
		payload  string
		parse    func(string) error
		accepted bool
	}{
		{"external, as its provider spells it", jwt.SigningMethodRS256, `{"role":"admin","aud":"ordercast","iss":"https://idp",` + times + `}`, actor, true},
		{"external, claims the service does not read in any case", jwt.SigningMethodRS256, `{"role":"admin","aud":"ordercast","iss":"https://idp","AUDIT":"x","Roles":["a"],` + times + `}`, actor, true},
		{"external, a tracking token's claim names in capitals", jwt.SigningMethodRS256, `{"role":"admin","aud":"ordercast","iss":"https://idp","Courier":true,"VIA":"x",` + times + `}`, actor, true},
		{"external, the audience in capitals", jwt.SigningMethodRS256, `{"role":"admin","AUD":"ordercast","iss":"https://idp",` + times + `}`, actor, false},
		{"external, a second audience", jwt.SigningMethodRS256, `{"role":"admin","aud":"billing","aud":"ordercast","iss":"https://idp",` + times + `}`, actor, false},
		{"external, the issuer with long s", jwt.SigningMethodRS256, `{"role":"admin","aud":"ordercast","iss":"https://evil","i\u017f\u017f":"https://idp",` + times + `}`, actor, false},
		{"external, the issuer escaped twice", jwt.SigningMethodRS256, `{"role":"admin","aud":"ordercast","iss":"https://evil","\u0069ss":"https://idp",` + times + `}`, actor, false},
		{"own, the role in capitals", jwt.SigningMethodHS256, `{"ROLE":"admin",` + times + `}`, actor, false},
		{"own, a second role", jwt.SigningMethodHS256, `{"role":"customer","sub":"u-1","role":"admin",` + times + `}`, actor, false},
		{"tracking, as the service spells it", jwt.SigningMethodHS256, `{"sub":"o-1","aud":"ordercast-tracking",` + times + `}`, tracking, true},
		{"tracking, another order in capitals", jwt.SigningMethodHS256, `{"sub":"o-1","aud":"ordercast-tracking","Sub":"o-2",` + times + `}`, tracking, false},
	} {
		var key any = testSecret
		if tc.method == jwt.SigningMethodRS256 {
			key = rk
		}
		err := tc.parse(sign(tc.method, key, tc.payload))
		switch {
		case tc.accepted && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.accepted && ordercast.ErrorCode(err) != ordercast.EUnauthenticated:
			t.Errorf("%s: %v, want unauthenticated", tc.name, err)
		}
	}
}

// TestCheckSecret: a secret is refused when it is short, or long but plainly not random; random
// text of the shortest length passes.
func TestCheckSecret(t *testing.T) {
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{strings.Repeat("a", 64), false},
		{strings.Repeat("abc", 11), false},
		{strings.Repeat("deadbeef", 4), false},
		{"0123456789abcdef", false}, // random-looking, too short
		{"0123456789abcdef0123456789abcdef", true},
		{"d41d8cd98f00b204e9800998ecf8427e", true}, // `openssl rand -hex 16`'s kind
		{string(testSecret), true},
	} {
		if err := auth.CheckSecret([]byte(tc.secret)); (err == nil) != tc.ok {
			t.Errorf("CheckSecret(%q) = %v, want ok %v", tc.secret, err, tc.ok)
		}
	}
	if _, err := auth.New([]byte(strings.Repeat("s", 32))); err == nil {
		t.Error("New took a secret of one byte repeated")
	}
}

// TestViaActorIsTheActorWhosePageMadeIt: a page's tracking token names, in Via, the actor it was
// made for, whom ViaActor gives back whole; the customer's own names none.
func TestViaActorIsTheActorWhosePageMadeIt(t *testing.T) {
	a, err := auth.New(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, via := range []auth.Actor{{Role: auth.RoleRestaurant, Sub: "r-1"}, {Role: auth.RoleAdmin}, {Role: auth.RoleAdmin, Sub: "ops:eu"}} {
		tok, _, err := a.SignPageTracking("o-1", "", time.Time{}, via, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := a.ParseTracking(tok)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := tr.ViaActor(); !ok || got != via {
			t.Errorf("a page's token made for %v: ViaActor() = %v, %v", via, got, ok)
		}
	}
	tok, _, err := a.SignTracking("o-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := a.ParseTracking(tok); err != nil {
		t.Fatal(err)
	} else if got, ok := tr.ViaActor(); ok {
		t.Errorf("the customer's token: ViaActor() = %v, true; want none", got)
	}
}
