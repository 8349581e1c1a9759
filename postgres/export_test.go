package postgres

import (
	"context"
	"time"

	"github.com/ordercast/ordercast"
)

// NewPublishing returns a Store that also hands each committed event to pub right after its
// commit, for the conformance suite, which checks announcements synchronously.
func NewPublishing(url string, pub ordercast.Publisher) *Store {
	s := New(url)
	s.publisher = pub
	return s
}

// HoldBeforeCommit makes every change of s call hold, after it wrote everything and before it
// commits.
func HoldBeforeCommit(s *Store, hold func(ordercast.Event)) { s.beforeCommit = hold }

// FailAttempts makes attempt n of every batch of s fail with fail(ctx, n), when not nil, before
// anything is sent; ctx is the attempt's.
func FailAttempts(s *Store, fail func(ctx context.Context, n int) error) { s.failAttempt = fail }

// ResetClock makes s reckon the database's clock from one reading only, ahead of its own by
// ahead, as if that were all it had read.
func ResetClock(s *Store, ahead time.Duration) {
	s.clock = dbClock{}
	now := time.Now()
	s.clock.read(now.Add(ahead), now, now)
}

// Skew returns how far ahead of this node's clock s reckons the database's.
func Skew(s *Store) time.Duration { return time.Duration(s.clock.skew.Load()) }

// FailedBatches returns how many of b's batches have failed to send.
func FailedBatches(b *LocationBus) int64 { return b.failures.Load() }

// DecodePositions reads a notice on PositionsChannel as a node other than its sender does.
func DecodePositions(payload string) ([]ordercast.LocationUpdate, error) {
	return decodePositions(payload, "")
}

// DecodeLegacyLocations reads a notice on LocationChannel, as a node of an older version does.
func DecodeLegacyLocations(payload string) ([]ordercast.LocationUpdate, error) {
	return decodeLocations(payload, "")
}

// SendPositions sends us as one batch of b, at once, as its ticker would.
func SendPositions(ctx context.Context, b *LocationBus, us []ordercast.LocationUpdate) error {
	batch := make(map[string]ordercast.LocationUpdate, len(us))
	for _, u := range us {
		batch[u.OrderID] = u
	}
	return b.send(ctx, batch)
}

// PurgePositions runs b's purge of old positions once, at once, as its ticker would.
func PurgePositions(ctx context.Context, b *LocationBus) error { return b.purge(ctx) }

// ListOrdersQuery is ListOrders' read of q, for its query plan.
func ListOrdersQuery(q ordercast.OrderQuery) (string, []any) { return listOrdersQuery(q) }

// ActiveOrdersQuery is ActiveOrders' read, for its query plan.
const ActiveOrdersQuery = activeOrdersQuery

// PurgeExpiredKeys is the purge of expired idempotency records each batch that records answers
// runs, for its query plan and its locks.
const PurgeExpiredKeys = purgeExpiredKeys

// Held is s with the hooks by which a test chooses a batch of its writer
// (storetest.BatchHolder), which only tests have: the conformance suite gets a Held.
type Held struct{ *Store }

// HoldWrites makes the writer commit nothing until n writes are queued, then commit them in one
// batch; WaitQueued(k) returns once k writes are queued.
func (h Held) HoldWrites(n int) { h.batches.Hold(n) }

// WaitQueued blocks until n writes have been queued since HoldWrites (or the writer closes);
// the writer may already have taken them.
func (h Held) WaitQueued(n int) { h.batches.WaitQueued(n) }

// SetResetEvery sets the least time between two resets of s's pool by Ping.
func SetResetEvery(s *Store, d time.Duration) { s.resetEvery = d }

// ConnectError is how Open classifies err, a connection it could not make.
func ConnectError(err error) error { return connectError(err) }

// Leashed reports whether s waits less for the database than its bounds say: an attempt ran out
// of its bound, and none has been answered since (see leash).
func Leashed(s *Store) bool { return s.leash.on.Load() }

// MigrationLockKey is the advisory lock a node holds while it checks or migrates the schema.
const MigrationLockKey = migrationLockKey

// HoldConnection takes one connection of s's pool until release is called.
func HoldConnection(t interface{ Fatal(...any) }, s *Store) (release func()) {
	c, err := s.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.Release
}
