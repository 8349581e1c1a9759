package postgres

import (
	"fmt"
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

// TestTooManyConnectionsIsOutOfConnections: a server at max_connections (or a role's or
// database's CONNECTION LIMIT) refuses a new connection with too_many_connections (53300), and
// the node said the database was "unreachable": on-call looked at the network, not at who holds
// the connections. The reason, which the log and /readyz give, says "out of connections", when
// the refusal comes as it is or wrapped, as a failed connect wraps it.
func TestTooManyConnectionsIsOutOfConnections(t *testing.T) {
	refused := &pgconn.PgError{Severity: "FATAL", Code: "53300", Message: "sorry, too many clients already"}
	for _, err := range []error{refused, fmt.Errorf("postgres: connect: %w", refused)} {
		if got, want := unavailableReason(err), "out of connections"; got != want {
			t.Errorf("the reason of %v is %q, want %q", err, got, want)
		}
	}
}
