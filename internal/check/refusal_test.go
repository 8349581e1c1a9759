package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// TestRefusalsAreRecordedAndJudged: a node that refuses a stream open, a party stream's open, a
// create and a status change with 4xx answers: the watchers and the writers record each
// refusal, with its code, and the judge reports every one as wrongly refused.
func TestRefusalsAreRecordedAndJudged(t *testing.T) {
	refuse := func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":%q,"message":"no"}}`, code)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/events"):
			fmt.Fprint(w, `{"events":[{"seq":1,"status":"placed"}]}`)
		case strings.HasPrefix(r.URL.Path, "/v1/restaurants/"):
			refuse(w, http.StatusUnauthorized, "unauthenticated")
		case strings.HasSuffix(r.URL.Path, "/stream"):
			refuse(w, http.StatusNotFound, "not_found")
		case strings.HasSuffix(r.URL.Path, "/status"):
			refuse(w, http.StatusUnprocessableEntity, "invalid_argument")
		default:
			refuse(w, http.StatusConflict, "order_exists")
		}
	}))
	defer srv.Close()

	o := &orderState{id: "t-o1", version: 1, status: "placed"}
	o.known.Store(1)
	led := newLedger("t")
	led.orders[o.id], led.active = o, []*orderState{o}
	led.parties = []*partyState{{party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "t-r0"}, token: "r"}}
	p := &phase{world: world{nodes: []*node{{url: srv.URL}}}, led: led, token: "s"}
	r := rand.New(rand.NewPCG(1, 2))

	p.advance(t.Context(), r)
	if err := p.createOrder(t.Context(), r); err == nil {
		t.Fatal("a refused create succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { (&watcher{idx: 0, p: p, r: rand.New(rand.NewPCG(1, 3))}).follow(ctx, o) })
	wg.Go(func() { (&partyWatcher{idx: 1, p: p, r: rand.New(rand.NewPCG(1, 4)), party: led.parties[0]}).run(ctx) })
	want := []string{RStatus + " 422 invalid_argument", RCreate + " 409 order_exists", RWatch + " 404 not_found", RPartyWatch + " 401 unauthenticated"}
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		led.mu.Lock()
		got = got[:0]
		for _, rf := range led.refusals {
			if s := fmt.Sprintf("%s %d %s", rf.Request, rf.HTTP, rf.Code); !slices.Contains(got, s) {
				got = append(got, s)
			}
		}
		led.mu.Unlock()
		if len(got) == len(want) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the watchers with a deadline
	}
	cancel()
	wg.Wait()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("refusals recorded: %q, want %q", got, want)
	}
	j := Judge(Records{Refusals: led.refusals})
	if n := j.Anomalies[AWronglyRefused]; n != len(led.refusals) {
		t.Fatalf("%d wrongly refused of %d refusals: %v", n, len(led.refusals), j.Examples)
	}
}

// TestAStatusChangeAnsweredWithAnotherEventIsJudged: a node that answers a status change 200
// "changed nothing" with an event that is not the writer's (a batch that dropped the change and
// answered with the order's state) left no record, and the run passed. The writer now records
// it, and the judge finds it wrong when the history shows nothing else moved the order.
func TestAStatusChangeAnsweredWithAnotherEventIsJudged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "GET" {
			fmt.Fprint(w, `{"events":[{"seq":1,"status":"placed","note":"created"}]}`)
			return
		}
		fmt.Fprint(w, `{"changed":false,"event":{"seq":1,"status":"placed","note":"created"}}`)
	}))
	defer srv.Close()
	o := &orderState{id: "t-o1", version: 1, status: "placed"}
	o.known.Store(1)
	led := newLedger("t")
	led.orders[o.id], led.active = o, []*orderState{o}
	p := &phase{world: world{nodes: []*node{{url: srv.URL}}}, led: led, token: "s"}
	p.advance(t.Context(), rand.New(rand.NewPCG(1, 2)))
	if len(led.refusals) != 1 || led.refusals[0].Code != CodeUnchanged || led.refusals[0].Expected != 1 {
		t.Fatalf("refusals recorded: %+v, want one unchanged at expected version 1", led.refusals)
	}
	j := Judge(Records{Refusals: led.refusals, Histories: map[string][]HistEvent{o.id: {{Seq: 1, Status: "placed", Note: "created"}}}})
	if j.Anomalies[AWronglyRefused] != 1 {
		t.Fatalf("anomalies %v, want the unchanged answer wrongly refused", j.Anomalies)
	}
}
