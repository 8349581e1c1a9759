package main

import (
	"flag"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordercast/ordercast/postgres"
)

// notifyQueueFlags declares --end-stalled-listeners-after.
func (m *Main) notifyQueueFlags(fs *flag.FlagSet) {
	fs.DurationVar(&m.EndStalledListeners, "end-stalled-listeners-after", m.EndStalledListeners, "cluster: end (pg_terminate_backend) another node's LISTEN session found not reading its notifications for this long while PostgreSQL's NOTIFY queue is past 10 %; its node reconnects and catches up when it resumes (0: never, only warn)")
}

// validateNotifyQueue refuses a negative --end-stalled-listeners-after.
func (m *Main) validateNotifyQueue() error {
	if m.EndStalledListeners < 0 {
		return fmt.Errorf("--end-stalled-listeners-after must not be negative, got %s", m.EndStalledListeners)
	}
	return nil
}

// newNotifyQueueWatch returns the watch of the NOTIFY queue for st's server. Its looks ride on the
// settings check's tick (every 30 s), the one periodic round trip every cluster node makes, so
// that it needs no ticker of its own; the listener's health query, the other candidate, runs only
// on a node that heard nothing for 5 s, never on a busy cluster, the one whose queue grows.
func (m *Main) newNotifyQueueWatch(st *postgres.Store) *postgres.NotifyQueueWatch {
	w := postgres.NewNotifyQueueWatch(st)
	w.Logger = m.Logger.With("component", "notify-queue")
	w.EndStalledAfter = m.EndStalledListeners
	return w
}

// notifyQueueMetrics are the NOTIFY queue's metrics: its usage, the sessions not reading it, and
// those this node ended.
func notifyQueueMetrics(w *postgres.NotifyQueueWatch) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordercast_pg_notify_queue_usage_ratio",
			Help: "Share (0 to 1) of PostgreSQL's NOTIFY queue (the server's, 8 GB by default) holding notifications a listening session has not read, read every 30 s (NaN when it could not be); at 1 every write fails. Near 0 while every listener reads; alert above 0.1.",
		}, w.Usage),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordercast_pg_notify_stalled_sessions",
			Help: "Sessions of the PostgreSQL server found idle and waiting for their client to read (wait_event ClientWrite): listeners not reading their notifications, named in the log's warning while the queue is past 10 %.",
		}, func() float64 { return float64(w.Stalled()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordercast_pg_notify_stalled_listeners_ended_total",
			Help: "Stalled LISTEN sessions of ordercast nodes this node ended (--end-stalled-listeners-after).",
		}, func() float64 { return float64(w.Ended()) }),
	}
}
