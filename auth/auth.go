// Package auth decides who may watch and who may change an order. It issues and verifies two kinds
// of token, both JWTs verified by golang-jwt:
//
//   - tracking tokens, which this server signs (HS256 with its secret) for one order when the order
//     is created, and which let whoever holds them watch that order and nothing else; a courier's
//     tracking token names the courier too, and reads the order only while it is that courier's;
//   - actor tokens, which carry a role (restaurant, courier, customer, support, admin, system) and the id of
//     the party the actor acts for (sub), signed with the same secret (HS256) or by another service with a key whose
//     public half is configured (RS256, ES256).
//
// It speaks the domain's errors: a missing, malformed, expired or forged token is
// ordercast.EUnauthenticated; a good token that does not cover the request is ordercast.EForbidden.
package auth

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ordercast/ordercast"
)

// Defaults for token lifetimes and clock skew.
const (
	// DefaultTrackingTTL is how long a tracking token lets its holder watch the order: a day covers
	// any delivery, and the token is useless afterwards.
	DefaultTrackingTTL = 24 * time.Hour
	// DefaultActorTTL is the lifetime of actor tokens that `ordercast token` mints.
	DefaultActorTTL = time.Hour
	// DefaultLeeway tolerates this much clock difference between the signer and this server when
	// checking exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MinSecretBytes is the shortest HMAC secret accepted: HS256 is as strong as its key, and 32
	// bytes matches the hash's output.
	MinSecretBytes = 32
	// minSecretVariety is the fewest different bytes a secret must hold (CheckSecret): random
	// text has far more (`openssl rand -hex 16`, the shortest hex that passes the length, has
	// 14 of 16 on average, and fewer than 8 about once in thirty million), while a secret of one
	// character repeated, or a word, has a handful, and one tracking token is all an attacker
	// needs to try them offline.
	minSecretVariety = 8
)

// CheckSecret refuses an HMAC secret too short (MinSecretBytes) or too plainly not random: fewer
// than minSecretVariety different bytes ("aaaa…", "abcabc…", "deadbeef" repeated). It cannot
// tell a random secret from a long passphrase; it stops the secrets nobody meant for production.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("must be at least %d bytes, got %d", MinSecretBytes, len(secret))
	}
	var seen [256]bool
	n := 0
	for _, b := range secret {
		if !seen[b] {
			seen[b] = true
			n++
		}
	}
	if n < minSecretVariety {
		return fmt.Errorf("holds only %d different bytes: it is not random, and a token signed with it can be broken offline; use random text such as the output of `openssl rand -hex 32`", n)
	}
	return nil
}

// ErrNoToken marks the refusal of a request that presented no token where one is needed, as
// against one whose token was refused: HTTP tells the two apart (RFC 6750 §3.1 gives the first no
// error code, the second invalid_token). Test for it with errors.Is.
var ErrNoToken = errors.New("no token presented")

// NoToken returns the refusal (ordercast.EUnauthenticated, with message) of a request that
// presented no token.
func NoToken(message string) error {
	return fmt.Errorf("%w: %w", ErrNoToken, ordercast.Errorf(ordercast.EUnauthenticated, "%s", message))
}

// Issuer is the iss claim of the tokens this server signs.
const Issuer = "ordercast"

// TrackingAudience is the aud claim of tracking tokens. It keeps the two kinds of token apart: an
// actor token is never accepted as a tracking token (it lacks this audience) and a tracking token
// is never accepted as an actor token (it has it, and has no role).
const TrackingAudience = "ordercast-tracking"

// CourierTrackingAudience is the aud claim of a courier's tracking tokens (SignCourierTracking),
// instead of TrackingAudience: a server that knows no courier claim refuses such a token rather
// than read it as a customer's, which would outlive the courier's assignment.
const CourierTrackingAudience = "ordercast-tracking-courier"

// trackingAudiences are the audiences of every kind of tracking token.
var trackingAudiences = []string{TrackingAudience, CourierTrackingAudience}

// Role is what an actor is, and so which changes it may make.
type Role string

