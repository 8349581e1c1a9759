package main_test

import "github.com/ordercast/ordercast/internal/testutil"

// testSecret is the HMAC secret the cluster's nodes run with.
const testSecret = testutil.Secret

// adminToken is an admin actor token for testSecret, for the tests' writes.
func adminToken() string { return testutil.AdminToken(testSecret) }
