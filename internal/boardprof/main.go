// Command boardprof measures the script a restaurant's board (/restaurants/{id}, console.js)
// spends on a large snapshot and on the live events that follow it, in headless Chromium, against
// a real ordercast binary. It is a measuring tool, not a test: nothing it prints is asserted, and
// it is never run by go test.
//
//	go build -o oc ./cmd/ordercast && go run ./internal/boardprof -oc ./oc -runs 5
//
// It starts `oc serve` on a fresh SQLite file (on -addr), creates -n orders of one restaurant
// in a mix of stages (some with a courier, some picked up), then, -runs times, opens the board in
// a fresh browser and times:
//
//   - snapshot: the stream's first snapshot, from the page's handler being called (the JSON
//     parsed, every row made and laid out) to its return, and to the end of the frame after it
//     (the style, layout and paint the handler left to the browser);
//   - status: one order's status event (placed to confirmed, the top row, on screen);
//   - new: a new order's event (its row at the bottom of the kitchen's rows);
//   - pickup: an order picked up (ready to out for delivery: its row moves below the kitchen's).
//
// Each line gives, per run, "handler/frame" in milliseconds, and the Chromium task metrics
// (Performance.getMetrics) over the phase: script, layout and style recalculation. With
// -profile it also prints, for each phase of the last run, the functions with the most
// self time in a CPU profile (sampled every 100 µs).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast/internal/headless"
)

// instrument times each stream event the page handles: the page's own listener (api.js parses
// the JSON and calls console.js) and the listeners that only note a frame was heard are summed
// per event. frame is measured to a task after the next animation frame, once the browser has
// done the style and layout the handler left it.
const instrument = `
window.boardTimes = [];
(function () {
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    if (type !== 'snapshot' && type !== 'status' && type !== 'courier') return add.call(this, type, fn, opts);
    return add.call(this, type, function (ev) {
      let rec = ev.boardRec;
      if (!rec) {
        rec = ev.boardRec = { type: type, id: JSON.parse(ev.data).order_id || '', handler: 0, frame: -1, t0: performance.now() };
        window.boardTimes.push(rec);
        requestAnimationFrame(() => setTimeout(() => { rec.frame = performance.now() - rec.t0; }, 0));
      }
      const t0 = performance.now();
      try { return fn.call(this, ev); } finally { rec.handler += performance.now() - t0; }
    }, opts);
  };
})();`

type config struct {
	oc, chromium, addr string
	n, runs            int
	profile            bool
	probe              string
	width, height      int64
}

func main() {
	var c config
	flag.StringVar(&c.oc, "oc", "./oc", "the ordercast binary to serve with")
	flag.StringVar(&c.chromium, "chromium", "", "the browser (default: $ORDERCAST_CHROMIUM, or chromium on PATH)")
	flag.StringVar(&c.addr, "addr", "127.0.0.1:18150", "where the server listens")
	flag.IntVar(&c.n, "n", 2000, "orders on the board")
	flag.IntVar(&c.runs, "runs", 5, "runs, each in a fresh browser")
	flag.BoolVar(&c.profile, "profile", false, "print each phase's hottest functions (CPU profile of the last run)")
	flag.StringVar(&c.probe, "probe", "", "a JavaScript expression to evaluate and print after each run's snapshot (what a page under study keeps)")
	flag.Int64Var(&c.width, "width", 1280, "viewport width")
	flag.Int64Var(&c.height, "height", 900, "viewport height")
	flag.Parse()
	log.SetFlags(0)
	if err := run(c); err != nil {
		log.Fatal(err)
	}
}

