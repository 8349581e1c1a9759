package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ordercast/ordercast/internal/check"
)

// checkUsage heads `ordercast check --help`.
const checkUsage = `Usage: ordercast check [flags]

Starts nodes of this binary (PostgreSQL behind nginx, and SQLite), follows orders with
watchers, changes them, injects faults, and checks that no watcher lost, duplicated or
reordered an event. Exits non-zero on any anomaly. Everything stays on 127.0.0.0/8.
`

// runCheck is the check subcommand: it parses the flags and hands the work to package check.
// It is a subcommand, not a test, so an operator runs it against the very build they deploy
// and CI runs the same thing.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordercast check", flag.ContinueOnError)
	short := fs.Bool("short", false, "about two minutes: every fault kind, on PostgreSQL (3 nodes, nginx) and SQLite (the CI run)")
	db := fs.String("db", "", "postgres:// URL of an existing server to create the run's database on (default: start a throwaway PostgreSQL of its own)")
	allowRestart := fs.Bool("allow-pg-restart", false, "with --db: restart that server (pg_ctl on its data directory) as a fault")
	nodes := fs.Int("nodes", check.DefaultNodes, "nodes on PostgreSQL")
	nginx := fs.Bool("nginx", true, "put nginx (the configuration of docs/deploy.md) in front of the PostgreSQL nodes")
	watchers := fs.Int("watchers", check.DefaultWatchers, "watchers on PostgreSQL")
	partyWatchers := fs.Int("party-watchers", check.DefaultPartyWatchers, "watchers that each follow one restaurant's party stream for the whole run (one restaurant per 20 orders in progress), on each store; --short: 9 on PostgreSQL, 6 on SQLite unless given")
	courierWatchers := fs.Int("courier-watchers", check.DefaultCourierWatchers, "watchers that each follow one courier's party stream for the whole run (the run has 3 couriers), on each store; --short: 3 unless given")
	perOrder := fs.Int("per-order", check.DefaultPerOrder, "watchers per order in progress")
	rate := fs.Float64("rate", check.DefaultRate, "status changes per second on PostgreSQL")
	duration := fs.Duration("duration", check.DefaultDuration, "how long faults run on PostgreSQL (0 skips PostgreSQL)")
	sqliteDuration := fs.Duration("sqlite-duration", check.DefaultSQLiteDuration, "how long faults run on SQLite (0 skips SQLite)")
	sqliteWatchers := fs.Int("sqlite-watchers", check.DefaultSQLiteWatchers, "watchers on SQLite")
	sqliteRate := fs.Float64("sqlite-rate", check.DefaultSQLiteRate, "status changes per second on SQLite")
	quiet := fs.Duration("quiet", check.DefaultQuiet, "writes without faults after the faults, before judging")
	gap := fs.Duration("fault-gap", check.DefaultFaultGap, "mean pause between two faults of one lane (node faults and watcher faults run in two lanes)")
	faults := fs.String("faults", strings.Join(check.AllFaults, ","), "fault kinds on, comma-separated (\"none\" for none)")
	selfTest := fs.Bool("self-test", false, "also corrupt the run's records on purpose and fail unless the judge catches each corruption")
	report := fs.String("report", "", "write the JSON report to this `file`")
	seed := fs.Int64("seed", 0, "random seed (0: from the clock); printed, so a run can be repeated")
	timeout := fs.Duration("timeout", check.DefaultTimeout, "hard limit on the whole check")
	keep := fs.Bool("keep", false, "keep the nodes' logs when a phase fails")
	if _, err := parseCommand(fs, args, checkUsage, stdout, stderr); err != nil {
		return err
	}
	var kinds []string
	if *faults != "none" && *faults != "" {
		kinds = strings.Split(*faults, ",")
	}
	cfg := check.Config{DB: *db, AllowPGRestart: *allowRestart, Seed: *seed, SelfTest: *selfTest,
		KeepOnFailure: *keep, Timeout: *timeout, Out: stdout}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	if *short {
		cfg.Phases = check.ShortPhases()
		cfg.Timeout = min(cfg.Timeout, 8*time.Minute)
		for i := range cfg.Phases {
			cfg.Phases[i].Faults = kinds
		}
		if !*nginx {
			cfg.Phases[0].Nginx = false
		}
		for i := range cfg.Phases {
			if flagGiven(fs, "party-watchers") {
				cfg.Phases[i].PartyWatchers = *partyWatchers
			}
			if flagGiven(fs, "courier-watchers") {
				cfg.Phases[i].CourierWatchers = *courierWatchers
			}
		}
	} else {
		if *duration > 0 {
			cfg.Phases = append(cfg.Phases, check.PhaseConfig{Store: "postgres", Nodes: *nodes, Nginx: *nginx,
				Watchers: *watchers, PartyWatchers: *partyWatchers, CourierWatchers: *courierWatchers, PerOrder: *perOrder, Rate: *rate, Duration: *duration, Quiet: *quiet,
				CatchUp: check.DefaultCatchUp, FaultGap: *gap, Faults: kinds})
		}
		if *sqliteDuration > 0 {
			cfg.Phases = append(cfg.Phases, check.PhaseConfig{Store: "sqlite", Nodes: 1,
				Watchers: *sqliteWatchers, PartyWatchers: *partyWatchers, CourierWatchers: *courierWatchers, PerOrder: *perOrder, Rate: *sqliteRate, Duration: *sqliteDuration, Quiet: *quiet,
				CatchUp: check.DefaultCatchUp, FaultGap: *gap, Faults: kinds})
		}
	}
	if len(cfg.Phases) == 0 {
		return errors.New("nothing to run: --duration and --sqlite-duration are both 0")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cfg.Exe = exe
	fmt.Fprintf(stdout, "ordercast check: seed %d, binary %s\n", cfg.Seed, exe)
	rep, err := check.Run(ctx, cfg)
	if rep != nil {
		rep.Command = "ordercast check " + strings.Join(args, " ")
		rep.WriteSummary(stdout)
		if *report != "" {
			err = errors.Join(err, rep.WriteJSON(*report))
		}
	}
	return err
}
