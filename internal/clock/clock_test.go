package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleepWaitsItsTime(t *testing.T) {
	start := time.Now()
	if err := Sleep(t.Context(), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("Sleep returned after %s, want at least 20ms", waited)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sleep of an hour outlived its context by 10 s")
	}
}

func TestSleepOfNothingReportsAnEndedContext(t *testing.T) {
	if err := Sleep(t.Context(), 0); err != nil {
		t.Fatalf("Sleep(0) on a live context: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Sleep(ctx, -time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(-1s) on an ended context: %v, want context.Canceled", err)
	}
}
