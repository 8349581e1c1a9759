package postgres

import "github.com/ordercast/ordercast"

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

// Paths returns how many batches s committed in one round trip, how many of its guesses failed
// (each then committed on the locking path), and how many it committed on the locking path.
func Paths(s *Store) (oneTrip, wrong, locking int64) {
	return s.paths.oneTrip.Load(), s.paths.wrong.Load(), s.paths.locking.Load()
}
