package server

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ordercast/ordercast/internal/sidelisten"
	"github.com/ordercast/ordercast/stream"
)

// Metrics are the server's Prometheus metrics. Each Server has its own registry rather than the
// global one, so that tests (and one process) can run several servers side by side.
type Metrics struct {
	// Registry holds the server's metrics plus the Go and process collectors. Other parts of the
	// node (a bus, a store) may register their own metrics on it; /metrics serves all of it.
	Registry *prometheus.Registry

	streamsOpen     prometheus.Gauge
	streamsClosed   *prometheus.CounterVec
	streamsRefused  *prometheus.CounterVec
	eventsCommitted prometheus.Counter
	// locationsAccepted counts couriers' positions taken in through this node's API.
	locationsAccepted prometheus.Counter
	eventsDelivered   prometheus.Counter
	deliveryLatency   prometheus.Histogram
	caughtUp          prometheus.Counter
	requests          *prometheus.CounterVec
	requestDuration   *prometheus.HistogramVec
	connsAccepted     prometheus.Counter
	connsOpen         prometheus.Gauge
	pollerFailures    prometheus.Counter
}

// NewMetrics returns the server metrics registered on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		streamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordercast_streams_open",
			Help: "Streams open now: SSE and WebSocket, of orders, parties and all orders.",
		}),
		streamsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordercast_streams_closed_total",
			Help: "Streams closed, by reason: " + strings.Join(stream.Reasons(), ", ") + ".",
		}, []string{"reason"}),
		streamsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordercast_streams_refused_total",
			Help: "Stream requests refused for a while, on every transport, by reason: " + strings.Join(streamRefusalReasons, ", ") + ". An event stream's refusal is answered 200 with retry:, so only this counts it.",
		}, []string{"reason"}),
		eventsCommitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordercast_events_committed_total",
			Help: "Order events committed through this node's API (each node counts its own commits).",
		}),
		locationsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordercast_locations_accepted_total",
			Help: "Couriers' positions accepted through this node's API.",
		}),
		eventsDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordercast_events_delivered_total",
			Help: "Events written and flushed to SSE streams, replayed backlog included.",
		}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordercast_delivery_latency_seconds",
			Help:    "Time from an event's commit (its at) to its bytes being flushed to a stream, for live events (not the backlog replayed when a stream opens).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		caughtUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordercast_watchers_caught_up_total",
			Help: "Times a stream's mailbox overflowed (or showed a gap) and the stream was caught up from the store.",
		}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordercast_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer's end, by route pattern; streams and long polls, held open on purpose, are not in it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordercast_http_requests_total",
			Help: "HTTP requests finished, by route pattern and status code; a stream counts when it ends.",
		}, []string{"route", "code"}),
		connsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordercast_http_connections_accepted_total",
			Help: "TCP connections accepted; with HTTP/2 many streams share one.",
		}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordercast_http_connections_open",
			Help: "TCP connections open now.",
		}),
		pollerFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordercast_stream_poller_failures_total",
			Help: "Times the epoll poller holding streams failed for good (at most once): its streams ended, and new streams run on a goroutine each.",
		}),
	}
	for _, r := range stream.Reasons() {
		m.streamsClosed.WithLabelValues(r) // every reason is exported from the start, at 0
	}
	for _, r := range streamRefusalReasons {
		m.streamsRefused.WithLabelValues(r)
	}
	m.Registry.MustRegister(
		m.streamsOpen, m.streamsClosed, m.streamsRefused, m.eventsCommitted, m.locationsAccepted, m.eventsDelivered, m.deliveryLatency,
		m.caughtUp, m.requests, m.requestDuration, m.connsAccepted, m.connsOpen, m.pollerFailures,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// listenMetrics listens on MetricsAddr for GET /metrics alone, so that the node's internals are
// readable only from where the operator lets scrapers in; the server serves it beside Addr.
func (s *Server) listenMetrics() (*sidelisten.Server, error) {
	mux := http.NewServeMux()
	mux.Handle(patMetrics, s.Metrics.Handler())
	return sidelisten.Listen("metrics", s.MetricsAddr, &http.Server{
		// The request log and the request counts as on the main listener; its connections are
		// not the public ones ordercast_http_connections_* count.
		Handler:           s.observe(mux),
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          s.httpErrorLog(),
	})
}

// streamObserver is how the stream engine reports to the metrics, and the poller's failure to
// the log.
type streamObserver struct {
	m   *Metrics
	log *slog.Logger
}

var _ stream.Observer = streamObserver{}

func (o streamObserver) StreamOpened() { o.m.streamsOpen.Inc() }

func (o streamObserver) StreamClosed(reason string) {
	o.m.streamsOpen.Dec()
	o.m.streamsClosed.WithLabelValues(reason).Inc()
}

// EventsDelivered records events just flushed to a stream; live ones also feed the latency
// histogram.
func (o streamObserver) EventsDelivered(n int, liveAt []time.Time, flushed time.Time) {
	for _, at := range liveAt {
		o.m.deliveryLatency.Observe(flushed.Sub(at).Seconds())
	}
	o.m.eventsDelivered.Add(float64(n)) // last: a test that saw this count sees the latencies too
}

func (o streamObserver) CaughtUp() { o.m.caughtUp.Inc() }

// HoldingFailed logs the poller's failure, which the engine reports once, and counts it: the
// node goes on serving, at a goroutine per stream, which an operator should know of.
func (o streamObserver) HoldingFailed(err error) {
	o.m.pollerFailures.Inc()
	o.log.Error("stream poller failed: the streams it held ended, new streams run on a goroutine each", "err", err)
}

// streamRefused counts a stream request refused for a while (writeStreamError).
func (m *Metrics) streamRefused(reason string) { m.streamsRefused.WithLabelValues(reason).Inc() }

// request counts a finished request of route with its status, and its duration d unless it
// was held open on purpose (held: a stream, a long poll).
func (m *Metrics) request(route string, code int, d time.Duration, held bool) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	if !held {
		m.requestDuration.WithLabelValues(route).Observe(d.Seconds())
	}
}

// connState is the http.Server's ConnState hook.
func (m *Metrics) connState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		m.connsAccepted.Inc()
		m.connsOpen.Inc()
	case http.StateClosed:
		m.connsOpen.Dec()
	case http.StateHijacked:
		// Still open: whoever took it over (the stream engine) reports its close, hijackedClosed.
	}
}

// hijackedClosed counts out a connection taken from net/http, once it has really closed.
func (m *Metrics) hijackedClosed() { m.connsOpen.Dec() }
