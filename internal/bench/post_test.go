package bench

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// locationServer answers the posters' positions, one a request or many (POST /v1/locations), as
// a server that takes each; take, when set, runs first for each request and stands for the
// server's work on it.
func locationServer(t *testing.T, take func()) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if take != nil {
			take()
		}
		if r.URL.Path != api.PathLocations {
			_ = json.NewEncoder(w).Encode(api.PostLocationResponse{Orders: 1})
			return
		}
		var req struct {
			Positions []json.RawMessage `json:"positions"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		one := 1
		ans := api.PostLocationsResponse{Accepted: len(req.Positions)}
		for range req.Positions {
			ans.Results = append(ans.Results, api.LocationResult{Orders: &one})
		}
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// newTestPosters makes the posters of one group: couriers couriers, each posting every every.
func newTestPosters(t *testing.T, url string, couriers, posters, batch int, every time.Duration) *posters {
	t.Helper()
	p, err := newPosters(t.Context(), GroupSpec{URLs: []string{url}, PerOrder: 1, Token: "token", Location: true,
		CourierCount: couriers, Every: every, Posters: posters, PostBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// TestPostersCountThePostsDueInAStall: a server that stalls once for 300 ms mid-run, then catches
// up. The posts due during the stall wait for a free poster; their wait is in due→screen (not in
// post→screen), the largest lateness shows it although the posters ended on schedule, and the
// report warns.
func TestPostersCountThePostsDueInAStall(t *testing.T) {
	const (
		couriers = 400 // each posts once: no post waits for its courier's previous one
		every    = 2 * time.Second
		dur      = 1500 * time.Millisecond
		stall    = 300 * time.Millisecond
	)
	var (
		mu      sync.Mutex // one post at a time, as one store writer takes them
		stallAt time.Time
		stalled bool
	)
	url := locationServer(t, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stalled && time.Now().After(stallAt) {
			stalled = true
			time.Sleep(stall) // the stall itself: a checkpoint, a pause, a lock held
		}
	})
	p := newTestPosters(t, url, couriers, 4, 0, every)
	mu.Lock()
	stallAt = time.Now().Add(600 * time.Millisecond)
	mu.Unlock()
	c := p.run(t.Context(), dur)
	if c.Accepted != 300 || c.Unsent+c.Refused+c.Failed != 0 || !stalled {
		t.Fatalf("accepted %d, unsent %d, refused %d, failed %d (%s), stalled %v; want 300 accepted and a stall", c.Accepted, c.Unsent, c.Refused, c.Failed, c.FirstError, stalled)
	}
	if late := time.Duration(c.Timing.MaxLate); late < stall*2/3 {
		t.Errorf("largest lateness %v, want at least %v: the posts due in the stall waited for it", late, stall*2/3)
	}
	// Each position as if a watcher read it the moment its post started plus 1 ms: the wait
	// for a poster is then only in the time from the due time.
	var samples []PosSample
	for _, post := range c.Posts {
		samples = append(samples, PosSample{Order: post.Courier, At: post.At, Received: post.Start + int64(time.Millisecond)})
	}
	lat := CorrelatePositions(c.Posts, samples)
	if lat.Uncorrelated+lat.Inconsistent != 0 || len(lat.FromDue) != len(samples) {
		t.Fatalf("%d uncorrelated, %d inconsistent of %d", lat.Uncorrelated, lat.Inconsistent, len(samples))
	}
	slow := func(us []int64) int {
		return len(slices.DeleteFunc(slices.Clone(us), func(v int64) bool { return v < (100 * time.Millisecond).Microseconds() }))
	}
	// About 40 posts were due in the stall's first 200 ms.
	if fromDue, fromStart := slow(lat.FromDue), slow(lat.FromStart); fromDue < 20 || fromStart != 0 {
		t.Errorf("%d positions took 100 ms or more from their due time and %d from their post's start; want at least 20 and none", fromDue, fromStart)
	}
	slices.Sort(lat.FromDue)
	slices.Sort(lat.FromStart)
	var r Result
	l := &LocationResult{}
	r.setLocation(l, stepOutcome{posts: c, positions: lat})
	if l.DueToScreenP99Ms < float64(stall/time.Millisecond)/2 || l.PostToScreenP99Ms > 10 || l.MaxLateMs < float64(stall/time.Millisecond)*2/3 {
		t.Errorf("due→screen p99 %v ms, post→screen p99 %v ms, late max %v ms", l.DueToScreenP99Ms, l.PostToScreenP99Ms, l.MaxLateMs)
	}
	if !l.ScheduleSlipped || !slices.ContainsFunc(l.Notes(), func(n string) bool { return strings.HasPrefix(n, "WARNING: a post started") }) {
		t.Errorf("no warning of the slip: %q", l.Notes())
	}
}

// TestPostersAcceptedIsWhatTheServerTook: offered 500 positions/s with 100 posters, a server that
// takes at most 420 a second is reported at the rate it took, and the report warns; the posts
// still in flight when the last one is sent do not make up the difference.
func TestPostersAcceptedIsWhatTheServerTook(t *testing.T) {
	const capacity = 420
	var (
		mu          sync.Mutex
		next        time.Time
		first, last time.Time // the first post's arrival, the last one taken
	)
	url := locationServer(t, func() {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		// One post each 1/420 s on a fixed beat, so that oversleeping does not slow it.
		next = later(next, time.Now().Add(-50*time.Millisecond)).Add(time.Second / capacity)
		time.Sleep(time.Until(next)) // the server's work
		last = time.Now()
	})
	p := newTestPosters(t, url, 500, 100, 0, time.Second)
	mu.Lock()
	next = time.Now() // no burst at the start: the beat catches up only on oversleeping
	mu.Unlock()
	c := p.run(t.Context(), time.Second)
	if c.Accepted != 500 || c.Failed+c.Refused+c.Unsent != 0 {
		t.Fatalf("accepted %d, failed %d, refused %d, unsent %d; want 500 accepted", c.Accepted, c.Failed, c.Refused, c.Unsent)
	}
	mu.Lock()
	// What the server did, by its own clock: the bench's span starts no later and ends no
	// earlier, so its figure may be lower but never higher.
	took := 500 / last.Sub(first).Seconds()
	mu.Unlock()
	var r Result
	l := &LocationResult{}
	r.setLocation(l, stepOutcome{posts: c})
	if l.Accepted > took*1.01 || l.Accepted < took*0.95 || l.Accepted > capacity*1.02 {
		t.Errorf("accepted %.0f/s; the server took %.0f/s, at most %d/s", l.Accepted, took, capacity)
	}
	if !l.AcceptedShortfall() || !slices.ContainsFunc(l.Notes(), func(n string) bool { return strings.HasPrefix(n, "WARNING: offered 500 positions/s, accepted") }) {
		t.Errorf("no warning that the rate was not reached: %q", l.Notes())
	}
}

// TestPostBatchDueIsEachPositionsOwn: with --post-batch, a position is due at its own time on the
// schedule, so the wait for its tick's end is in due→screen; the lateness the WARNING reads is the
// request's against its tick's end, so a server that keeps up raises none.
func TestPostBatchDueIsEachPositionsOwn(t *testing.T) {
	const couriers, every = 200, time.Second // 200 positions/s, 20 in each 100 ms tick
	p := newTestPosters(t, locationServer(t, nil), couriers, 8, 20, every)
	tick := p.spec.batchTick()
	if tick != maxBatchTick {
		t.Fatalf("tick %v, want %v", tick, maxBatchTick)
	}
	c := p.run(t.Context(), time.Second)
	if c.Accepted != couriers || c.Requests >= c.Accepted {
		t.Fatalf("accepted %d in %d requests; want %d, batched", c.Accepted, c.Requests, couriers)
	}
	var waited time.Duration // the longest a position waited for its request to start
	for _, post := range c.Posts {
		waited = max(waited, time.Duration(post.Start-post.Due))
		if post.Due < c.Timing.FirstDue || post.Due > c.Timing.FirstDue+int64(time.Second) {
			t.Fatalf("post %+v due outside the schedule from %d", post, c.Timing.FirstDue)
		}
	}
	if waited < tick*3/4 {
		t.Errorf("the longest wait from a position's due time to its request %v, want most of the %v tick", waited, tick)
	}
	// Measured against its own due time, a position's lateness would hold its wait for the
	// tick's end, and the largest would be the longest wait. Against the tick's end it is less
	// by most of a tick, however late a loaded machine started the requests (both move alike).
	if late := time.Duration(c.Timing.MaxLate); late > waited-tick/2 {
		t.Errorf("largest lateness %v, the longest wait %v: measured against the positions' own due times, not their tick's end", late, waited)
	}
}

// TestStaleAtEnd: after the settle every watcher must have its courier's last accepted position. A
// watcher left on an older one, or with none, makes its courier stale, whichever group holds it;
// a courier with no accepted post, or whose watchers all have its newest, is not.
func TestStaleAtEnd(t *testing.T) {
	t0 := time.Unix(3000, 0)
	posts := []Post{{Courier: 0, At: 1}, {Courier: 0, At: 2}, {Courier: 1, At: 5}, {Courier: 2, At: 7}}
	var a, b Recorder // two groups
	watchers := []*Watcher{{Order: 0}, {Order: 0}, {Order: 1}, {Order: 2}, {Order: 3}}
	for i, w := range watchers {
		[]*Recorder{&a, &b}[i%2].Track(w)
	}
	a.Mark()
	b.Mark()
	seen := func(r *Recorder, w *Watcher, at int64) { r.ObservePosition(w, time.Unix(0, at), t0) }
	seen(&a, watchers[0], 1)
	seen(&a, watchers[0], 2) // courier 0's newest
	seen(&b, watchers[1], 1) // courier 0's older one only: stale
	seen(&a, watchers[2], 5) // courier 1's newest
	// watchers[3] (courier 2) read nothing: stale; watchers[4]'s order has no courier
	var sum Counts
	for _, r := range []*Recorder{&a, &b} {
		b, err := json.Marshal(r.Counts(true))
		if err != nil {
			t.Fatal(err)
		}
		var back Counts
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		sum.Add(back)
	}
	if n := staleAtEnd(posts, sum.Newest); n != 2 {
		t.Errorf("%d couriers stale, want 2 (newest %v)", n, sum.Newest)
	}
	seen(&b, watchers[1], 2)
	seen(&b, watchers[3], 7)
	sum = Counts{}
	sum.Add(a.Counts(true))
	sum.Add(b.Counts(true))
	if n := staleAtEnd(posts, sum.Newest); n != 0 {
		t.Errorf("%d couriers stale once every watcher has its courier's newest", n)
	}
	l := &LocationResult{AcceptedPosts: 4, StaleAtEnd: 2}
	if f := l.failures(); len(f) != 1 || !strings.HasPrefix(f[0], "2 couriers stale at the end") {
		t.Errorf("failures %q", f)
	}
}

// TestPostersSendEachCouriersOwnToken: given the servers' secret, each courier posts with a
// courier token of its own, as a courier's app does, so the server verifies and caches one token
// per courier; the bench's one system token made every post of a run a hit of one cache entry.
func TestPostersSendEachCouriersOwnToken(t *testing.T) {
	const secret = "bench-test-secret-0123456789abcdef"
	a, err := auth.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		wrong  []string
		seen   = map[string]bool{}
		posted int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.ParseActor(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		mu.Lock()
		posted++
		if err != nil || actor.Role != auth.RoleCourier || r.URL.Path != api.LocationPath(actor.Sub) {
			wrong = append(wrong, r.URL.Path+" with "+actor.String())
		}
		seen[actor.Sub] = true
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(api.PostLocationResponse{Orders: 1})
	}))
	t.Cleanup(srv.Close)
	p, err := newPosters(t.Context(), GroupSpec{URLs: []string{srv.URL}, PerOrder: 1, Token: "the bench's", Location: true,
		CourierFirst: 10, CourierCount: 40, Every: 200 * time.Millisecond, Posters: 8, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	c := p.run(t.Context(), 400*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if c.Accepted == 0 || len(wrong) > 0 {
		t.Fatalf("%d posts accepted; %d of %d carried another than their courier's own token, such as %q", c.Accepted, len(wrong), posted, wrong[:min(len(wrong), 3)])
	}
	if len(seen) != 40 {
		t.Errorf("%d couriers' tokens seen, want 40", len(seen))
	}
}
