package main_test

import (
	"time"

	"github.com/ordercast/ordercast/auth"
)

// testSecret is the HMAC secret the cluster's nodes run with.
const testSecret = "cluster-secret-0123456789abcdef0123456789"

// adminToken is an admin actor token for testSecret, for the tests' writes.
func adminToken() string {
	a, err := auth.New([]byte(testSecret))
	if err != nil {
		panic(err)
	}
	tok, err := a.SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "tests"}, time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}
