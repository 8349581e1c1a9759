package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordercast/ordercast/internal/storehealth"
)

// errNotAnswering is a batch or a read that got no answer within Store.BatchTimeout or
// Store.ReadTimeout: the database is there as far as the network says, but silent.
var errNotAnswering = errors.New("postgres: the database is not answering")

// errReadOnly is a ping that found the database taking no writes: a standby, or a database
// set default_transaction_read_only. Its reads succeed, so only asking says so.
var errReadOnly = errors.New("postgres: the database is read-only (a standby, or default_transaction_read_only)")

// errLocked is a ping that found a table the writes take locked by another session for longer
// than it waited: every write waits behind the lock.
var errLocked = errors.New("postgres: a table the writes take is locked by another session")

// unavailableReason classifies a driver error as the database being away ("" when it is not):
// a connection that cannot be made or was lost, a server shutting down or starting up, a
// read-only server (a standby, or default_transaction_read_only), or one out of disk, memory or
// connections. Each is answered 503 with Retry-After: a request worth sending again shortly, not
// a broken one. A refused password or a missing database is configuration at start (connectError),
// an outage to a node already running.
func unavailableReason(err error) string {
	switch {
	case errors.Is(err, errLocked): // before errNotAnswering: a wait the lock explains (health)
		return "locked"
	case errors.Is(err, errNotAnswering):
		return "not answering"
	case errors.Is(err, errReadOnly):
		return "read-only"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && errors.Is(err, context.DeadlineExceeded) {
		// A connection not made within its bound (Store.ConnectTimeout, or a starting node's
		// attempt): the server, or the route to it, did not answer, as a silent database does
		// not. Before the case below: this deadline is a bound on the database, not a caller
		// that gave up on its request.
		return "not answering"
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "" // the caller gave up; nothing is known of the database
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch c := pgErr.Code; {
		case c == "25006":
			return "read-only"
		case c == "57P01":
			// admin_shutdown: the server shutting down, and as well pg_terminate_backend of the
			// node's session (a DBA's, or a failover tool's), which on-call must not read as a
			// shutdown.
			return "shutting down, or ended the node's session (pg_terminate_backend)"
		case c == "57P02":
			return "shutting down"
		case c == "57P03":
			return "starting up"
		case c == "53100":
			return reasonDiskFull
		case c == "53200":
			return "out of memory"
		case c == "53300":
			// too_many_connections: max_connections (or the role's or database's CONNECTION
			// LIMIT) is reached, which the network and the server's health do not explain:
			// on-call must look at who holds the connections, not at the route to the server.
			return "out of connections"
		case strings.HasPrefix(c, "08"), c == "57P05",
			c == "55000" && strings.Contains(pgErr.Message, "not currently accepting connections"):
			return "unreachable"
		case strings.HasPrefix(c, "53"):
			return "out of resources"
		}
		// Any other answer from the server means it is there.
		if !errors.As(err, &ce) {
			return ""
		}
		if refusedSettings(err) != "" {
			// A new connection refused for the node's settings: the database dropped or renamed
			// under a running node, its role's password changed. A starting node exits on it
			// (connectError, which asks refusedSettings first); to a running one's requests it
			// is the database away, 503, not a 500 (a client integrator's review), and the
			// outage's log line carries the server's words.
			return "refusing this node's connections"
		}
		return "unreachable"
	}
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "unreachable"
	}
	return ""
}

// refusedSettings says what to do about err, a server's refusal of a new connection for the
// node's settings, which it would refuse again however often asked: a role or password it does
// not accept (class 28, pg_hba.conf's rules included), a database that does not exist (3D000),
// or a role without CONNECT on it (42501). It returns "" for any other error.
func refusedSettings(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return ""
	}
	switch c := pgErr.Code; {
	case c == "28P01":
		return "the server refuses the password: correct it in the URL (or the password file)"
	case strings.HasPrefix(c, "28"):
		return "the server refuses the role: correct the URL's user, create the role, or allow it in pg_hba.conf"
	case c == "3D000":
		return "there is no database of that name: correct the URL, or create it (CREATE DATABASE … OWNER <the URL's role>)"
	case c == "42501":
		return "the role may not connect to the database: GRANT CONNECT ON DATABASE … TO it"
	}
	return ""
}

// connectionLost reports whether err says that the connection it came on is gone while the
// database may well be there: the server ended its backend (a restart, a shutdown,
// pg_terminate_backend, idle_session_timeout), or the connection was cut. Another connection may
// succeed where it failed. A new connection that could not be made is no such error: trying
// another at once gains nothing.
func connectionLost(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return backendEnded(err) || strings.HasPrefix(pgErr.Code, "08")
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// backendEnded reports whether err is the FATAL with which the server ends a connection's
// backend. The backend answers in order and exits after it, so whatever it had not answered
// before it was never run.
func backendEnded(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "57P01", "57P02", "57P05": // admin shutdown or termination, crash shutdown, idle session timeout
		return true
	case "25P03": // idle_in_transaction_session_timeout: the node was silent mid-transaction
		return true
	}
	return false
}

// busyReason classifies a statement the server gave up on a time limit the operator set ("" when
// err is none): statement_timeout (a server too slow, or a statement too long) or lock_timeout (a
// lock held elsewhere for longer). The request is worth sending again shortly, as for a database
// away, but the database is there and answers other statements: this is no outage to log and
// end, or a lock held on one order would log an outage's start and end for every write to it.
// PostgreSQL logs each such statement itself (log_min_error_statement).
func busyReason(err error) string {
	if errors.Is(err, errPoolExhausted) {
		return "busy (every connection of the node's pool in use: pool_max_conns)"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57014":
			return "busy (a statement ran past statement_timeout)"
		case "55P03":
			return "busy (a lock wait ran past lock_timeout)"
		}
	}
	return ""
}

// reasonDiskFull is a database out of disk space (SQLSTATE 53100), an outage only a write ends
// (storehealth.Tracker.Full; Ping's probeDisk).
const reasonDiskFull = "out of disk space"

// health translates err into the domain's unavailable error when the database is away or busy,
// and keeps the store's outage state (storehealth.Tracker.Check).
func (s *Store) health(err error, proof storehealth.Proof) error {
	if err != nil && s.closed.Load() {
		return storehealth.Unavailable("closing", err)
	}
	if errors.Is(err, errNotAnswering) && s.tracker.Reason() == unavailableReason(errLocked) {
		// A wait ran out while a probe finds the tables every write takes locked: the lock is
		// why, and the client is told so, not that the database is silent.
		err = fmt.Errorf("%w: %w", errLocked, err)
	}
	if reason := busyReason(err); reason != "" {
		return storehealth.Unavailable(reason, err)
	}
	return s.tracker.Check(err, proof)
}

// Unavailable is why the database is away, or "" when it answered the last write or ping.
func (s *Store) Unavailable() string { return s.tracker.Reason() }