// The roles.
const (
	RoleRestaurant Role = "restaurant"
	RoleCourier    Role = "courier"
	RoleAdmin      Role = "admin"
	RoleSystem     Role = "system"
	// RoleCustomer reads and watches the orders of the customer its sub names.
	RoleCustomer Role = "customer"
	// RoleSupport is a support agent (its sub names the agent): it reads and watches every
	// order and party, lists orders (a customer's too), moves any order to any status and
	// assigns couriers, as a call to support needs; it does not create orders, report
	// positions, send requests of many items, or erase a customer's data, which are the
	// platform's (system) and its administrators' (admin). A console in every agent's browser
	// then holds a token that can do what the agent does, not everything.
	RoleSupport Role = "support"
)

// Roles lists every role.
var Roles = []Role{RoleRestaurant, RoleCourier, RoleCustomer, RoleSupport, RoleAdmin, RoleSystem}

// roleAnyone is Anyone's role. It is not in Roles, so no token carries it.
const roleAnyone Role = "anyone"

// Anyone is who makes every request on a server with auth off: it acts on every order and for
// every courier, as admin does, and is recorded as no one (its String is "").
var Anyone = Actor{Role: roleAnyone}

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// privileged roles are other services and support staff: they act on any order.
func (r Role) privileged() bool { return permissions[r].any }

// MayCreate reports whether r may create orders. Only admin and system may: an order is created by
// the platform's checkout (system) or by support (admin). A restaurant may not, because nothing in
// an order binds it to a restaurant that a token could be checked against, and the tracking token
// the creation returns would let it mint watch access at will.
func (r Role) MayCreate() bool { return r.privileged() }

// MayWatchAny reports whether r may read and watch every order with its own token: admin,
// system and support.
func (r Role) MayWatchAny() bool { return r.privileged() || permissions[r].every }

// Actor is who makes a change: a role and, optionally, the id of the restaurant or courier.
type Actor struct {
	Role Role
	Sub  string
}

// String is how the actor is recorded in an event: "courier:c-42", or the bare role without a sub.
func (a Actor) String() string {
	if a == Anyone {
		return ""
	}
	if a.Sub == "" {
		return string(a.Role)
	}
	return string(a.Role) + ":" + a.Sub
}

// actorClaims are the claims of an actor token.
type actorClaims struct {
	Role Role `json:"role"`
	jwt.RegisteredClaims
}

// Authority holds the keys and issues and verifies tokens. Create it with New.
type Authority struct {
	secret []byte
	// hmac verifies HS256 tokens: the secret, then any AcceptSecrets added, for a rotation.
	hmac []jwt.VerificationKey
	rsa  []jwt.VerificationKey
	ec   []jwt.VerificationKey
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
	// ExternalAudience must be among the aud claims of every RS256/ES256 actor token: an identity
	// provider mints tokens for many services, and one minted for another service must not act
	// here. Without it, no RS256/ES256 token is accepted.
	ExternalAudience string
	// ExternalIssuer, when set, must be the iss claim of every RS256/ES256 actor token.
	ExternalIssuer string
	// ExternalMaxLifetime caps the lifetime (exp minus iat, or minus now without iat) of an
	// RS256/ES256 actor token; zero means DefaultExternalMaxLifetime.
	ExternalMaxLifetime time.Duration
	// ActorMaxLifetime caps the lifetime of an HS256 actor token, as ExternalMaxLifetime does an
	// RS256/ES256 one; zero means DefaultActorMaxLifetime.
	ActorMaxLifetime time.Duration
	// TrackingMaxLifetime caps the lifetime of a tracking token, which shows its order and, out
	// for delivery, where its courier is; zero means DefaultTrackingMaxLifetime.
	TrackingMaxLifetime time.Duration
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time

	actors actorCache
}

// New returns an Authority that signs with secret (CheckSecret) and also accepts actor
// tokens signed by the private halves of publicKeys (*rsa.PublicKey for RS256, *ecdsa.PublicKey on
// P-256 for ES256).
func New(secret []byte, publicKeys ...crypto.PublicKey) (*Authority, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, fmt.Errorf("the secret %w", err)
	}
	a := &Authority{secret: slices.Clone(secret), Leeway: DefaultLeeway}
	a.hmac = []jwt.VerificationKey{a.secret}
	for _, k := range publicKeys {
		if err := checkPublicKey(k); err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PublicKey:
			a.rsa = append(a.rsa, k)
		case *ecdsa.PublicKey:
			a.ec = append(a.ec, k)
		}
	}
	return a, nil
}