func run(c config) error {
	if c.chromium == "" {
		var err error
		if c.chromium, err = headless.Find(); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "boardprof-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	secret := strings.Repeat("boardprof-secret-", 3)
	srv := exec.Command(c.oc, "serve", "--addr", c.addr, "--db", filepath.Join(dir, "board.db"), "--secret", secret,
		"--write-rate", "0", "--sqlite-sync", "normal", "--request-log", "off", "--log-level", "warn")
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
	}()
	base := "http://" + c.addr
	if err := waitReady(base, 15*time.Second); err != nil {
		return err
	}
	admin, err := token(c.oc, secret, "admin", "ops")
	if err != nil {
		return err
	}
	board, err := token(c.oc, secret, "restaurant", "r-1")
	if err != nil {
		return err
	}
	api := &apiClient{base: base, token: admin}
	start := time.Now()
	if err := seed(api, c.n); err != nil {
		return err
	}
	log.Printf("seeded %d orders in %v", c.n, time.Since(start).Round(time.Millisecond))

	phases := []string{"snapshot", "status", "new", "pickup"}
	results := map[string][]phaseResult{}
	profiles := map[string]*profiler.Profile{}
	for r := 0; r < c.runs; r++ {
		res, prof, err := runOnce(c, api, base, board, r, c.profile && r == c.runs-1)
		if err != nil {
			return fmt.Errorf("run %d: %w", r+1, err)
		}
		for _, p := range phases {
			results[p] = append(results[p], res[p])
		}
		if prof != nil {
			profiles = prof
		}
	}
	fmt.Printf("board of %d orders, %d runs, viewport %dx%d; per run: handler/frame ms [script layout style ms]\n", c.n, c.runs, c.width, c.height)
	for _, p := range phases {
		fmt.Printf("%-9s", p)
		for _, r := range results[p] {
			fmt.Printf("  %6.1f/%-6.1f[%.0f %.0f %.0f]", r.handler, r.frame, r.script, r.layout, r.style)
		}
		fmt.Printf("   median %.1f/%.1f\n", median(results[p], func(r phaseResult) float64 { return r.handler }),
			median(results[p], func(r phaseResult) float64 { return r.frame }))
	}
	for _, p := range phases {
		if prof := profiles[p]; prof != nil {
			fmt.Printf("\n%s: hottest functions (self ms)\n", p)
			printHot(prof, 20)
		}
	}
	return nil
}

type phaseResult struct {
	handler, frame        float64 // ms, from the page's instrument
	script, layout, style float64 // ms, Performance.getMetrics deltas over the phase
}

