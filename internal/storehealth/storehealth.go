// Package storehealth tracks whether a store's database is available, so that each store
// adapter reports an outage the same way: one domain error (ordercast.EUnavailable, which the
// HTTP layer answers with 503 and Retry-After), one log line when the outage starts and one when
// it ends, however many requests fail in between, and a short reason for /readyz.
package storehealth

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ordercast/ordercast"
)

// Tracker remembers whether the database is away and why. The zero value is ready to use, with
// the database assumed available.
type Tracker struct {
	// Logger receives the transition lines; nil discards them.
	Logger *slog.Logger
	// Classify names why err means the database is away ("unreachable", "read-only", …), or
	// returns "" for an error that says nothing about availability. Each store knows its
	// driver's errors; nil classifies nothing as an outage.
	Classify func(err error) string
	// Full is the reason Classify gives a full disk, an outage only ProvesWrite ends: the
	// database answers, and grants a write's locks, with no room to write, so a ping or a
	// commit that wrote nothing passing ended it, and each next write that failed began it
	// again: the log said "available again" every few seconds, and an alert on the outage's
	// length never fired (the resource-exhaustion review). "" has no such reason.
	Full string

	mu     sync.Mutex
	reason string // "" while available
	since  time.Time
	told   []string // the reasons this outage has been logged with
}

// Unavailable returns the domain error for a database that is away for reason ("unreachable",
// "read-only", …), wrapping cause so that logs and errors.Is still see the driver's error.
func Unavailable(reason string, cause error) error {
	return fmt.Errorf("%w: %w", ordercast.Errorf(ordercast.EUnavailable, "the database is %s; retry shortly", reason), cause)
}

// ErrMisconfigured is why a store could not open a database that refuses the node as it is
// configured: a role or password it does not accept, a database that does not exist, a privilege
// missing, a file path that cannot hold a database. The database (or the file system) answered,
// and no restart changes its answer (the node exits ExitConfig, which its unit does not restart;
// it was restarted every two seconds, failing the same way each time). An outage (Unavailable) is
// the other kind: a restart, or a wait, may well succeed.
var ErrMisconfigured = errors.New("refused as configured; no restart changes that")

// Misconfigured wraps err, a refusal of the store's settings, as ErrMisconfigured.
func Misconfigured(err error) error { return misconfiguredError{err} }

type misconfiguredError struct{ error }

func (e misconfiguredError) Unwrap() error        { return e.error }
func (e misconfiguredError) Is(target error) bool { return target == ErrMisconfigured }

// Proof is what a request that succeeded shows of the database.
type Proof int

// The proofs, weakest first.
const (
	// ProvesNothing: a read, which a database that cannot write (read-only, locked, full)
	// answers all the same. It ends no outage.
	ProvesNothing Proof = iota
	// ProvesAnswer: the database answered and granted a write's locks (a ping that takes them,
	// a commit that wrote nothing). It ends any outage but a full disk's.
	ProvesAnswer
	// ProvesWrite: a commit that wrote, or a store's own judgement that the disk has room. It
	// ends any outage.
	ProvesWrite
)

// CommitProof is the proof of a commit that passed: ProvesWrite when it wrote, ProvesAnswer when
// it had nothing to write.
func CommitProof(wrote bool) Proof {
	if wrote {
		return ProvesWrite
	}
	return ProvesAnswer
}

// Check translates err into the domain's unavailable error when Classify says the database is
// away, and keeps the outage state: a nil err from a request that proves the database available
// (proof; see OK) ends an outage.
func (t *Tracker) Check(err error, proof Proof) error {
	if err == nil {
		t.OK(proof)
		return nil
	}
	if t.Classify == nil {
		return err
	}
	reason := t.Classify(err)
	if reason == "" {
		return err
	}
	t.Fail(reason, err)
	return Unavailable(reason, err)
}

// Fail records that the database is away for reason; the first failure of an outage is logged,
// and the first of each other reason the outage is found to have (a write that timed out, then a
// probe that finds the tables locked): the line that ends it names its last reason, which the
// line that began it may not.
func (t *Tracker) Fail(reason string, cause error) {
	t.mu.Lock()
	first := t.reason == ""
	if first {
		t.since, t.told = time.Now(), t.told[:0]
	}
	was := t.reason
	t.reason = reason
	tell := !slices.Contains(t.told, reason)
	if tell {
		t.told = append(t.told, reason)
	}
	t.mu.Unlock()
	switch {
	case t.Logger == nil || !tell:
	case first:
		t.Logger.Warn("database unavailable; requests get 503 until it is back", "reason", reason, "err", cause)
	default:
		t.Logger.Warn("database still unavailable, for another reason", "reason", reason, "was", was, "err", cause)
	}
}

// OK records that the database answered a request that showed proof of it: ProvesAnswer ends
// an outage but a full disk's, ProvesWrite any. The end of an outage is logged with its length.
func (t *Tracker) OK(proof Proof) {
	t.mu.Lock()
	if t.reason == "" || proof == ProvesNothing || proof == ProvesAnswer && t.reason == t.Full && t.Full != "" {
		t.mu.Unlock()
		return
	}
	reason, since := t.reason, t.since
	t.reason = ""
	t.mu.Unlock()
	if t.Logger != nil {
		t.Logger.Info("database available again", "was", reason, "outage", time.Since(since).Round(time.Millisecond))
	}
}

// Reason is why the database is away, or "" when it is available.
func (t *Tracker) Reason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reason
}