// checkPublicKey is the one rule for a key that verifies RS256/ES256 tokens: RSA of at least
// 2,048 bits, or ECDSA on P-256.
func checkPublicKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA public key of %d bits is too short (at least 2048)", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("ECDSA public keys must be on P-256 (ES256)")
		}
	default:
		return fmt.Errorf("unsupported public key type %T (RSA or ECDSA P-256)", k)
	}
	return nil
}

// AcceptSecrets makes a accept tokens signed with each of secrets too (HS256 actor tokens and
// tracking tokens), while it signs with its own: the way through a rotation of the secret with no
// token refused and no node stopped. First every node accepts the new secret; then each signs
// with it and accepts the old one; once the longest-lived token signed with the old one has
// expired (a tracking token's TTL, a day by default, or an HS256 actor token's lifetime, up to
// ActorMaxLifetime), the old one goes. Dropping a secret refuses every
// token signed with it, which is how a leaked token is revoked.
func (a *Authority) AcceptSecrets(secrets ...[]byte) error {
	for _, s := range secrets {
		if err := CheckSecret(s); err != nil {
			return fmt.Errorf("an accepted secret %w", err)
		}
		a.hmac = append(a.hmac, slices.Clone(s))
	}
	return nil
}

// ParsePublicKeys reads every PUBLIC KEY (PKIX) or RSA PUBLIC KEY (PKCS #1) block of a PEM file,
// each a key New takes (checkPublicKey), so that a file's refused key is known as the file's.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse public key: %w", err)
			}
			keys = append(keys, k)
		case "RSA PUBLIC KEY":
			k, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse RSA public key: %w", err)
			}
			keys = append(keys, k)
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
		}
		if err := checkPublicKey(keys[len(keys)-1]); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

func (a *Authority) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// SignActor returns an HS256 actor token for actor, valid for ttl.
func (a *Authority) SignActor(actor Actor, ttl time.Duration) (string, error) {
	if !actor.Role.Valid() {
		return "", fmt.Errorf("unknown role %q (one of restaurant, courier, customer, support, admin, system)", actor.Role)
	}
	if ttl <= 0 {
		return "", errors.New("token lifetime must be positive")
	}
	now := a.now()
	claims := actorClaims{Role: actor.Role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   actor.Sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.secret)
}

// SignTracking returns a tracking token for one order, valid for ttl, and when it expires. created
// is when the order was created (Order.CreatedAt): the token reads that order only, not one
// created later under the same id once the first was purged (zero: any order of the id, for a
// token made without the order at hand).
func (a *Authority) SignTracking(orderID string, created time.Time, ttl time.Duration) (string, time.Time, error) {
	return a.signTracking(Tracking{OrderID: orderID, Created: created}, ttl)
}

// SignCourierTracking returns a courier's tracking token for one order, valid for ttl, and when
// it expires: it reads and watches the order only while courierID is the order's courier
// (AuthorizeWatch), and can change nothing. A courier's page hands one to the tracking pages it
// links, rather than the courier's actor token.
func (a *Authority) SignCourierTracking(orderID, courierID string, created time.Time, ttl time.Duration) (string, time.Time, error) {
	if err := ordercast.ValidatePartyID(courierID); err != nil {
		return "", time.Time{}, err
	}
	return a.signTracking(Tracking{OrderID: orderID, Courier: courierID, Created: created}, ttl)
}

// SignPageTracking returns a tracking token for one order that a page acting as via hands the
// tracking page it links (the console's, a party's page's): SignTracking's, or with courierID
// SignCourierTracking's, marked with via. The hand-over of a customer's link refuses it (Via),
// so that whoever may open the order's tracking page from their own page cannot send the
// customer a link that replaces the customer's cookie with one that lives as long as their
// page's token.
func (a *Authority) SignPageTracking(orderID, courierID string, created time.Time, via Actor, ttl time.Duration) (string, time.Time, error) {
	if via == Anyone {
		return "", time.Time{}, errors.New("a page's tracking token needs the actor it was made for")
	}
	return a.signTracking(Tracking{OrderID: orderID, Courier: courierID, Created: created, Via: via.String()}, ttl)
}

// Tracking is what a tracking token grants: reading and watching order OrderID until Exp and,
// when Courier is set, only while the order's courier is Courier.
type Tracking struct {
	OrderID string
	Courier string
	// Via is the actor whose page made the token from its own (SignPageTracking), "" for one
	// handed out with its order.
	Via string
	// Created is when the order the token was made for was created (to the microsecond, as the
	// stores keep it), zero for a token that names no creation (made without the order at hand,
	// or before tokens named it): an order of the same id created later, once the first was
	// purged and its id given again, is another's, and the token does not read it (Reads).
	Created time.Time
	Exp     time.Time
}

