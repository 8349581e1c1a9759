// Package check is `ordercast check`: it starts its own world from the real binary (nodes on
// PostgreSQL behind the documented nginx, or one node on SQLite), follows orders with watchers
// that resume on random nodes, advances orders with writers that record every acknowledged
// change, injects faults on a schedule, and then judges every watcher's events against every
// order's history. A run with any anomaly fails.
package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// Defaults of the long run: about 20 minutes on two cores, past a million events checked and
// 300 faults.
const (
	DefaultNodes           = 3
	DefaultWatchers        = 3000
	DefaultPartyWatchers   = 30
	DefaultCourierWatchers = 2 * couriersPerRun
	DefaultPerOrder        = 6
	DefaultRate            = 200
	DefaultDuration        = 15 * time.Minute
	DefaultSQLiteDuration  = 4 * time.Minute
	DefaultSQLiteWatchers  = 1000
	DefaultSQLiteRate      = 100
	DefaultQuiet           = 20 * time.Second
	DefaultCatchUp         = time.Minute
	DefaultFaultGap        = 2 * time.Second
	DefaultTimeout         = 40 * time.Minute
)

// PhaseConfig is one run against one store.
type PhaseConfig struct {
	Store    string // "postgres" or "sqlite"
	Nodes    int    // server processes (1 on SQLite)
	Nginx    bool   // nginx in front, with the docs' configuration
	Watchers int    // watchers, each following one order at a time
	// PartyWatchers follow one restaurant's party stream each for the whole run, the
	// restaurants shared out among them (one restaurant per 20 orders in progress).
	PartyWatchers int
	// CourierWatchers follow one courier's party stream each, the run's couriers shared out
	// among them.
	CourierWatchers int
	PerOrder        int           // watchers per order in progress
	Rate            float64       // status changes per second
	Duration        time.Duration // how long faults are injected
	Quiet           time.Duration // writes without faults afterwards
	CatchUp         time.Duration // longest wait for the watchers to catch up before judging
	FaultGap        time.Duration // mean pause between faults of one lane
	Faults          []string      // fault kinds on
}

// Config is a whole check.
type Config struct {
	Exe            string // the ordercast binary the nodes run
	DB             string // postgres:// of an existing server; empty: the checker's own
	AllowPGRestart bool   // with DB: restart that server (pg_ctl on its data directory)
	Phases         []PhaseConfig
	Seed           int64
	SelfTest       bool // corrupt the run's records on purpose and show the judge catches each
	KeepOnFailure  bool // keep the nodes' logs when a phase fails
	Timeout        time.Duration
	Out            io.Writer // progress and the summary
}

// ShortPhases is --short: about two minutes, every fault kind, PostgreSQL and SQLite.
func ShortPhases() []PhaseConfig {
	return []PhaseConfig{
		{Store: "postgres", Nodes: 3, Nginx: true, Watchers: 150, PartyWatchers: 9, CourierWatchers: couriersPerRun, PerOrder: 3, Rate: 40, Duration: 45 * time.Second,
			Quiet: 6 * time.Second, CatchUp: 30 * time.Second, FaultGap: time.Second, Faults: AllFaults},
		{Store: "sqlite", Nodes: 1, Watchers: 100, PartyWatchers: 6, CourierWatchers: couriersPerRun, PerOrder: 3, Rate: 30, Duration: 25 * time.Second,
			Quiet: 4 * time.Second, CatchUp: 30 * time.Second, FaultGap: time.Second, Faults: AllFaults},
	}
}

// Report is the result of a check.
type Report struct {
	Command   string         `json:"command"`
	Seed      int64          `json:"seed"`
	Phases    []*PhaseReport `json:"phases"`
	Anomalies int            `json:"anomalies"`
	Elapsed   string         `json:"elapsed"`
}

// ErrAnomalies is returned when the judge found anything wrong.
var ErrAnomalies = errors.New("anomalies found")

// Run runs every phase of cfg in turn and judges each. It returns ErrAnomalies (wrapped) when
// the judge found any anomaly, or when --self-test found the judge blind to a corruption.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	rep := &Report{Seed: cfg.Seed}
	var errs []error
	for _, pc := range cfg.Phases {
		if err := pc.validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", pc.Store, err)
		}
	}
	for _, pc := range cfg.Phases {
		pr, err := runPhase(ctx, cfg, pc, cfg.Out)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", pc.Store, err)
		}
		rep.Phases = append(rep.Phases, pr)
		rep.Anomalies += pr.Judgement.Total()
		if pr.Judgement.Total() > 0 {
			errs = append(errs, fmt.Errorf("%s: %d %w", pc.Store, pr.Judgement.Total(), ErrAnomalies))
		}
		if len(pr.NotInjected) > 0 {
			errs = append(errs, fmt.Errorf("%s: fault kinds on but never injected (run longer): %s", pc.Store, strings.Join(pr.NotInjected, ", ")))
		}
		if cfg.SelfTest {
			if err := selfTestError(pr.SelfTest); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", pc.Store, err))
			}
		}
	}
	rep.Elapsed = time.Since(start).Round(time.Second).String()
	return rep, errors.Join(errs...)
}

