package ordercast

import "testing"

// TestCourierBoundKeepsRoomForStatuses: the room maxCourierVersion keeps under MaxOrderVersion
// is the longest run of status changes the state machine allows after placed, so an order whose
// courier changes filled its history can still be delivered.
func TestCourierBoundKeepsRoomForStatuses(t *testing.T) {
	var longest func(from Status) int
	longest = func(from Status) int {
		n := 0
		for _, to := range Statuses {
			if to != from && CheckTransition(from, to) == nil {
				n = max(n, 1+longest(to))
			}
		}
		return n
	}
	if got := longest(StatusPlaced); got != laterStatusEvents {
		t.Errorf("the longest run of status changes after placed is %d, laterStatusEvents %d", got, laterStatusEvents)
	}
	if got := maxCourierVersion + 1 + laterStatusEvents; got != MaxOrderVersion {
		t.Errorf("a courier change at maxCourierVersion and every status after it reach version %d, want %d", got, MaxOrderVersion)
	}
}
