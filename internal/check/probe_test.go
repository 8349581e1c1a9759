package check

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAProbeFindsANodeThatStayedSick: after the faults each node is asked alone whether it is
// ready and takes a write. Through the proxy a node that answered 503 for ever was hidden by
// the others; probed alone it is unwell, a node that refuses writes too, and a well node is not.
func TestAProbeFindsANodeThatStayedSick(t *testing.T) {
	well := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"x","version":1}`)
	}))
	defer well.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"code":"unavailable","message":"store away"}}`, http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	readyButRefusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		http.Error(w, `{"error":{"code":"forbidden","message":"no"}}`, http.StatusForbidden)
	}))
	defer readyButRefusing.Close()

	p := &phase{world: world{nodes: []*node{{idx: 0, url: well.URL}, {idx: 1, url: sick.URL}, {idx: 2, url: readyButRefusing.URL}}}, led: newLedger("t")}
	unwell := p.probeNodes(t.Context(), time.Second)
	if len(unwell) != 2 || !strings.HasPrefix(unwell[0], "node 1: ") || !strings.HasPrefix(unwell[1], "node 2: a create") {
		t.Fatalf("unwell: %q; want nodes 1 (not ready) and 2 (no write taken)", unwell)
	}
	if j := Judge(Records{Unwell: unwell}); j.Anomalies[ANodeUnwell] != 2 {
		t.Fatalf("anomalies %v, want two node_unwell", j.Anomalies)
	}
}