func median(rs []phaseResult, f func(phaseResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

// runOnce opens the board in a fresh browser and times its snapshot and three live events. Run
// r takes the r-th order of each kind, so that every run has an order to change.
func runOnce(c config, api *apiClient, base, board string, r int, prof bool) (map[string]phaseResult, map[string]*profiler.Profile, error) {
	alloc, cancelAlloc := headless.Allocator(context.Background(), c.chromium)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelT()

	res := map[string]phaseResult{}
	profs := map[string]*profiler.Profile{}
	call := func(f func(ctx context.Context, tgt *chromedp.Target) error) error {
		return chromedp.Do(ctx, func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
			return chromedp.Void{}, f(ctx, tgt)
		})
	}
	var metrics func() (map[string]float64, error)
	var startProfile func() error
	var stopProfile func() (*profiler.Profile, error)
	err := call(func(ctx context.Context, tgt *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: instrument}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tgt, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: c.width, Height: c.height, DeviceScaleFactor: 1}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tgt, performance.Enable, performance.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tgt, profiler.Enable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tgt, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 100})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	metrics = func() (map[string]float64, error) {
		m := map[string]float64{}
		err := call(func(ctx context.Context, tgt *chromedp.Target) error {
			got, err := cdp.Call(ctx, tgt, performance.GetMetrics, cdp.Empty{})
			if err != nil {
				return err
			}
			for _, x := range got.Metrics {
				m[x.Name] = x.Value
			}
			return nil
		})
		return m, err
	}
	startProfile = func() error {
		if !prof {
			return nil
		}
		return call(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, profiler.Start, cdp.Empty{})
			return err
		})
	}
	stopProfile = func() (*profiler.Profile, error) {
		if !prof {
			return nil, nil
		}
		var p *profiler.Profile
		err := call(func(ctx context.Context, tgt *chromedp.Target) error {
			got, err := cdp.Call(ctx, tgt, profiler.Stop, cdp.Empty{})
			p = got.Profile
			return err
		})
		return p, err
	}
	// phase measures what trigger sets off: the instrument's record of the event of kind typ
	// about order id (any, when empty), and the metrics around it.
	// done, when not empty, is what else to wait for before the phase ends (what the event set
	// off: a fetch, say).
	phase := func(name, typ, id, done string, trigger func() error) error {
		before, err := metrics()
		if err != nil {
			return err
		}
		if err := startProfile(); err != nil {
			return err
		}
		if err := trigger(); err != nil {
			return err
		}
		cond := fmt.Sprintf(`window.boardTimes && window.boardTimes.some(r => r.type === %q && (%q === '' || r.id === %q) && r.frame >= 0)`, typ, id, id)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			return fmt.Errorf("%s: waiting for the page's event: %w", name, err)
		}
		if done != "" {
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](done, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
				return fmt.Errorf("%s: waiting for %s: %w", name, done, err)
			}
		}
		p, err := stopProfile()
		if err != nil {
			return err
		}
		if p != nil {
			profs[name] = p
		}
		after, err := metrics()
		if err != nil {
			return err
		}
		rec, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ Handler, Frame float64 }](fmt.Sprintf(
			`(r => ({Handler: r.handler, Frame: r.frame}))(window.boardTimes.filter(r => r.type === %q && (%q === '' || r.id === %q)).pop())`, typ, id, id)))
		if err != nil {
			return err
		}
		d := func(k string) float64 { return (after[k] - before[k]) * 1000 }
		res[name] = phaseResult{handler: rec.Handler, frame: rec.Frame, script: d("ScriptDuration"), layout: d("LayoutDuration"), style: d("RecalcStyleDuration")}
		return nil
	}

	if err := phase("snapshot", "snapshot", "", "", func() error {
		return chromedp.Do(ctx, chromedp.Navigate(base+"/restaurants/r-1?token="+board))
	}); err != nil {
		return nil, nil, err
	}
	if c.probe != "" {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[any](c.probe))
		if err != nil {
			return nil, nil, fmt.Errorf("probe: %w", err)
		}
		log.Printf("run %d: probe: %v", r+1, got)
	}
	// The first row, placed, confirmed: on screen, its step's words change.
	if err := phase("status", "status", placedID(r), "", func() error {
		return api.do("POST", "/v1/orders/"+placedID(r)+"/status", `{"status":"confirmed"}`)
	}); err != nil {
		return nil, nil, err
	}
	newID := fmt.Sprintf("new-%d-%d", time.Now().UnixNano(), r)
	// The new order's row learns its details from the order, which the page then fetches.
	learned := `(li => !!li && li.querySelector('.order-meta').textContent.startsWith("Luigi's"))(document.querySelector('li.order[data-order-id="` + newID + `"]'))`
	if err := phase("new", "status", newID, learned, func() error {
		return api.do("POST", "/v1/orders", `{"id":"`+newID+`","restaurant_id":"r-1","customer_id":"u-1","details":{"restaurant":"Luigi's","items":1}}`)
	}); err != nil {
		return nil, nil, err
	}
	if err := phase("pickup", "status", readyID(r), "", func() error {
		return api.do("POST", "/v1/orders/"+readyID(r)+"/status", `{"status":"out_for_delivery"}`)
	}); err != nil {
		return nil, nil, err
	}
	return res, profs, nil
}

// The seeded orders: s-0000 … created in order, every fourth placed, confirmed, preparing or
// ready (a ready one with a courier), every tenth picked up; placedID(r) and readyID(r) are
// the r-th of a kind near the top, changed by run r.
func orderID(i int) string  { return fmt.Sprintf("s-%04d", i) }
func placedID(r int) string { return orderID(4 * r) }
func readyID(r int) string  { return orderID(4*r + 3) }

func stagesOf(i int) []string {
	switch {
	case i%10 == 9 && i > 100:
		return []string{"ready", "out_for_delivery"}
	case i%4 == 1:
		return []string{"confirmed"}
	case i%4 == 2:
		return []string{"preparing"}
	case i%4 == 3:
		return []string{"ready"}
	}
	return nil
}

