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

// TestACourierChangeBeforeAStage: a change with Before gives the order a courier, or takes its
// courier away, only while it has not reached that stage; one without Before (dispatch's) does
// both at any stage before the end.
func TestACourierChangeBeforeAStage(t *testing.T) {
	for _, tc := range []struct {
		status  Status
		courier string
		before  Status
		ok      bool
	}{
		{StatusReady, "c-2", StatusOutForDelivery, true},
		{StatusOutForDelivery, "c-2", StatusOutForDelivery, false},
		{StatusReady, "", StatusOutForDelivery, true},
		{StatusOutForDelivery, "", StatusOutForDelivery, false},
		{StatusOutForDelivery, "c-2", "", true},
		{StatusOutForDelivery, "", "", true},
		{StatusDelivered, "c-2", "", false},
	} {
		o := Order{ID: "o-1", Status: tc.status, Version: 4, CourierID: "c-1"}
		changed, err := CourierChange{OrderID: "o-1", CourierID: tc.courier, Before: tc.before}.Apply(o)
		if ok := err == nil && changed; ok != tc.ok {
			t.Errorf("courier %q on an order %s, before %q: changed %v, err %v; want allowed %v", tc.courier, tc.status, tc.before, changed, err, tc.ok)
		}
		if err != nil && ErrorCode(err) != EInvalidTransition {
			t.Errorf("courier %q on an order %s, before %q: %v; want %s", tc.courier, tc.status, tc.before, err, EInvalidTransition)
		}
	}
}

// TestACourierChangeAtAnExpectedVersion: with ExpectedVersion an assignment applies only at that
// version, so that a retry whose first attempt was answered too late cannot undo a
// reassignment made meanwhile; the same courier again stays a quiet repeat, as a status
// change's repeat does, whatever version it names.
func TestACourierChangeAtAnExpectedVersion(t *testing.T) {
	o := Order{ID: "o-1", Status: StatusReady, Version: 5, CourierID: "ama"}
	for _, tc := range []struct {
		courier  string
		expected int64
		changed  bool
		code     string
	}{
		{"kofi", 5, true, ""},
		{"kofi", 0, true, ""},
		{"kofi", 4, false, EVersionConflict},
		{"kofi", 6, false, EVersionConflict},
		{"ama", 4, false, ""},
		{"", 4, false, EVersionConflict},
	} {
		c := CourierChange{OrderID: "o-1", CourierID: tc.courier, ExpectedVersion: tc.expected}
		changed, err := c.Apply(o)
		if changed != tc.changed || ErrorCode(err) != tc.code && !(tc.code == "" && err == nil) {
			t.Errorf("courier %q at version %d: changed %v, err %v; want changed %v, code %q", tc.courier, tc.expected, changed, err, tc.changed, tc.code)
		}
	}
	if err := (CourierChange{OrderID: "o-1", ExpectedVersion: -1}).Validate(); ErrorCode(err) != EInvalid {
		t.Errorf("a negative expected version: %v, want %s", err, EInvalid)
	}
}
