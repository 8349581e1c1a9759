package client

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// idleGuard cuts a watch's connection when nothing arrives on it for timeout while a call waits
// on it: a peer that died without closing, or a middlebox that dropped the connection, leaves a
// read blocked for ever, while a live server sends a heartbeat on an idle stream. It is one
// timer per connection, reset by each read that brings bytes: no goroutine and no allocation
// per line.
type idleGuard struct {
	timeout time.Duration
	timer   *time.Timer
	fired   atomic.Bool
}

// newIdleGuard starts a guard that calls cut (the connection's cancel) after timeout without a
// byte, or returns nil when timeout is negative (off). A nil guard does nothing.
func newIdleGuard(timeout time.Duration, cut context.CancelFunc) *idleGuard {
	if timeout < 0 {
		return nil
	}
	g := &idleGuard{timeout: timeout}
	g.timer = time.AfterFunc(timeout, func() {
		g.fired.Store(true)
		cut()
	})
	return g
}

// watch returns body with every read that brings bytes restarting the guard's timer.
func (g *idleGuard) watch(body io.ReadCloser) io.ReadCloser {
	if g == nil {
		return body
	}
	return &idleBody{ReadCloser: body, g: g}
}

// explain returns err, or ErrIdleTimeout when err came of the guard cutting the connection.
func (g *idleGuard) explain(err error) error {
	if g == nil || err == nil || !g.fired.Load() {
		return err
	}
	return fmt.Errorf("nothing for %v: %w", g.timeout, ErrIdleTimeout)
}

// stop stops the clock: while no call waits on the connection, and with the connection.
func (g *idleGuard) stop() {
	if g != nil {
		g.timer.Stop()
	}
}

// restart gives the connection a full timeout from now.
func (g *idleGuard) restart() {
	if g != nil {
		g.timer.Reset(g.timeout)
	}
}

type idleBody struct {
	io.ReadCloser
	g *idleGuard
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		// Should the timer have fired meanwhile, this runs cut again later, on a connection
		// that is being dropped already: harmless.
		b.g.restart()
	}
	return n, b.g.explain(err)
}
