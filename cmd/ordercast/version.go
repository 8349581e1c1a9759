package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
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

// build is where a binary came from, as its build information says.
type build struct {
	version   string // the module version, "(devel)" for a build from a checkout
	revision  string // the VCS revision, "" when unknown
	time      string // the revision's commit time, "" when unknown
	dirty     bool   // built with uncommitted changes
	stamped   bool   // the revision was stamped in at build, not recorded by the toolchain
	goVersion string
}

// id names the build in the cluster's view of its nodes (clusterSettings.Build): its revision
// (with "+dirty"), else its module version, else, for a binary built with neither (go build
// -buildvcs=false from a checkout), a digest of the executable file itself: two such builds
// would otherwise look alike, and a rolling upgrade of them would not show.
func (b build) id() string {
	switch {
	case b.revision != "" && b.dirty:
		return b.revision + "+dirty"
	case b.revision != "":
		return b.revision
	case b.version != "(devel)" && b.version != "(unknown)":
		return b.version
	}
	return executableDigest()
}

// executableDigest is "sha256:" and the first 12 hex digits of the running executable's SHA-256,
// or "(unknown)" when the file cannot be read.
func executableDigest() string {
	path, err := os.Executable()
	if err != nil {
		return "(unknown)"
	}
	f, err := os.Open(path)
	if err != nil {
		return "(unknown)"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "(unknown)"
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:12]
}

// readBuild reads build information; stamped is the revision stamped in at build, used when the
// build information has none.
func readBuild(bi *debug.BuildInfo, stamped string) build {
	b := build{version: bi.Main.Version, goVersion: bi.GoVersion}
	if b.version == "" {
		b.version = "(unknown)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.dirty = s.Value == "true"
		}
	}
	if b.revision == "" && stamped != "" {
		b.revision, b.stamped = stamped, true
	}
	return b
}

// versionLine renders build information as one line:
// "ordercast (devel) revision 0123abcd… (2026-11-30T23:00:00Z, dirty) go1.26.0"; stamped is
// the revision stamped in at build, used when the build information has none.
func versionLine(bi *debug.BuildInfo, stamped string) string {
	b := readBuild(bi, stamped)
	line := "ordercast " + b.version
	switch {
	case b.stamped:
		line += " revision " + b.revision + " (stamped at build)"
	case b.revision != "":
		line += " revision " + b.revision
		if b.time != "" {
			line += " (" + b.time
			if b.dirty {
				line += ", dirty"
			}
			line += ")"
		}
	default:
		line += " revision unknown (built without VCS information)"
	}
	return line + " " + b.goVersion
}

// thisBuild is where this binary came from (version "(unknown)" if it carries no build information).
func thisBuild() build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	return readBuild(bi, revision)
}

// buildInfoMetric is ordercast_build_info: 1, labelled with what `ordercast version` prints, so
// a dashboard shows which build each node runs (during a rolling upgrade, which are old).
func buildInfoMetric(b build) prometheus.Collector {
	revision := b.revision
	if b.dirty {
		revision += "+dirty"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ordercast_build_info",
		Help:        "1, labelled with the node's module version, VCS revision (+dirty for uncommitted changes; empty when unknown) and Go version.",
		ConstLabels: prometheus.Labels{"version": b.version, "revision": revision, "goversion": b.goVersion},
	})
	g.Set(1)
	return g
}
