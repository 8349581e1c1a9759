package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestCheckRejectsBadFlags: bad flags are refused before anything is started.
func TestCheckRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--watchers", "0"}, "watchers"},
		{[]string{"--watchers", "50000"}, "watchers"},
		{[]string{"--rate", "0"}, "rate"},
		{[]string{"--faults", "meteor"}, "unknown fault kind"},
		{[]string{"--duration", "0", "--sqlite-duration", "0"}, "nothing to run"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		err := run(context.Background(), append([]string{"check"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
	if err := run(context.Background(), []string{"check", "--help"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}