// Reads reports whether the token reads o, the order of its id as the store holds it now: the
// very order it was made for, or any of its id for a token that names no creation.
func (t Tracking) Reads(o ordercast.Order) bool {
	return t.Created.IsZero() || o.CreatedAt.UnixMicro() == t.Created.UnixMicro()
}

// ViaActor is the actor whose page made the token (Via, as Actor.String wrote it), and whether
// a page did.
func (t Tracking) ViaActor() (Actor, bool) {
	if t.Via == "" {
		return Actor{}, false
	}
	role, sub, _ := strings.Cut(t.Via, ":")
	return Actor{Role: Role(role), Sub: sub}, true
}

// trackingClaims are the claims of a tracking token: the order is sub, the courier and the page's
// actor claims of their own. A server that knows no via claim reads such a token as any other.
type trackingClaims struct {
	Courier string `json:"courier,omitempty"`
	Via     string `json:"via,omitempty"`
	// Created is the order's creation in Unix microseconds (Tracking.Created), 0 for none. A
	// server that knows no such claim reads the token as it did before.
	Created int64 `json:"created,omitempty"`
	jwt.RegisteredClaims
}

func (a *Authority) signTracking(t Tracking, ttl time.Duration) (string, time.Time, error) {
	if err := ordercast.ValidateID(t.OrderID); err != nil {
		return "", time.Time{}, err
	}
	if t.Courier != "" {
		if err := ordercast.ValidatePartyID(t.Courier); err != nil {
			return "", time.Time{}, err
		}
	}
	if ttl <= 0 {
		return "", time.Time{}, errors.New("token lifetime must be positive")
	}
	aud := TrackingAudience
	if t.Courier != "" {
		aud = CourierTrackingAudience
	}
	now := a.now()
	exp := now.Add(ttl)
	var created int64
	if !t.Created.IsZero() {
		created = t.Created.UnixMicro()
	}
	claims := trackingClaims{Courier: t.Courier, Via: t.Via, Created: created, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   t.OrderID,
		Audience:  jwt.ClaimStrings{aud},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.secret)
	// In UTC, as every time the API answers with: the clock's own zone (TZ on the host) would
	// show in a creation's tracking_token_expires_at, unlike the order's times beside it.
	return tok, exp.UTC().Truncate(time.Second), err
}

// ParseTracking verifies a tracking token, a customer's or a courier's, and returns what it
// grants. Only HS256 with this server's secret is accepted: tracking tokens are never signed
// elsewhere.
func (a *Authority) ParseTracking(token string) (Tracking, error) {
	var claims trackingClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		return jwt.VerificationKeySet{Keys: a.hmac}, nil // the method is pinned to HS256 below
	}, a.options(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(trackingAudiences...))...)
	if err != nil {
		return Tracking{}, tokenError(token, err)
	}
	if err := checkClaimNames(token, trackingClaimNames); err != nil {
		return Tracking{}, err
	}
	if err := a.checkLifetime(&claims.RegisteredClaims, cmp.Or(a.TrackingMaxLifetime, DefaultTrackingMaxLifetime)); err != nil {
		return Tracking{}, err
	}
	// A courier's token names a courier, and only a courier's does.
	courierToken := slices.Contains(claims.Audience, CourierTrackingAudience)
	if ordercast.ValidateID(claims.Subject) != nil || courierToken != (claims.Courier != "") ||
		courierToken && ordercast.ValidatePartyID(claims.Courier) != nil {
		return Tracking{}, ordercast.Errorf(ordercast.EUnauthenticated, "invalid token")
	}
	tr := Tracking{OrderID: claims.Subject, Courier: claims.Courier, Via: claims.Via, Exp: claims.ExpiresAt.Time.UTC()}
	if claims.Created != 0 {
		tr.Created = time.UnixMicro(claims.Created).UTC()
	}
	return tr, nil
}

