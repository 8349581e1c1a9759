package server

import (
	"reflect"
	"slices"
	"testing"

	"github.com/ordercast/ordercast/api"
)

// TestCourierBodyHasTheWireFields: the courier route decodes its body into courierBody, which
// spells out api.SetCourierRequest's fields rather than embed them. A field added to the wire
// type and not here would be refused as unknown.
func TestCourierBodyHasTheWireFields(t *testing.T) {
	tags := func(t reflect.Type) []string {
		var out []string
		for f := range t.Fields() {
			out = append(out, f.Tag.Get("json"))
		}
		slices.Sort(out)
		return out
	}
	if got, want := tags(reflect.TypeFor[courierBody]()), tags(reflect.TypeFor[api.SetCourierRequest]()); !slices.Equal(got, want) {
		t.Errorf("courierBody's fields %q, api.SetCourierRequest's %q", got, want)
	}
}
