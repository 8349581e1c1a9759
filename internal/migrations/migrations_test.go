package migrations_test

import (
	"testing"
	"testing/fstest"

	"github.com/ordercast/ordercast/internal/migrations"
)

func TestLoadOrdersByVersion(t *testing.T) {
	fsys := fstest.MapFS{
		"m/010_later.up.sql": {Data: []byte("B")},
		"m/002_first.up.sql": {Data: []byte("A")},
		"m/README":           {Data: []byte("ignored")},
	}
	ms, err := migrations.Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	want := []migrations.Migration{{2, "first", "A"}, {10, "later", "B"}}
	if len(ms) != len(want) || ms[0] != want[0] || ms[1] != want[1] {
		t.Fatalf("got %+v, want %+v", ms, want)
	}
}

func TestLoadRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number":  {"m/init.up.sql": {}},
		"no name":    {"m/001.up.sql": {}},
		"zero":       {"m/000_x.up.sql": {}},
		"duplicate":  {"m/001_a.up.sql": {}, "m/1_b.up.sql": {}},
		"not number": {"m/one_x.up.sql": {}},
	} {
		if _, err := migrations.Load(fsys, "m"); err == nil {
			t.Errorf("%s: Load succeeded, want an error", name)
		}
	}
}
