package postgres

import (
	"testing"
	"time"
)

// TestAConnectTimeoutOfTheURLIsTheOperatorsWord: the pool's connections are bounded by
// ConnectTimeout unless the URL sets connect_timeout, whose 0 (libpq's "wait for ever") is kept
// as much as another value, or the environment sets PGCONNECT_TIMEOUT.
func TestAConnectTimeoutOfTheURLIsTheOperatorsWord(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "") // none, to pgx as to libpq, whatever the test's environment says
	const url = "postgres://u@db.example/ordercast?sslmode=disable"
	for _, tc := range []struct {
		url, env string
		want     time.Duration
	}{
		{url, "", 7 * time.Second},
		{url + "&connect_timeout=3", "", 3 * time.Second},
		{url + "&connect_timeout=0", "", 0},
		{"host=db.example user=u dbname=ordercast connect_timeout=0", "", 0},
		{url, "4", 4 * time.Second},
		{url, "0", 0},
	} {
		t.Setenv("PGCONNECT_TIMEOUT", tc.env)
		s := New(tc.url)
		s.ConnectTimeout = 7 * time.Second
		s.applyDefaults()
		cfg, err := s.poolConfig()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.ConnConfig.ConnectTimeout; got != tc.want {
			t.Errorf("%s, PGCONNECT_TIMEOUT %q: connections bounded by %v, want %v", tc.url, tc.env, got, tc.want)
		}
	}
}
