package ordercast

import (
	"slices"
	"time"
)

// PurgeMargin is how far past the end of the last order a purge deletes that the purge reads a
// party's log. Its entries are in commit order, and every entry of an order comes at or before
// its end; an entry of an order created later than that end plus the margin was committed
// after all of them, however far the stores' clocks (PostgreSQL's, as each node reckons it) and
// the commits of a batch stamped before its COMMIT are apart.
const PurgeMargin = 10 * time.Minute

// PurgeJudge judges an entry of a party's log, read in position order by a purge whose orders
// all ended at or before lastEnd: drop it when its order is gone (deleted by the purge, so
// exists is false), stop reading at one of an order created after lastEnd + PurgeMargin (none
// further on can be a purged order's), keep any other (an order still kept, in progress or
// ended later).
func PurgeJudge(exists bool, created, lastEnd time.Time) (drop, stop bool) {
	switch {
	case !exists:
		return true, false
	case created.After(lastEnd.Add(PurgeMargin)):
		return false, true
	}
	return false, false
}

// PurgeParties returns the keys, sorted and without repeats, of the parties whose logs hold
// entries of the orders a purge deletes: their restaurants and customers, and every courier they
// were ever assigned to (from their courier events). Every party an event of theirs was logged
// to (LogParties) is one of them. Empty ids are no party.
func PurgeParties(restaurants, customers, couriers []string) []string {
	var keys []string
	for _, g := range []struct {
		kind PartyKind
		ids  []string
	}{{PartyRestaurant, restaurants}, {PartyCustomer, customers}, {PartyCourier, couriers}} {
		for _, id := range g.ids {
			if id != "" {
				keys = append(keys, Party{g.kind, id}.Key())
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