var allergies = []string{`"allergies":["peanuts","sesame"],`, `"instructions":"ring twice, the bell is broken",`, ``, ``}

// seed creates n orders of restaurant r-1 and moves them to their stages, a few workers at once.
func seed(api *apiClient, n int) error {
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				id := orderID(i)
				body := fmt.Sprintf(`{"id":%q,"restaurant_id":"r-1","customer_id":"u-%d","details":{%s"restaurant":"Luigi's","customer":"Ana %d","items":%d}}`,
					id, i%50, allergies[i%len(allergies)], i%50, 1+i%5)
				if err := api.do("POST", "/v1/orders", body); err != nil {
					errs <- err
					return
				}
				stages := stagesOf(i)
				for _, st := range stages {
					if err := api.do("POST", "/v1/orders/"+id+"/status", `{"status":"`+st+`"}`); err != nil {
						errs <- err
						return
					}
				}
				if len(stages) > 0 && stages[0] == "ready" {
					if err := api.do("PUT", "/v1/orders/"+id+"/courier", fmt.Sprintf(`{"courier_id":"c-%d","courier_name":"Ama"}`, i%7)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	var err error
feed:
	for i := 0; i < n; i++ {
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err = <-errs:
	default:
	}
	return err
}

type apiClient struct {
	base, token string
	http        http.Client
}

func (a *apiClient) do(method, path, body string) error {
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	a.http.Timeout = 10 * time.Second
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(got))
	}
	return nil
}

func token(oc, secret, role, sub string) (string, error) {
	out, err := exec.Command(oc, "token", "--secret", secret, "--role", role, "--sub", sub, "--ttl", "1h").Output()
	if err != nil {
		return "", fmt.Errorf("token for %s %s: %w", role, sub, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

func waitReady(base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		// Ready, not only alive: a node answers /healthz while its store is still opening, and
		// the seed's first create would be refused 503.
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the server was not ready (/readyz) in " + within.String())
}

// printHot prints the top functions of p by self time, by name and place, with the time spent
// in each and what it called (total; a recursive function's counted once per stack).
func printHot(p *profiler.Profile, top int) {
	self := map[int64]float64{}
	for i, id := range p.Samples {
		if i+1 < len(p.TimeDeltas) {
			self[id] += float64(p.TimeDeltas[i+1]) / 1000
		}
	}
	nodes := map[int64]*profiler.ProfileNode{}
	for _, n := range p.Nodes {
		nodes[n.ID] = n
	}
	nameOf := func(n *profiler.ProfileNode) string {
		f := n.CallFrame
		name := f.FunctionName
		if name == "" {
			name = "(anonymous)"
		}
		if f.URL != "" {
			name += " " + filepath.Base(f.URL) + ":" + fmt.Sprint(f.LineNumber+1)
		}
		return name
	}
	selfBy, totalBy := map[string]float64{}, map[string]float64{}
	var walk func(id int64, onStack map[string]int) float64
	walk = func(id int64, onStack map[string]int) float64 {
		n := nodes[id]
		name := nameOf(n)
		onStack[name]++
		t := self[id]
		for _, c := range n.Children {
			t += walk(c, onStack)
		}
		onStack[name]--
		selfBy[name] += self[id]
		if onStack[name] == 0 {
			totalBy[name] += t
		}
		return t
	}
	walk(p.Nodes[0].ID, map[string]int{})
	type hot struct {
		name        string
		self, total float64
	}
	var hs []hot
	busy := 0.0
	for k, v := range selfBy {
		hs = append(hs, hot{k, v, totalBy[k]})
		if k != "(idle)" && k != "(root)" {
			busy += v
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].self > hs[j].self })
	fmt.Printf("  (busy, all but idle: %.1f ms)\n      self     total\n", busy)
	for i := 0; i < top && i < len(hs); i++ {
		fmt.Printf("  %8.1f  %8.1f  %s\n", hs[i].self, hs[i].total, hs[i].name)
	}
}
