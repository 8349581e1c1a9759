package ordercast_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
)

// FuzzMarksReadAsFields: Pos, Parties and All read any marks, malformed ones too, as the
// whitespace-separated fields of the string, each key=position (strings.Fields and strings.Cut),
// which is how they read before they scanned the string in place.
func FuzzMarksReadAsFields(f *testing.F) {
	for _, s := range []string{"", "restaurant:r-1=12 customer:u=3", "  a=1\tb=2\n", "courier:k=x", "=", "a=1=2",
		"a=1 a=2", "a=1\u00a0b=2", "a=1\u2003b=2", "a=\xff1 \xffb=2", "a=-3 b=+4 c=99999999999999999999"} {
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, s, key string) {
		m := ordercast.Marks(s)
		var keys []string
		var pos []int64
		var want int64
		found := false
		for _, entry := range strings.Fields(s) {
			k, v, _ := strings.Cut(entry, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			keys, pos = append(keys, k), append(pos, n)
			if k == key && !found {
				want, found = n, true
			}
		}
		if got := m.Pos(key); got != want {
			t.Errorf("Marks(%q).Pos(%q) = %d, want %d", s, key, got, want)
		}
		if got := m.Parties(); !reflect.DeepEqual(got, keys) {
			t.Errorf("Marks(%q).Parties() = %q, want %q", s, got, keys)
		}
		var gotKeys []string
		var gotPos []int64
		for k, n := range m.All() {
			gotKeys, gotPos = append(gotKeys, k), append(gotPos, n)
		}
		if !reflect.DeepEqual(gotKeys, keys) || !reflect.DeepEqual(gotPos, pos) {
			t.Errorf("Marks(%q).All() = %q %v, want %q %v", s, gotKeys, gotPos, keys, pos)
		}
	})
}
