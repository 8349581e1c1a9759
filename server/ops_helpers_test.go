package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// openServer runs a server on 127.0.0.1:0 over the SQLite file at path (a fresh one when empty),
// with configure applied before Open. It closes at cleanup unless the test closed it.
func startServer(t *testing.T, path string, configure func(*server.Server)) *server.Server {
	t.Helper()
	srv := unopenedServer(t, path)
	if configure != nil {
		configure(srv)
	}
	if err := srv.Open(); err != nil {
		t.Fatalf("open server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return srv
}

// newServer returns a server on 127.0.0.1:0 over the SQLite file at path (a fresh one when
// empty), not yet open. The store closes at cleanup.
func unopenedServer(t *testing.T, path string) *server.Server {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "ordercast.db")
	}
	h := hub.New()
	st := sqlite.New(path)
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	return srv
}

// postJSON posts body to url and decodes the answer into out (when not nil); it fails the test
// unless the status is want.
func postJSON(t *testing.T, c *http.Client, url string, body any, want int, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: status %d, want %d", url, resp.StatusCode, want)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: decode: %v", url, err)
		}
	}
}

func createOrder(t *testing.T, c *http.Client, base, id string) {
	t.Helper()
	postJSON(t, c, base+"/v1/orders", map[string]string{"id": id}, http.StatusCreated, nil)
}

func setStatus(t *testing.T, c *http.Client, base, id string, status ordercast.Status) {
	t.Helper()
	postJSON(t, c, base+"/v1/orders/"+id+"/status", map[string]string{"status": string(status)}, http.StatusOK, nil)
}

// stream is one open SSE response; Events yields its events and closes when the response ends.
type stream struct {
	Resp   *http.Response
	Events <-chan ordercast.Event
}

// openStream opens GET /v1/orders/{id}/stream, resuming after lastID when it is positive. The
// stream ends with ctx or when the server closes it.
func openStream(ctx context.Context, c *http.Client, base, id string, lastID int64) (*stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/orders/"+id+"/stream", nil)
	if err != nil {
		return nil, err
	}
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("stream %s: status %d", id, resp.StatusCode)
	}
	events := make(chan ordercast.Event, 16)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue // id and event lines repeat what data says; comments and retry are not events
			}
			var ev ordercast.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return &stream{Resp: resp, Events: events}, nil
}

// next returns the stream's next event, failing the test if the stream ends first.
func (s *stream) next(t *testing.T) ordercast.Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events:
		if !ok {
			t.Fatal("stream ended before the next event")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	panic("unreachable")
}

// scrape fetches /metrics and parses the Prometheus text format.
func scrape(t *testing.T, c *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value returns the value of the sample of name whose labels include labels (pairs of name and
// value); for a histogram, its sample count. Absent is 0.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// waitMetric polls /metrics until the sample equals want, or fails after 10 s.
func waitMetric(t *testing.T, c *http.Client, base string, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := value(scrape(t, c, base), name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
