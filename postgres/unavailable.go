package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// errNotAnswering is a batch or a read that got no answer within Store.BatchTimeout or
// Store.ReadTimeout: the database is there as far as the network says, but silent.
var errNotAnswering = errors.New("postgres: the database is not answering")

// unavailableReason classifies a driver error as the database being away ("" when it is not):
// a connection that cannot be made or was lost, a server shutting down or starting up, or a
// read-only server (a standby, or default_transaction_read_only). A refused password or a
// missing database is configuration, not an outage, and stays an error of its own.
func unavailableReason(err error) string {
	if errors.Is(err, errNotAnswering) {
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
		case c == "57P01", c == "57P02":
			return "shutting down"
		case c == "57P03":
			return "starting up"
		case strings.HasPrefix(c, "08"), c == "53300", c == "57P05",
			c == "55000" && strings.Contains(pgErr.Message, "not currently accepting connections"):
			return "unreachable"
		}
		// Any other answer from the server means it is there.
		var ce *pgconn.ConnectError
		if !errors.As(err, &ce) {
			return ""
		}
		if strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000" {
			return "" // bad credentials or no such database: configuration
		}
		return "unreachable"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "unreachable"
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
	}
	return false
}

// health translates err into the domain's unavailable error when the database is away, and
// keeps the store's outage state (storehealth.Tracker.Check).
func (s *Store) health(err error, proves bool) error { return s.tracker.Check(err, proves) }

// Unavailable is why the database is away, or "" when it answered the last write or ping.
func (s *Store) Unavailable() string { return s.tracker.Reason() }
