package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// watcher follows one order's SSE stream until its terminal event, resuming with Last-Event-ID
// on the next of its base URLs whenever a stream breaks, as a client behind a load balancer
// would land on another node.
//
// It stands in for client.Watch, which lands on main separately; its job here is only to record
// exactly what the server sent, duplicates and holes included, so the tests can judge it.
type watcher struct {
	id   string
	urls []string

	mu      sync.Mutex
	events  []ordercast.Event
	recons  int
	err     error
	changed chan struct{} // signalled on every event
	done    chan struct{}
}

// watch starts a watcher of order id on urls[0], with the others to resume on; it is stopped when
// the test ends.
func watch(t *testing.T, id string, urls ...string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{id: id, urls: urls, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run(ctx)
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	var last int64
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			w.mu.Lock()
			w.recons++
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond): // the server's retry, shortened
			}
		}
		if attempt > 50 {
			w.fail(fmt.Errorf("gave up after %d attempts", attempt))
			return
		}
		base := w.urls[attempt%len(w.urls)]
		ended, err := w.stream(ctx, base, &last)
		if ended || ctx.Err() != nil {
			return
		}
		_ = err // a broken stream: resume on the next URL
	}
}

// stream reads one connection; it reports whether the order's terminal event was received.
func (w *watcher) stream(ctx context.Context, base string, last *int64) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/orders/"+w.id+"/stream", nil)
	if err != nil {
		return false, err
	}
	if *last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*last, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return true, nil
	default:
		return false, fmt.Errorf("GET stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && data != "":
			var ev ordercast.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				w.fail(fmt.Errorf("event %q: %v", data, err))
				return true, err
			}
			if id != strconv.FormatInt(ev.Seq, 10) {
				w.fail(fmt.Errorf("event id %q for seq %d", id, ev.Seq))
			}
			*last = ev.Seq
			w.mu.Lock()
			w.events = append(w.events, ev)
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
			if ev.Status.Terminal() {
				return true, nil
			}
			id, data = "", ""
		}
	}
	return false, sc.Err()
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *watcher) reconnects() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.recons
}

func (w *watcher) received() []ordercast.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ordercast.Event(nil), w.events...)
}

// waitFor waits until the watcher has received at least n events.
func (w *watcher) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for len(w.received()) < n {
		select {
		case <-w.changed:
		case <-w.done:
			if len(w.received()) < n {
				t.Fatalf("%s: watcher stopped after %d events, want %d", w.id, len(w.received()), n)
			}
		case <-deadline:
			t.Fatalf("%s: timed out with %d events, want %d", w.id, len(w.received()), n)
		}
	}
}

// checkComplete waits for the terminal event and checks that the watcher saw the order's whole
// history, seq 1 to the end, each once and in order.
func (w *watcher) checkComplete(t *testing.T) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: stream did not reach the terminal event; got %v", w.id, seqs(w.received()))
	}
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		t.Errorf("%s: %v", w.id, err)
	}
	got := w.received()
	want := append([]ordercast.Status{ordercast.StatusPlaced}, path...)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Seq == int64(i+1) && got[i].Status == want[i] && got[i].OrderID == w.id
	}
	if !ok {
		t.Errorf("%s: watcher saw %v, want seqs 1..%d with statuses %v, each once, in order", w.id, seqs(got), len(want), want)
	}
}

func seqs(evs []ordercast.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d:%s", ev.Seq, ev.Status))
	}
	return out
}
