package bench

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// TestWritesByOrder: with --writes-by-order every change of order i goes to node i mod nodes,
// whichever writer sends it; without it, the changes of an order reach more than one node.
func TestWritesByOrder(t *testing.T) {
	for _, byOrder := range []bool{true, false} {
		var (
			mu   sync.Mutex
			seen = map[string]map[int]bool{} // order id → nodes its changes reached
		)
		var urls []string
		for node := range 2 {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req api.SetStatusRequest
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ExpectedVersion == nil {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/orders/"), "/status")
				mu.Lock()
				if seen[id] == nil {
					seen[id] = map[int]bool{}
				}
				seen[id][node] = true
				mu.Unlock()
				_ = json.NewEncoder(w).Encode(api.SetStatusResponse{Changed: true,
					Event: ordercast.Event{OrderID: id, Seq: *req.ExpectedVersion + 1, Status: req.Status}})
			}))
			t.Cleanup(srv.Close)
			urls = append(urls, srv.URL)
		}
		const orders = 5
		base := make([]int64, orders)
		for i := range base {
			base[i] = 1
		}
		d, err := newDriver(t.Context(), urls, "token", "o-", base, statusCycle, 4)
		if err != nil {
			t.Fatal(err)
		}
		if byOrder {
			d.writeByOrder()
		}
		l := d.run(t.Context(), 2000, time.Duration(orders*len(statusCycle))*time.Second/2000)
		d.close()
		if l.committed != int64(orders*len(statusCycle)) || l.errors != 0 {
			t.Fatalf("byOrder %v: %d committed, %d errors; want %d, 0 (%v)", byOrder, l.committed, l.errors, orders*len(statusCycle), d.firstError())
		}
		spread := false
		for i := range orders {
			nodes := seen[OrderID("o-", i)]
			if byOrder && (len(nodes) != 1 || !nodes[i%2]) {
				t.Errorf("order %d's changes reached nodes %v, want only node %d", i, nodes, i%2)
			}
			spread = spread || len(nodes) > 1
		}
		if !byOrder && !spread {
			t.Error("without --writes-by-order every order's changes reached one node: the test cannot tell the two apart")
		}
	}
}
