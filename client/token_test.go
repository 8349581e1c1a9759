package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
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

// TestAWatchEndsOnlyOnTwo401sInARow: a watch with a TokenSource asks it again after a 401 and
// ends only when the very next attempt is refused too: an answer in between (a node away, 503)
// gives the source its next chance, as the token may have been renewed meanwhile.
func TestAWatchEndsOnlyOnTwo401sInARow(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1, 3:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"token_expired","message":"token has expired"}}`)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "id: 1\nevent: status\ndata: {\"order_id\":\"o-1\",\"seq\":1,\"status\":\"placed\",\"at\":\"2026-12-06T20:00:00Z\"}\n\n")
		}
	}))
	defer srv.Close()
	src := &tokens{next: []string{"t-1", "t-2", "t-3", "t-4"}}
	c := &client.Client{BaseURL: srv.URL, TokenSource: src.token}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := c.Watch(ctx, "o-1", client.WatchOptions{MinRetry: time.Millisecond, MaxRetry: 10 * time.Millisecond})
	defer w.Close()
	if ev, err := w.Next(ctx); err != nil || ev.Seq != 1 {
		t.Fatalf("after 401, 503, 401: seq %d, %v; want the event, the source asked at each attempt", ev.Seq, err)
	}
}