// ParseActor verifies an actor token and returns its actor. The key is chosen by the token's
// algorithm family and each family has only its own keys, so an RSA public key can never be used
// as an HMAC secret (the classic algorithm confusion); "none" and every other algorithm are refused.
// A token that verified is remembered for up to ActorCacheTTL, never past its expiry.
func (a *Authority) ParseActor(token string) (Actor, error) {
	now := a.now()
	if actor, ok := a.actors.get(token, now); ok {
		return actor, nil
	}
	actor, exp, err := a.verifyActor(token)
	if err != nil {
		return Actor{}, err
	}
	a.actors.put(token, actor, exp, now)
	return actor, nil
}

// Expiry is when a token this authority accepted expires: its exp (zero when it names no
// expiry, which no accepted token does). It reads the claims without verifying them again: call
// it only on a token that was just accepted. A page's cookie that carries the token ends then.
func (a *Authority) Expiry(token string) time.Time {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil || claims.ExpiresAt == nil {
		return time.Time{}
	}
	return claims.ExpiresAt.Time
}

// AcceptedUntil is when a token this authority accepted stops being accepted: its exp plus
// Leeway (zero when it names no expiry, which no accepted token does). It reads the claims
// without verifying them again, as Expiry does. A stream opened with the token ends then
// (stream.Request.Until).
func (a *Authority) AcceptedUntil(token string) time.Time {
	exp := a.Expiry(token)
	if exp.IsZero() {
		return exp
	}
	return exp.Add(a.Leeway)
}

// ActorExpiry verifies an actor token as ParseActor does and returns its actor and when it
// expires (zero when it never does): what a token minted on its strength, such as the tracking
// token an operator's console hands to a tracking page, names and must not outlive.
func (a *Authority) ActorExpiry(token string) (Actor, time.Time, error) {
	return a.verifyActor(token)
}

// verifyActor checks an actor token's signature and claims.
func (a *Authority) verifyActor(token string) (Actor, time.Time, error) {
	methods := []string{"HS256"}
	if len(a.rsa) > 0 {
		methods = append(methods, "RS256")
	}
	if len(a.ec) > 0 {
		methods = append(methods, "ES256")
	}
	var claims actorClaims
	tok, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		switch t.Method.(type) {
		case *jwt.SigningMethodHMAC:
			return jwt.VerificationKeySet{Keys: a.hmac}, nil
		case *jwt.SigningMethodRSA:
			return jwt.VerificationKeySet{Keys: a.rsa}, nil
		case *jwt.SigningMethodECDSA:
			return jwt.VerificationKeySet{Keys: a.ec}, nil
		}
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}, a.options(jwt.WithValidMethods(methods))...)
	if err != nil && tok != nil && tok.Method != nil && tok.Method != jwt.SigningMethodNone && !slices.Contains(methods, tok.Method.Alg()) {
		// golang-jwt reports an algorithm off the list as a signature that does not verify,
		// which sends an operator whose identity provider signs with another one (ES384,
		// PS256) looking for a wrong key: name the algorithm instead. An unsigned token
		// ("none") is no identity provider's and is refused as before.
		refusal := ordercast.Errorf(ordercast.EUnauthenticated, "token algorithm %s is not accepted here (accepted: %s)", tok.Method.Alg(), strings.Join(methods, ", "))
		return Actor{}, time.Time{}, fmt.Errorf("%w: %w", refusal, err)
	}
	if err != nil {
		return Actor{}, time.Time{}, tokenError(token, err)
	}
	if _, ok := tok.Header["crit"]; ok {
		// RFC 7515 §4.1.11: a token whose header names extensions it must be understood with,
		// by a verifier that understands none, is refused; the JWT library passes crit over.
		return Actor{}, time.Time{}, ordercast.Errorf(ordercast.EUnauthenticated, "token header names critical extensions (crit), which this server does not understand")
	}
	if err := checkClaimNames(token, actorClaimNames); err != nil {
		return Actor{}, time.Time{}, err
	}
	if slices.ContainsFunc(claims.Audience, func(aud string) bool { return slices.Contains(trackingAudiences, aud) }) {
		// A good token for something else (watching its one order): 403, as the API's table has it.
		return Actor{}, time.Time{}, ordercast.Errorf(ordercast.EForbidden, "a tracking token only reads and watches its one order: this request needs an actor token")
	}
	if _, hmac := tok.Method.(*jwt.SigningMethodHMAC); !hmac {
		if err := a.checkExternal(&claims); err != nil {
			return Actor{}, time.Time{}, err
		}
	} else if err := a.checkLifetime(&claims.RegisteredClaims, cmp.Or(a.ActorMaxLifetime, DefaultActorMaxLifetime)); err != nil {
		return Actor{}, time.Time{}, err
	}
	if !claims.Role.Valid() {
		return Actor{}, time.Time{}, ordercast.Errorf(ordercast.EUnauthenticated, "token has no valid role")
	}
	if len(claims.Subject) > 64 {
		return Actor{}, time.Time{}, ordercast.Errorf(ordercast.EUnauthenticated, "token subject is too long")
	}
	// exp is required (options), so ExpiresAt is set.
	return Actor{Role: claims.Role, Sub: claims.Subject}, claims.ExpiresAt.Time, nil
}

