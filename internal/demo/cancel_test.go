package demo

import (
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
)

// TestCancelNoteFitsTheStage: an order that has left the kitchen is never cancelled because the
// restaurant is out of an ingredient, and every status that can be cancelled has a reason.
func TestCancelNoteFitsTheStage(t *testing.T) {
	for _, st := range []ordercast.Status{
		ordercast.StatusPlaced, ordercast.StatusConfirmed, ordercast.StatusPreparing,
		ordercast.StatusReady, ordercast.StatusOutForDelivery,
	} {
		for range 200 {
			note := cancelNote(st)
			if note == "" || note == "cancelled" {
				t.Fatalf("%s: no reason given", st)
			}
			late := st == ordercast.StatusReady || st == ordercast.StatusOutForDelivery
			if late && strings.Contains(note, "ingredient") {
				t.Fatalf("%s cancelled because %q", st, note)
			}
		}
	}
}
