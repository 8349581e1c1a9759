package stream

import (
	"strconv"
	"testing"
)

// TestRecentIDsKeepsTheLastAdded: the set of ended orders an all-orders stream remembers is
// bounded: past goneMemory ids, the oldest goes for each new one, and an id added again neither
// counts twice nor pushes another out.
func TestRecentIDsKeepsTheLastAdded(t *testing.T) {
	var r recentIDs
	if r.has("o-0") {
		t.Fatal("the empty set has o-0")
	}
	for i := range goneMemory {
		r.add("o-" + strconv.Itoa(i))
	}
	r.add("o-5") // again: nothing moves
	r.add("o-new")
	if r.has("o-0") {
		t.Error("o-0, the oldest, is still held past the bound")
	}
	for _, id := range []string{"o-1", "o-5", "o-" + strconv.Itoa(goneMemory-1), "o-new"} {
		if !r.has(id) {
			t.Errorf("%s is gone, want it held", id)
		}
	}
	if len(r.set) != goneMemory {
		t.Errorf("%d ids held, want %d", len(r.set), goneMemory)
	}
}
