package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// BenchmarkPostStatus measures the write path of the API end to end through httptest: actor
// tokens verified, the request logged (with redaction) and the change committed to SQLite. Each
// goroutine creates an order and moves it through its stages, one request per iteration.
//
//	go test -run '^$' -bench PostStatus -benchtime 20000x -count 3 ./server/
func BenchmarkPostStatus(b *testing.B) {
	h := hub.New()
	st := sqlite.New(filepath.Join(b.TempDir(), "ordercast.db"))
	st.Publisher = h
	// Synchronous NORMAL as before group commit, so the figures compare the per-request costs;
	// the cost of a durable sync is the store benchmark's business.
	st.Synchronous = "NORMAL"
	if err := st.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	tokens, err := auth.New([]byte(testutil.Secret))
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Auth = &server.Auth{Tokens: tokens}
	srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	token, err := tokens.SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "bench"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1024}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	post := func(ctx context.Context, path, body string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("POST %s: %s", path, resp.Status)
		}
		return nil
	}
	storetest.RunWrites(b, func(ctx context.Context, id string) error {
		return post(ctx, "/v1/orders", `{"id":"`+id+`"}`)
	}, func(ctx context.Context, id string, to ordercast.Status) error {
		return post(ctx, "/v1/orders/"+id+"/status", `{"status":"`+string(to)+`"}`)
	})
}
