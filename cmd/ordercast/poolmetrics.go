package main

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reports a PostgreSQL store's connection pool, read once a scrape: how many of
// its connections are in use, idle or being opened, its bound, and how often a query had to wait
// for a free connection and for how long. A pool at its bound with waits growing is a node
// whose reads and writes queue for connections (raise pool_max_conns, or look at what holds
// them); waits while the database is away are the outage, not the pool.
type poolCollector struct {
	stat func() *pgxpool.Stat

	conns, max, acquires, waited, waitSeconds, canceled *prometheus.Desc
}

func newPoolCollector(stat func() *pgxpool.Stat) *poolCollector {
	return &poolCollector{
		stat: stat,
		conns: prometheus.NewDesc("ordercast_pg_pool_connections",
			"Connections of this node's PostgreSQL pool by state: acquired (in use), idle, constructing (being opened).", []string{"state"}, nil),
		max: prometheus.NewDesc("ordercast_pg_pool_max_connections",
			"The bound of this node's PostgreSQL pool (pool_max_conns in the --db URL, 16 by default).", nil, nil),
		acquires: prometheus.NewDesc("ordercast_pg_pool_acquires_total",
			"Connections taken from the pool for a query or a transaction.", nil, nil),
		waited: prometheus.NewDesc("ordercast_pg_pool_waited_acquires_total",
			"Of those, the ones that found no idle connection and waited for one to be opened or freed.", nil, nil),
		waitSeconds: prometheus.NewDesc("ordercast_pg_pool_wait_seconds_total",
			"Time those waits took, in all; its rate over ordercast_pg_pool_waited_acquires_total's is the average wait.", nil, nil),
		canceled: prometheus.NewDesc("ordercast_pg_pool_canceled_acquires_total",
			"Waits for a connection that ended with their request (its deadline, or the client gone) before one was free.", nil, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.max, c.acquires, c.waited, c.waitSeconds, c.canceled} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, st.EmptyAcquireWaitTime().Seconds())
	ch <- prometheus.MustNewConstMetric(c.canceled, prometheus.CounterValue, float64(st.CanceledAcquireCount()))
}
