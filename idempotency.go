package ordercast

import (
	"context"
	"time"
)

// Idempotency asks a store to record, in the same transaction as a change, the answer given to a
// request that carries an idempotency key, so that a client whose request timed out can send it
// again and get the first answer, from any node, instead of a second change. Only successful
// answers are recorded: a refused request leaves nothing, and its retry is judged afresh.
type Idempotency struct {
	// Scope is who asked and where (the caller's identity and the route): keys of different
	// scopes never meet.
	Scope string
	Key   string
	// Fingerprint identifies the request; the same key with another fingerprint is refused with
	// EIdempotencyKeyReused.
	Fingerprint string
	// Expires is when the record may be forgotten and the key used afresh.
	Expires time.Time
	// Render makes the answer to record from the change's result. The store's batch calls it
	// inside the transaction (see Batch.Apply), so an error there fails that write alone: it
	// commits nothing, neither its change nor its key.
	Render func(Result) (Answer, error)
}

// Result is what a change did: the order after it, the event it appended (or the latest one),
// and whether it created the order or changed its status.
type Result struct {
	Order   Order
	Event   Event
	Created bool
	Changed bool
}

// Answer is a recorded answer to an idempotent request.
type Answer struct {
	Status      int
	Body        []byte
	Fingerprint string
	Expires     time.Time
}

// UnchangedAnswerTTL bounds how long the answer to a keyed write that changed nothing (a repeated
// create, a status the order already has) is kept. Such a write is
// safe to repeat without a key, and a retry judged afresh applies nothing either; but kept as
// long as a change's answer (Idempotency.Expires, a day by default), each one sent with a new key
// stored an order's worth of answer, so a restaurant repeating a status it may set, or a courier
// one on an order it delivered, could fill the database at its write rate. Ten minutes holds the
// retries of a request that timed out, and bounds such answers to what ten minutes of the write
// rate sends.
const UnchangedAnswerTTL = 10 * time.Minute

// ExpiredKeysToPurge is how many expired idempotency records a batch that records answers
// deletes, both stores alike: two for each answer it records (each answer expires in its turn,
// so the purge outruns the records however large batches grow), and a few more to work off a
// backlog, few enough to cost a batch next to nothing.
func ExpiredKeysToPurge(answers int) int { return 16 + 2*answers }

// MaxIdempotencyKeyLength bounds a client's idempotency key.
const MaxIdempotencyKeyLength = 255

// ValidateIdempotencyKey checks a client's key: 1–255 visible ASCII characters.
func ValidateIdempotencyKey(k string) error {
	if k == "" || len(k) > MaxIdempotencyKeyLength {
		return Errorf(EInvalid, "Idempotency-Key must be 1 to %d characters", MaxIdempotencyKeyLength)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return Errorf(EInvalid, "Idempotency-Key may contain only visible ASCII characters")
		}
	}
	return nil
}

// IdempotencyStore is the part of a Store that finds recorded answers.
type IdempotencyStore interface {
	// IdempotentAnswer returns the answer recorded for key in scope that has not expired at now,
	// or ENotFound.
	IdempotentAnswer(ctx context.Context, scope, key string, now time.Time) (Answer, error)
}
