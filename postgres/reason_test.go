package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestATerminatedSessionIsNotCalledAShutdown: pg_terminate_backend of the node's session ends it
// with the code of a server shutting down (57P01, admin_shutdown), and the node said the
// database was "shutting down": an on-call engineer went looking for a restart that was not
// there. The reason names both.
func TestATerminatedSessionIsNotCalledAShutdown(t *testing.T) {
	for code, want := range map[string]string{"57P01": "pg_terminate_backend", "57P02": "shutting down"} {
		if got := unavailableReason(&pgconn.PgError{Code: code}); !strings.Contains(got, want) {
			t.Errorf("the reason of %s is %q, want it to say %q", code, got, want)
		}
	}
}
