package postgres

import "github.com/ordercast/ordercast"

// NewPublishing returns a Store that also hands each committed event to pub right after its
// commit, for the conformance suite, which checks announcements synchronously.
func NewPublishing(url string, pub ordercast.Publisher) *Store {
	s := New(url)
	s.publisher = pub
	return s
}
