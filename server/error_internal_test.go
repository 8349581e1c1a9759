package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/api"
)

// An answer that cannot be encoded (here a details object that is not JSON, as a damaged row
// would give) is a 500 with the error body and a line in the log, not a 200 cut short.
func TestAnAnswerThatCannotBeEncodedIsAnInternalError(t *testing.T) {
	var log bytes.Buffer
	s := &Server{Logger: slog.New(slog.NewTextHandler(&log, nil))}
	rec := httptest.NewRecorder()
	rec.Header().Set("ETag", `"v3"`) // as GET /v1/orders/{id} sets before it writes the order
	r := httptest.NewRequest(http.MethodGet, "/v1/orders/o-1", nil)
	s.writeJSON(rec, r, http.StatusOK, map[string]json.RawMessage{"details": json.RawMessage(`{"items":`)})

	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500; body %q", rec.Code, rec.Body)
	}
	var body api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not an error body: %v", rec.Body, err)
	}
	if etag := rec.Header().Get("ETag"); etag != "" {
		t.Errorf("the 500 carries the ETag %s of the answer it could not send", etag)
	}
	if body.Error.Code != "internal" {
		t.Errorf("code %q, want internal", body.Error.Code)
	}
	if !strings.Contains(log.String(), "encode answer") {
		t.Errorf("the log does not name the failure:\n%s", log.String())
	}
}
