package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
)

// tokens is a Client.TokenSource that gives its tokens in turn, the last one from then on.
type tokens struct {
	mu    sync.Mutex
	next  []string
	calls int
	err   error
}

func (s *tokens) token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return "", s.err
	}
	tok := s.next[0]
	if len(s.next) > 1 {
		s.next = s.next[1:]
	}
	return tok, nil
}

// TestATokenSourceRenewsAWatchsToken: a watch whose token is refused (expired, or renewed since)
// asks Client.TokenSource again and goes on with the token it gives, where with a fixed Token
// it ends on the 401; calls take their token from it too, and a source that fails fails the call
// without sending it.
func TestATokenSourceRenewsAWatchsToken(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true, nil)
	system := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleSystem, "dispatch")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := system.CreateOrder(ctx, client.CreateOrderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Order.ID
	other, err := auth.New([]byte(rand.Text() + rand.Text()))
	if err != nil {
		t.Fatal(err)
	}
	stale, err := other.SignActor(auth.Actor{Role: auth.RoleSystem, Sub: "dispatch"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	src := &tokens{next: []string{stale, srv.sign(t, auth.RoleSystem, "dispatch")}}
	c := &client.Client{BaseURL: srv.url, TokenSource: src.token}
	w := c.Watch(ctx, id, client.WatchOptions{MinRetry: time.Millisecond, MaxRetry: 10 * time.Millisecond})
	defer w.Close()
	if ev, err := w.Next(ctx); err != nil || ev.Seq != 1 {
		t.Fatalf("the watch's first event: seq %d, %v; want seq 1 with the renewed token", ev.Seq, err)
	}
	if _, err := c.Order(ctx, id); err != nil {
		t.Errorf("a read with the source's token: %v", err)
	}
	src.mu.Lock()
	src.err = errors.New("the identity provider is away")
	src.mu.Unlock()
	if _, err := c.Order(ctx, id); err == nil || !errors.Is(err, src.err) {
		t.Errorf("a read whose token source failed: %v, want its error", err)
	}
}
