package main

import (
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// versionUsage heads `ordercast version --help`.
const versionUsage = `Usage: ordercast version

Prints the module version, the VCS revision and time the binary was built from, and the Go version.
`

// printVersion is `ordercast version`: the module version, the VCS revision and time the binary
// was built from (with "+dirty" for uncommitted changes), and the Go version, all read from the
// build information the Go toolchain embeds, so nothing has to be stamped in by hand.
func printVersion(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("ordercast version", flag.ContinueOnError)
	if err := parseCommand(fs, args, versionUsage, stdout, stderr); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("this binary carries no build information")
	}
	fmt.Fprintln(stdout, versionLine(bi))
	return nil
}

// versionLine renders build information as one line:
// "ordercast (devel) revision 0123abcd… (2026-11-30T23:00:00Z, dirty) go1.26.0".
func versionLine(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(unknown)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	line := "ordercast " + version
	if rev := settings["vcs.revision"]; rev != "" {
		line += " revision " + rev
		if t := settings["vcs.time"]; t != "" {
			line += " (" + t
			if settings["vcs.modified"] == "true" {
				line += ", dirty"
			}
			line += ")"
		}
	} else {
		line += " revision unknown (built without VCS information)"
	}
	return line + " " + bi.GoVersion
}
