package column_test

import (
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/column"
)

// TestPointRoundTrip: a point comes back as it was kept, no point as none, and a column that is
// not a point is an error, not a point at 0,0.
func TestPointRoundTrip(t *testing.T) {
	p := &ordercast.Point{Lat: 52.520008, Lng: -13.404954}
	kept, ok := column.Point(p).(string)
	if !ok {
		t.Fatalf("Point(%v) = %#v, want a string", p, column.Point(p))
	}
	got, err := column.ParsePoint(&kept)
	if err != nil || got == nil || *got != *p {
		t.Errorf("ParsePoint(%q) = %v, %v; want %v", kept, got, err, p)
	}
	if v := column.Point(nil); v != nil {
		t.Errorf("Point(nil) = %#v, want nil (NULL)", v)
	}
	empty := ""
	for _, s := range []*string{nil, &empty} {
		if got, err := column.ParsePoint(s); got != nil || err != nil {
			t.Errorf("ParsePoint(%v) = %v, %v; want no point", s, got, err)
		}
	}
	bad := "[1,2]"
	if got, err := column.ParsePoint(&bad); err == nil {
		t.Errorf("ParsePoint(%q) = %v, want an error", bad, got)
	}
}

// TestDetailsServedAsStoredOrEmpty: stored details within the bound are served as they are;
// ones that are not JSON, or larger than an order may carry, are served as {}.
func TestDetailsServedAsStoredOrEmpty(t *testing.T) {
	for _, c := range []struct{ stored, want string }{
		{`{"items":2}`, `{"items":2}`},
		{`{"items":`, `{}`},
		{`{"note":"` + strings.Repeat("x", ordercast.MaxDetailsBytes) + `"}`, `{}`},
	} {
		if got := string(column.Details([]byte(c.stored))); got != c.want {
			t.Errorf("Details(%.20q…) = %.20q…, want %q", c.stored, got, c.want)
		}
	}
}

// TestOf: each column of a list is named as of the alias, however the list is spaced.
func TestOf(t *testing.T) {
	if got, want := column.Of("o", "id, status,version,\n\tdetails"), "o.id, o.status, o.version, o.details"; got != want {
		t.Errorf("Of = %q, want %q", got, want)
	}
}