// DefaultExternalMaxLifetime is the longest lifetime accepted of an RS256/ES256 actor token: a
// working day's shift and then some; identity providers commonly issue minutes to hours.
const DefaultExternalMaxLifetime = 24 * time.Hour

// DefaultTrackingMaxLifetime is the longest lifetime accepted of a tracking token: a week, far
// past the day the server's own last (DefaultTrackingTTL), and short enough that a link minted
// by hand (`ordercast token --order`) does not follow an order's courier for years.
const DefaultTrackingMaxLifetime = 7 * 24 * time.Hour

// DefaultActorMaxLifetime is the longest lifetime accepted of an HS256 actor token, which this
// server's secret signs (`ordercast token`): a quarter, for an integration's token renewed with
// each rotation of the secret. A token that lived longer, an admin's for a century say, would
// outlast everyone who remembers minting it; there is no list of revoked tokens to stop it.
const DefaultActorMaxLifetime = 90 * 24 * time.Hour

// checkExternal holds a token signed by an identity provider to what this service accepts: its
// audience, its issuer when one is configured, and a bounded lifetime.
func (a *Authority) checkExternal(c *actorClaims) error {
	switch {
	case a.ExternalAudience == "":
		return ordercast.Errorf(ordercast.EUnauthenticated, "RS256/ES256 tokens are not accepted without a configured audience")
	case !slices.Contains(c.Audience, a.ExternalAudience):
		return ordercast.Errorf(ordercast.EUnauthenticated, "token is not for this service (audience)")
	case a.ExternalIssuer != "" && c.Issuer != a.ExternalIssuer:
		return ordercast.Errorf(ordercast.EUnauthenticated, "token is from another issuer")
	}
	return a.checkLifetime(&c.RegisteredClaims, cmp.Or(max(a.ExternalMaxLifetime, 0), DefaultExternalMaxLifetime))
}

// checkLifetime refuses a token that lives longer than most: exp minus iat, or minus now for a
// token without iat (or one issued in the future).
func (a *Authority) checkLifetime(c *jwt.RegisteredClaims, most time.Duration) error {
	start := a.now()
	if c.IssuedAt != nil && c.IssuedAt.Before(start) {
		start = c.IssuedAt.Time
	}
	if c.ExpiresAt.Sub(start) > most+a.Leeway {
		return ordercast.Errorf(ordercast.EUnauthenticated, "token lifetime exceeds %s", most)
	}
	return nil
}

// ErrAnotherOrder refuses a tracking token for another order than the one it is shown: another
// id, or the same id given to an order created after the token's was purged (Tracking.Reads).
var ErrAnotherOrder error = ordercast.Errorf(ordercast.EForbidden, "the token is for another order")

