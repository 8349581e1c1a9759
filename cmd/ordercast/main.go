// Command ordercast runs the ordercast service and its tools.
//
//	ordercast serve [flags]   run the service
//	ordercast bench [flags]   measure capacity, latency and the cost of each transport
//	ordercast check [flags]   prove under faults that no watcher loses an event
//	ordercast token [flags]   print a token signed with the server's secret
//	ordercast version         print the module version and the VCS revision it was built from
//	ordercast help            list the subcommands
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ordercast/ordercast/internal/bench"
	"github.com/ordercast/ordercast/internal/migrations"
	"github.com/ordercast/ordercast/internal/storehealth"
)

func main() {
	// The first signal starts a graceful shutdown. A SIGINT after it ends the process at once, by
	// that signal, as it would with no handler, after a line that says why the drain stopped:
	// Ctrl-C twice, as usual. A repeated SIGTERM does not: a supervisor sends SIGTERM once and
	// then SIGKILL, while GNU timeout, and a kill of the process group, deliver the one SIGTERM
	// twice at once, which must not skip the drain. One channel, with room for both, takes
	// them: a second signal sent at once is not lost between two registrations.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		for sig := range sigs {
			if sig != os.Interrupt {
				fmt.Fprintln(os.Stderr, "ordercast: SIGTERM again: the drain goes on (a SIGINT, Ctrl-C, ends the process at once)")
				continue
			}
			fmt.Fprintln(os.Stderr, "ordercast: SIGINT during the shutdown: exiting at once, open streams cut (their clients resume with Last-Event-ID)")
			signal.Reset(sig)
			if p, err := os.FindProcess(os.Getpid()); err == nil && p.Signal(sig) == nil {
				// The signal, handled as if no handler had ever been, ends the process; the
				// exit below is for a kernel that took its time.
				time.Sleep(time.Second)
			}
			os.Exit(1)
		}
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "ordercast:", err)
		os.Exit(exitCode(err))
	}
}

// ExitConfig is the exit status of a serve whose flags or environment are wrong, whose database
// refuses it as configured (a role, a password or a database name the server does not know, a
// privilege missing, an SQLite path that cannot hold a database), or whose database a later
// release migrated or refused a migration, which no restart mends: the unit's
// RestartPreventExitStatus names it, so that systemd stops there instead of starting the node
// again every RestartSec and filling the journal with the same line. Every other failure (a
// database away for longer than --db-wait, a port taken) exits 1 and is restarted.
const ExitConfig = 2

// configError is a refusal of serve's flags or environment, before anything was opened.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// exitCode is the exit status of a run that failed with err. A database that refuses the node's
// settings (storehealth.ErrMisconfigured) is ExitConfig too, and so is one whose schema is newer
// than the binary's, or one that refused a migration: no restart of this binary mends any.
func exitCode(err error) int {
	if _, ok := errors.AsType[configError](err); ok || errors.Is(err, migrations.ErrNewer) || errors.Is(err, migrations.ErrRefused) ||
		errors.Is(err, storehealth.ErrMisconfigured) {
		return ExitConfig
	}
	return 1
}

const usage = `ordercast pushes live order status to customers over Server-Sent Events.

Usage:
  ordercast serve [flags]    run the service (ordercast serve --help lists the flags)
  ordercast bench [flags]    measure watchers, memory, latency and transports on loopback
  ordercast check [flags]    prove under faults that no watcher loses, repeats or reorders an event
  ordercast token [flags]    print an actor or tracking token (ordercast token --help)
  ordercast backup --to F    copy a running node's SQLite database, consistent, to the new file F
  ordercast version          print the version and the VCS revision of this binary

Every flag of every subcommand can also be set through an ORDERCAST_* environment variable
(--stream-write-timeout is ORDERCAST_STREAM_WRITE_TIMEOUT); the command line wins.
`

// run dispatches a subcommand. It returns when the command is done or ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no subcommand given")
	}
	switch args[0] {
	case "serve":
		m := NewMain(stdout, stderr)
		if err := m.ParseFlags(args[1:]); err != nil {
			return configError{err}
		}
		return m.Serve(ctx)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(ctx, args[1:], stdout, stderr)
	case "bench-worker": // hidden: a client process of bench, commanded over stdin/stdout
		return bench.RunWorker(ctx, os.Stdin, stdout)
	case "bench-floor": // hidden: the plain push server that bench --floor measures beside ordercast
		return bench.RunFloor(ctx, stdout)
	case "token":
		return runToken(args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		return printVersion(stdout, stderr, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}
