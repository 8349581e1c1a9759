package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// envName is the environment variable that backs a flag: --stream-write-timeout is
// ORDERCAST_STREAM_WRITE_TIMEOUT.
func envName(flagName string) string {
	return "ORDERCAST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// testVariables are the ORDERCAST_* variables that are no command's flag: the test suite's
// (README, Testing), which a machine that runs the tests may have set for every process.
var testVariables = map[string]bool{"ORDERCAST_TEST_POSTGRES": true, "ORDERCAST_CHROMIUM": true, "ORDERCAST_SCREENSHOTS": true}

// strayVariables lists, sorted, the ORDERCAST_* variables of environ ("NAME=value" each) that
// name no flag of fs: a misspelt one (ORDERCAST_RETENTON), or one of a flag a release removed.
// parseWithEnv never reads them, so the setting they were meant to make is not made.
func strayVariables(fs *flag.FlagSet, environ []string) []string {
	flags := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { flags[envName(f.Name)] = true })
	var stray []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ORDERCAST_") && !flags[name] && !testVariables[name] {
			stray = append(stray, name)
		}
	}
	slices.Sort(stray)
	return stray
}

// parseCommand parses a subcommand's flags the one way every subcommand does: flags are written
// --name, every flag not given on the command line is filled from its ORDERCAST_* variable,
// --help prints the usage to stdout and returns flag.ErrHelp (exit 0, like `ordercast --help`),
// and a bad flag prints the usage to stderr and returns the error. intro is the text printed
// above the flag list. fromEnv names the flags filled from the environment.
func parseCommand(fs *flag.FlagSet, args []string, intro string, stdout, stderr io.Writer) (fromEnv map[string]bool, err error) {
	// The flag package would print its own one-dash usage to one writer; ours goes where it belongs.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fromEnv, err = parseWithEnv(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, intro, fs)
	case err != nil:
		// The usage line, then the error naming the flag and where the list is: the page of
		// every flag before it buried the one line that mattered.
		usage, _, _ := strings.Cut(strings.TrimLeft(intro, "\n"), "\n")
		fmt.Fprintln(stderr, usage)
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + strings.TrimPrefix(name, "-")
		} else {
			// The flag package names a flag with one dash; every flag here is written with two.
			msg = oneDashFlag.ReplaceAllString(msg, "flag --$1")
		}
		return nil, fmt.Errorf("%s (%s --help lists the flags)", msg, fs.Name())
	}
	return fromEnv, err
}

// oneDashFlag is how the flag package names a flag in its errors ("for flag -drain: …").
var oneDashFlag = regexp.MustCompile(`\bflag -([a-z0-9][a-z0-9-]*)`)

// printUsage writes intro, then every flag with its environment variable and default.
func printUsage(w io.Writer, intro string, fs *flag.FlagSet) {
	fmt.Fprint(w, intro)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags (each can also be set by the ORDERCAST_* variable named with it):")
	printDefaults(w, fs)
}

// commandLineOnly are the flags of a command that are never read from the environment:
// ORDERCAST_DB names the database of the node `serve` runs, and a bench or a checker run from
// the same shell (or `docker exec` into the node's container, whose image sets it) must not
// put its load or its faults into that database. The key is the FlagSet's name.
var commandLineOnly = map[string]map[string]bool{
	"ordercast bench": {"db": true},
	"ordercast check": {"db": true},
}

// parseWithEnv parses args, then fills every flag not given on the command line from its
// environment variable (but commandLineOnly), and returns the names of those it filled. A bad
// value names the flag and where it came from.
func parseWithEnv(fs *flag.FlagSet, args []string) (fromEnv map[string]bool, err error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fromEnv = map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || commandLineOnly[fs.Name()][f.Name] {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("invalid value %q for %s (flag --%s): %w", v, envName(f.Name), f.Name, serr)
			}
			fromEnv[f.Name] = true
		}
	})
	return fromEnv, err
}

// flagGiven reports whether the flag name was set on the command line or by its environment
// variable (parseWithEnv sets those through the FlagSet too).
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// printDefaults lists every flag with its environment variable and default, unless its usage says
// its default in its own words (a default that depends, as token's --ttl's does), where the
// flag's zero value would contradict them.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		env := "env " + envName(f.Name)
		if commandLineOnly[fs.Name()][f.Name] {
			env = "command line only"
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s (%s", f.Name, name, usage, env)
		if f.DefValue != "" && !strings.Contains(usage, "(default ") {
			fmt.Fprintf(w, ", default %s", f.DefValue)
		}
		fmt.Fprintln(w, ")")
	})
}