// AuthorizeWatch decides whether token lets its holder read and watch order orderID: a customer's
// tracking token for that order, or an actor token of a role that may watch any order. A right
// that depends on whom the order belongs to now is refused here (EForbidden) and named in owner,
// for the caller, who can read the order, to decide whether owner owns it (Actor.Permit), and to
// answer err when not: a party role's actor token, whose party reads the orders it owns, and a
// courier's tracking token for the order, which reads it only while the order is that courier's.
// owner is the zero Actor for every other answer. The errors say nothing about the order itself.
// A tracking token that names its order's creation (Tracking.Created) is returned in tr: the
// caller reads the order, and answers ErrAnotherOrder unless tr.Reads it.
func (a *Authority) AuthorizeWatch(token, orderID string) (owner Actor, tr Tracking, err error) {
	if token == "" {
		return Actor{}, Tracking{}, NoToken("a tracking token is required")
	}
	tr, terr := a.ParseTracking(token)
	switch {
	case terr == nil && tr.OrderID != orderID:
		return Actor{}, Tracking{}, ErrAnotherOrder
	case terr == nil && tr.Courier != "":
		return Actor{Role: RoleCourier, Sub: tr.Courier}, tr, ordercast.Errorf(ordercast.EForbidden, "a courier's tracking token reads the order only while it is its courier's")
	case terr == nil:
		return Actor{}, tr, nil
	}
	actor, err := a.ParseActor(token)
	switch {
	case err != nil && (errors.Is(terr, jwt.ErrTokenInvalidAudience) || errors.Is(terr, jwt.ErrTokenRequiredClaimMissing) ||
		errors.Is(terr, jwt.ErrTokenSignatureInvalid)):
		// Not a tracking token (no audience, or another's; a missing exp is refused by both
		// alike; an algorithm other than HS256, as an identity provider's RS256/ES256 token
		// has, or a signature no secret verifies, which the actor parse says alike): why it
		// is no actor token either.
		return Actor{}, Tracking{}, err
	case err != nil:
		return Actor{}, Tracking{}, terr
	case actor.Role.MayWatchAny():
		return Actor{}, Tracking{}, nil
	}
	// What a party role is told for any order not its own, an unknown one included.
	return actor, Tracking{}, ordercast.Errorf(ordercast.EForbidden, "role %s may read only the orders whose %s is its token's sub: this one does not exist or is another's (both are answered alike)", actor.Role, permissions[actor.Role].party.Field())
}

// AuthorizeWatchAll decides whether token lets its holder watch every order: an admin, system or support
// actor token.
func (a *Authority) AuthorizeWatchAll(token string) error {
	if token == "" {
		return NoToken("an admin, system or support token is required")
	}
	if _, err := a.ParseTracking(token); err == nil {
		return ordercast.Errorf(ordercast.EForbidden, "a tracking token watches its one order only (/v1/orders/{id}/stream); watching every order needs an admin, system or support token")
	}
	actor, err := a.ParseActor(token)
	if err != nil {
		return err
	}
	if !actor.Role.MayWatchAny() {
		return ordercast.Errorf(ordercast.EForbidden, "role %s may not watch every order: that needs an admin, system or support token", actor.Role)
	}
	return nil
}

// options are the checks every token gets: exp required, nbf and iat honoured, with leeway; and
// base64url read strictly, so that one token has one spelling: read loosely, the spare bits of a
// signature's last character let four strings (sixteen for RS256) pass as the same token, each a
// cache entry of its own, and each past any list of refused tokens keyed by the string.
func (a *Authority) options(extra ...jwt.ParserOption) []jwt.ParserOption {
	return append([]jwt.ParserOption{
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(a.Leeway),
		jwt.WithTimeFunc(a.now),
	}, extra...)
}

// tokenError turns a verification failure into a domain error that says what is wrong with the
// token in general terms: what its holder can see for itself (it is not a JWT, it has expired),
// or that its signature does not verify, the commonest mistake (a token signed with another
// --secret), never more of why.
//
// The verification's error stays in the chain (errors.Is), for the callers that try a token as
// one kind and then the other; a client reads only the first message.
func tokenError(token string, err error) error {
	var refusal *ordercast.Error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed) && strings.Count(token, ".") == 2:
		refusal = ordercast.Errorf(ordercast.EUnauthenticated, "token is malformed: its header or claims do not decode (each claim of its type: sub a string, exp, nbf and iat numbers)")
	case errors.Is(err, jwt.ErrTokenMalformed):
		refusal = ordercast.Errorf(ordercast.EUnauthenticated, "token is malformed: a token is three base64url parts joined by dots")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		refusal = ordercast.Errorf(ordercast.EUnauthenticated, "token has no exp: every token must say when it expires")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		refusal = ordercast.Errorf(ordercast.EUnauthenticated, "token signature does not verify with this server's keys (signed with another secret, or changed since)")
	case errors.Is(err, jwt.ErrTokenExpired):
		refusal = ordercast.Errorf(ordercast.ETokenExpired, "token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		refusal = ordercast.Errorf(ordercast.EUnauthenticated, "token is not valid yet")
	default:
		refusal = ordercast.Errorf(ordercast.EUnauthenticated, "invalid token")
	}
	return fmt.Errorf("%w: %w", refusal, err)
}
