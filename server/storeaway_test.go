package server_test

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// TestLockedDatabaseIs503: while another process holds the SQLite file's write lock, writes are
// 503 unavailable with Retry-After (not 500 internal) and /readyz says why; then all is well again.
func TestLockedDatabaseIs503(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	h := hub.New()
	st := sqlite.New(path)
	st.Publisher = h
	st.BusyTimeout = 20 * time.Millisecond
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		_ = st.Close()
	})

	if resp, body := call(t, "POST", srv.URL()+"/v1/orders", "", `{"id":"l-0"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`CREATE TABLE lock_holder (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	resp, body := call(t, "POST", srv.URL()+"/v1/orders", "", `{"id":"l-1"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("create on a locked file: %d %s (Retry-After %q), want 503 unavailable", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// Many changes of which none could be applied are refused whole, as one would be.
	resp, body = call(t, "POST", srv.URL()+"/v1/status-changes", "", `{"changes":[{"order_id":"l-0","status":"confirmed"}]}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("status changes on a locked file: %d %s (Retry-After %q), want 503 unavailable", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	resp, body = call(t, "GET", srv.URL()+"/readyz", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "locked") {
		t.Fatalf("readyz on a locked file: %d %s, want 503 saying locked", resp.StatusCode, body)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if resp, body := call(t, "POST", srv.URL()+"/v1/orders", "", `{"id":"l-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create once unlocked: %d %s", resp.StatusCode, body)
	}
	if resp, _ := call(t, "GET", srv.URL()+"/readyz", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz once unlocked: %d", resp.StatusCode)
	}
}
