package testutil

import (
	"time"

	"github.com/ordercast/ordercast/auth"
)

// Secret is the HMAC secret test servers run with, long enough for `serve --secret`.
const Secret = "test-secret-0123456789abcdef0123456789"

// AdminToken is an admin actor token signed with secret, valid for an hour: for tests' writes.
func AdminToken(secret string) string {
	return ActorToken(secret, auth.Actor{Role: auth.RoleAdmin, Sub: "tests"})
}

// ActorToken is an actor token for a, signed with secret, valid for an hour.
func ActorToken(secret string, a auth.Actor) string {
	au, err := auth.New([]byte(secret))
	if err != nil {
		panic(err) // a test's constant secret: a programming error
	}
	tok, err := au.SignActor(a, time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}
