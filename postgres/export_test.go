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
