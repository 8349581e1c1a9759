package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ordercast/ordercast/internal/bench"
	"github.com/ordercast/ordercast/internal/poller"
)

// benchUsage heads `ordercast bench --help`.
const benchUsage = `Usage: ordercast bench [flags]

Measures watchers, memory per stream, delivery latency and cost per transport, on loopback.
`

// runBench is the bench subcommand: it parses the flags and hands the work to package bench.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := bench.Config{
		Watchers: bench.DefaultWatchers, Rate: bench.DefaultRate, Duration: bench.DefaultDuration,
		PollInterval: bench.DefaultPollInterval, Timeout: bench.DefaultTimeout, Workers: -1, Nodes: 1, PerOrder: 1,
		HoldStreams: poller.Supported, // serve's default
	}
	// The servers the bench starts hold streams as serve would with this environment.
	if v := os.Getenv("ORDERCAST_HOLD_STREAMS"); v != "" {
		hold, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("ORDERCAST_HOLD_STREAMS: %q is not a boolean", v)
		}
		cfg.HoldStreams = hold
	}
	fs := flag.NewFlagSet("ordercast bench", flag.ContinueOnError)
	fs.IntVar(&cfg.Watchers, "watchers", cfg.Watchers, "watchers to open (`N`)")
	fs.IntVar(&cfg.PerOrder, "per-order", cfg.PerOrder, "watchers per order (`K`)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "status changes per second to commit")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to commit changes")
	transport := fs.String("transport", bench.TransportSSE, "how watchers watch: poll, longpoll, sse or ws")
	compare := fs.Bool("compare", false, "run every transport in turn and compare them")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", cfg.PollInterval, "interval of the poll transport")
	fs.StringVar(&cfg.URL, "url", "", "bench running servers at this `URL` (comma-separated for several nodes) instead of starting them")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "with --url: where each server serves /metrics when it does so on its own --metrics-addr (`URL`s, comma-separated, one per --url in the same order; default: each --url's /metrics)")
	fs.StringVar(&cfg.Token, "token", "", "with --url: an admin or system actor token for the bench's writes (ordercast token --role system); the servers need --public-tracking and limits that admit the load")
	fs.StringVar(&cfg.DB, "db", "", "database of the servers the bench starts: empty for a fresh SQLite file, or a postgres:// URL")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "server nodes to start (more than 1 needs --db postgres://…)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client processes holding the watchers (0: this one; -1: one per 9,000 watchers)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "hard limit on the whole bench")
	fs.BoolVar(&cfg.WritesByOrder, "writes-by-order", cfg.WritesByOrder, "send every change of an order to one node (order i to node i mod --nodes), as a load balancer hashing the order id does; without it, each change goes to any node")
	fs.IntVar(&cfg.Writers, "writers", cfg.Writers, "status changes in flight at most (0: one per 20 changes/s of --rate, 32 to 512; 512 with --find-max)")
	fs.BoolVar(&cfg.Floor, "floor", false, "after the ordercast run, run the same workload against a plain in-memory push server (no store, no auth, one write a watcher in the request that makes the change): what any Go HTTP server pays for it on this machine in the same hour; its row is \"floor\"")
	fs.BoolVar(&cfg.FindMax, "find-max", false, "raise the rate from --rate in steps until p99 from the writes' due times passes --p99-bound or the rate is not reached; report the highest that held")
	fs.DurationVar(&cfg.P99Bound, "p99-bound", bench.DefaultP99Bound, "with --find-max: the p99 latency from the writes' due times a rate must stay within")
	fs.DurationVar(&cfg.StepDuration, "step", bench.DefaultStepDuration, "with --find-max: how long each rate is held")
	fs.IntVar(&cfg.Restaurants, "restaurants", 0, "party-stream workload: `R` restaurants, each with --per-restaurant orders and ONE restaurant stream that must get every change of them (SSE, this process)")
	fs.IntVar(&cfg.PerRestaurant, "per-restaurant", bench.DefaultPerRestaurant, "with --restaurants: active orders per restaurant (`K`)")
	fs.IntVar(&cfg.Couriers, "couriers", 0, "location workload: `C` couriers, courier i carrying order i, post positions to the orders the --watchers SSE watchers watch (spread over --workers like them); with --rate too, status changes run on the same orders at the same time")
	fs.DurationVar(&cfg.LocationEvery, "location-every", bench.DefaultLocationEvery, "location workload: how often each courier posts")
	fs.IntVar(&cfg.Posters, "posters", bench.DefaultPosters, "location workload: position requests in flight at most, over all client processes, each on a keep-alive connection")
	fs.IntVar(&cfg.WriteBatch, "write-batch", 0, "send the status changes due in each tick through POST /v1/status-changes, up to `N` a request, as an integration does (0 or 1: one request per change); latency counts from the start of the request that carries a change")
	fs.IntVar(&cfg.PostBatch, "post-batch", 0, "location workload: send the positions due in each tick through POST /v1/locations, up to `N` a request, as an integration does (0 or 1: each courier posts its own)")
	fs.Func("location-interval", "location workload: the servers' --location-interval, the cap on positions per order and stream (default: theirs, 1s)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		cfg.LocationInterval = &d
		return nil
	})
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	htmlFile := fs.String("html", "", "also write a self-contained HTML report to this `file`")
	if _, err := parseCommand(fs, args, benchUsage, stdout, stderr); err != nil {
		return err
	}
	// With --couriers, status changes run beside the positions only when asked for with --rate.
	fs.Visit(func(f *flag.Flag) { cfg.WithStatus = cfg.WithStatus || f.Name == "rate" })
	cfg.Transports = []string{*transport}
	if *compare {
		cfg.Transports = bench.Transports
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cfg.Exe = exe
	cfg.Progress, cfg.Stderr = stderr, stderr
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			cfg.TTY = true
		}
	}
	cfg.Store = benchStore(cfg.DB, cfg.URL)
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		rep.Command = "ordercast bench " + strings.Join(args, " ")
		var werr error
		if *asJSON {
			werr = rep.WriteJSON(stdout)
		} else {
			werr = rep.WriteTable(stdout)
		}
		if *htmlFile != "" {
			werr = errors.Join(werr, writeHTML(*htmlFile, rep))
		}
		err = errors.Join(err, werr)
		// A script must be able to tell a run that measured nothing trustworthy.
		if f := rep.Failures(); len(f) > 0 {
			err = errors.Join(err, fmt.Errorf("bench run failed: %s", strings.Join(f, "; ")))
		}
	}
	return err
}

func writeHTML(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteHTML(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// benchStore says what the servers the bench starts store in, as serve runs them with this
// environment: "" when it starts none (--url).
func benchStore(db, url string) string {
	switch {
	case url != "":
		return ""
	case strings.HasPrefix(db, "postgres"):
		return "PostgreSQL"
	}
	return "SQLite, --sqlite-sync " + cmp.Or(strings.ToLower(os.Getenv(envName("sqlite-sync"))), defaultSQLiteSync)
}
