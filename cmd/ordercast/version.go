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

// revision is the VCS revision stamped in with -ldflags "-X main.revision=…" by a build that has
// no VCS information of its own: the container image, whose build context leaves .git out (see
// the Dockerfile's REVISION argument). The toolchain's own record wins when there is one.
var revision string

// printVersion is `ordercast version`: the module version, the VCS revision and time the binary
// was built from (with "+dirty" for uncommitted changes), and the Go version, all read from the
// build information the Go toolchain embeds, so nothing has to be stamped in by hand.
func printVersion(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("ordercast version", flag.ContinueOnError)
	if _, err := parseCommand(fs, args, versionUsage, stdout, stderr); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("this binary carries no build information")
	}
	fmt.Fprintln(stdout, versionLine(bi, revision))
	return nil
}

// versionLine renders build information as one line:
// "ordercast (devel) revision 0123abcd… (2026-11-30T23:00:00Z, dirty) go1.26.0"; stamped is
// the revision stamped in at build, used when the build information has none.
func versionLine(bi *debug.BuildInfo, stamped string) string {
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
	} else if stamped != "" {
		line += " revision " + stamped + " (stamped at build)"
	} else {
		line += " revision unknown (built without VCS information)"
	}
	return line + " " + bi.GoVersion
}
