package client_test

import (
	"os"
	"testing"
)

// TestMain stops the servers the examples started, after every test and example has run.
func TestMain(m *testing.M) {
	code := m.Run()
	exampleMu.Lock()
	for _, stop := range exampleClosers {
		stop()
	}
	exampleMu.Unlock()
	os.Exit(code)
}
