package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--transport", "pigeon"}, "unknown transport"},
		{[]string{"--nodes", "3"}, "postgres"},
		{[]string{"--watchers", "0"}, "--watchers"},
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--rate", "NaN"}, "--rate"},
		{[]string{"--rate", "+Inf"}, "--rate"},
		{[]string{"--writers", "-1"}, "--writers"},
		{[]string{"--find-max", "--p99-bound", "-1ms"}, "--p99-bound"},
		{[]string{"--restaurants", "2", "--per-restaurant", "-1"}, "--per-restaurant"},
		{[]string{"--restaurants", "2", "--transport", "ws"}, "SSE only"},
		{[]string{"--couriers", "2", "--transport", "ws"}, "SSE only"},
		{[]string{"--couriers", "2", "--find-max"}, "--find-max"},
		{[]string{"--couriers", "2", "--posters", "-1"}, "--posters"},
		{[]string{"--couriers", "2", "--post-batch", "-1"}, "--post-batch"},
		{[]string{"--couriers", "2", "--post-batch", "1001"}, "--post-batch"},
		{[]string{"--post-batch", "100"}, "--couriers"},
		{[]string{"--write-batch", "-1"}, "--write-batch"},
		{[]string{"--write-batch", "1001"}, "--write-batch"},
		{[]string{"--couriers", "2", "--write-batch", "100"}, "--rate"},
		{[]string{"--write-batch", "100", "--writes-by-order"}, "--writes-by-order"},
		{[]string{"--couriers", "2", "--url", "http://127.0.0.1:1", "--location-interval", "0s"}, "--location-interval"},
		{[]string{"--metrics-url", "http://127.0.0.1:1/metrics"}, "--metrics-url goes with --url"},
		{[]string{"--url", "http://127.0.0.1:1,http://127.0.0.1:2", "--metrics-url", "http://127.0.0.1:3/metrics"}, "one URL for each"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		err := run(context.Background(), append([]string{"bench"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
}

// TestBenchAndCheckIgnoreORDERCAST_DB: ORDERCAST_DB names the node's own database; a bench or a
// checker run where it is set (a node's shell, its container) must not take it for theirs.
func TestBenchAndCheckIgnoreORDERCAST_DB(t *testing.T) {
	t.Setenv("ORDERCAST_DB", "postgres://postgres@127.0.0.1:1/production")
	err := run(context.Background(), []string{"bench", "--nodes", "3"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--nodes above 1 needs --db") {
		t.Errorf("bench --nodes 3 with ORDERCAST_DB set: %v, want the error that --db is missing", err)
	}
	for _, cmd := range []string{"bench", "check"} {
		var out strings.Builder
		if err := run(context.Background(), []string{cmd, "--help"}, &out, io.Discard); err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "(command line only") || strings.Contains(out.String(), "ORDERCAST_DB") {
			t.Errorf("%s --help does not say that --db is taken from the command line only:\n%s", cmd, out.String())
		}
	}
}