func (pc PhaseConfig) validate() error {
	switch {
	case pc.Store != "postgres" && pc.Store != "sqlite":
		return fmt.Errorf("unknown store %q", pc.Store)
	case pc.Store == "sqlite" && pc.Nodes != 1:
		return errors.New("SQLite runs one node")
	case pc.Nodes < 1 || pc.Nodes > 16:
		return fmt.Errorf("nodes must be 1–16, not %d", pc.Nodes)
	case pc.Watchers < 1 || pc.Watchers > 15000:
		// One process may hold 20,000 open files; the watchers stay well under it.
		return fmt.Errorf("watchers must be 1–15000, not %d", pc.Watchers)
	case pc.PartyWatchers < 0 || pc.PartyWatchers > 1000:
		return fmt.Errorf("party watchers must be 0–1000, not %d", pc.PartyWatchers)
	case pc.CourierWatchers < 0 || pc.CourierWatchers > 1000:
		return fmt.Errorf("courier watchers must be 0–1000, not %d", pc.CourierWatchers)
	case pc.Rate <= 0 || pc.Rate > 5000:
		return fmt.Errorf("rate must be in (0, 5000], not %g", pc.Rate)
	case pc.Duration <= 0 || pc.Duration > 24*time.Hour:
		return fmt.Errorf("duration must be in (0, 24h], not %s", pc.Duration)
	case pc.FaultGap <= 0:
		return errors.New("fault gap must be positive")
	}
	for _, f := range pc.Faults {
		if !slices.Contains(AllFaults, f) {
			return fmt.Errorf("unknown fault kind %q (known: %s)", f, strings.Join(AllFaults, ", "))
		}
	}
	return nil
}

// WriteJSON writes the report, records left out, to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteSummary prints the counts, faults, recovery times and anomalies of every phase.
func (r *Report) WriteSummary(w io.Writer) {
	for _, p := range r.Phases {
		j := p.Judgement
		fmt.Fprintf(w, "\n== %s: %d node(s)", p.Store, p.Nodes)
		if p.Nginx {
			fmt.Fprint(w, " behind nginx")
		}
		fmt.Fprintf(w, ", %d watchers, %d party watchers on %d restaurants and %d on %d couriers, %s\n",
			p.Watchers, p.PartyWatchers, p.Restaurants, p.CourierWatchers, p.Couriers, p.Duration)
		if p.PostgreSQL != "" {
			fmt.Fprintf(w, "PostgreSQL: %s\n", p.PostgreSQL)
		}
		fmt.Fprintf(w, "events checked      %d (%d watcher sessions, %d reconnects, %d of them from an earlier event, %d final 204s)\n",
			j.EventsChecked, j.Sessions, j.Reconnects, j.Rewinds, j.After204)
		if pc := j.Party; p.PartyWatchers+p.CourierWatchers > 0 {
			fmt.Fprintf(w, "party streams       %d events checked by %d watchers of %d parties (%d connections: %d resumes, %d snapshots); %d positions seen, %d events in their logs; %d orders taken from a courier's stream\n",
				pc.Events, pc.Watchers, pc.Parties, pc.Sessions, pc.Resumes, pc.Snapshots, pc.Positions, pc.LogEvents, pc.TakenAway)
		}
		fmt.Fprintf(w, "courier positions   %d checked on the order and party streams\n", j.Positions)
		if d := j.Delivery; d.Judged > 0 {
			fmt.Fprintf(w, "delivery            %d events held to %s from when they were due (p50 %.1f ms, p99 %.1f ms, max %.0f ms); %d others were due while a fault on their node was on or just over\n",
				d.Judged, lateBound, d.P50MS, d.P99MS, d.MaxMS, d.Excused)
		}
		fmt.Fprintf(w, "acknowledged writes %d (of %d attempts; %d settled by reading the history; %d events committed on %d orders, %d of them courier assignments)\n",
			j.Acks, j.Attempts, p.ReadBack, j.Committed, j.Orders, j.Assignments)
		if len(p.WriteErrors) > 0 {
			fmt.Fprintf(w, "unclear writes      %s\n", kv(p.WriteErrors))
		}
		total := 0
		for _, n := range p.Faults {
			total += n
		}
		fmt.Fprintf(w, "server paths        %d streams closed by the nodes at their write deadline, %d caught up from the store\n",
			p.Server.WriteTimeouts, p.Server.CaughtUp)
		fmt.Fprintf(w, "faults              %d: %s\n", total, kv(p.Faults))
		if kills := p.Faults[FNodeKill] + p.Faults[FSQLiteKill]; kills > 0 {
			fmt.Fprintf(w, "  the %d kills caught %d writes in flight to the node killed\n", kills, p.KilledInFlight)
		}
		if len(p.Skipped) > 0 {
			fmt.Fprintf(w, "  skipped (nothing to act on, not counted): %s\n", kv(p.Skipped))
		}
		kinds := make([]string, 0, len(p.Recovery))
		for k := range p.Recovery {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			st := p.Recovery[k]
			fmt.Fprintf(w, "  recovery %-18s median %8.0f ms   max %8.0f ms   (%d faults", k, st.MedianMS, st.MaxMS, st.Count)
			if st.Unrecovered > 0 {
				fmt.Fprintf(w, ", %d not measured", st.Unrecovered)
			}
			fmt.Fprintln(w, ")")
		}
		fmt.Fprintf(w, "anomalies           %d", j.Total())
		if j.Total() > 0 {
			fmt.Fprintf(w, ": %s", kv(j.Anomalies))
		}
		fmt.Fprintln(w)
		for _, a := range j.Examples {
			fmt.Fprintf(w, "  %s order %s: %s\n", a.Kind, a.Order, a.Detail)
		}
		if len(p.SelfTest) > 0 {
			fmt.Fprintln(w, "self-test (the run's records corrupted on purpose):")
			for _, s := range p.SelfTest {
				res := "caught"
				if s.Skipped {
					res = "NOTHING TO CORRUPT"
				} else if !s.Caught {
					res = "MISSED"
				}
				fmt.Fprintf(w, "  %-52s -> %-20s %s\n", s.Corruption, s.Want, res)
			}
		}
	}
	fmt.Fprintf(w, "\n%d anomalies in %s\n", r.Anomalies, r.Elapsed)
}

func kv(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
