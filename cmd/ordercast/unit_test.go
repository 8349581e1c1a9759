package main_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitFile is the systemd unit docs/deploy.md tells operators to install.
var unitFile = filepath.Join("..", "..", "deploy", "ordercast.service")

// unitListKeys are the settings of the unit that systemd keeps as lists: each assignment adds to
// the list, and an empty one resets it. Any other setting takes its last assignment.
var unitListKeys = []string{
	"AmbientCapabilities", "CapabilityBoundingSet", "Environment", "EnvironmentFile",
	"LoadCredential", "RestartPreventExitStatus", "RestrictAddressFamilies", "SystemCallFilter",
}

// unitLine is one line of the unit: a setting, or a setting commented out as an option for the
// operator ("#Key=value", no space after the #, which prose comments have).
type unitLine struct {
	n              int // 1-based
	section        string
	key, value     string
	commented, set bool
}

var (
	unitSetting   = regexp.MustCompile(`^([A-Za-z]+)=(.*)$`)
	unitCommented = regexp.MustCompile(`^#([A-Za-z]+)=(.*)$`)
)

// readUnit parses the unit file into its lines.
func readUnit(t *testing.T) []unitLine {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var lines []unitLine
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]"):
			section = text
		case unitSetting.MatchString(text):
			m := unitSetting.FindStringSubmatch(text)
			lines = append(lines, unitLine{n: n, section: section, key: m[1], value: m[2], set: true})
		case unitCommented.MatchString(text):
			m := unitCommented.FindStringSubmatch(text)
			lines = append(lines, unitLine{n: n, section: section, key: m[1], value: m[2], commented: true})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", unitFile, err)
	}
	return lines
}

// effective is what systemd makes of a setting in a section: a list's items since its last empty
// assignment, or a single setting's last value (as a one-item list). Commented lines do not count.
func effective(lines []unitLine, section, key string) []string {
	var got []string
	for _, l := range lines {
		if !l.set || l.section != section || l.key != key {
			continue
		}
		switch {
		case !slices.Contains(unitListKeys, key):
			got = []string{l.value}
		case l.value == "":
			got = nil
		default:
			got = append(got, strings.Fields(l.value)...)
		}
	}
	return got
}

// TestUnitCommentedSettingsTakeEffect: every setting the unit offers commented out (the TLS
// credentials, the capability for a port below 1024) takes effect when an operator uncomments it
// as documented. systemd reads an empty CapabilityBoundingSet= or AmbientCapabilities= as "reset
// the list", so a commented capability above the hardening's empty ones would, uncommented, be
// cleared without a word and the node could not bind :443.
func TestUnitCommentedSettingsTakeEffect(t *testing.T) {
	lines := readUnit(t)
	var offered []string
	for i, l := range lines {
		if !l.commented {
			continue
		}
		offered = append(offered, l.key)
		uncommented := slices.Clone(lines)
		uncommented[i].commented, uncommented[i].set = false, true
		got := effective(uncommented, l.section, l.key)
		for _, want := range strings.Fields(l.value) {
			if !slices.Contains(got, want) {
				t.Errorf("%s:%d: uncommented, #%s=%s leaves %s=%s: a later assignment in %s overrides or resets it",
					unitFile, l.n, l.key, l.value, l.key, strings.Join(got, " "), l.section)
			}
		}
	}
	// The capability lines are what docs/deploy.md points to for :443; the test must see them.
	for _, key := range []string{"AmbientCapabilities", "CapabilityBoundingSet", "PrivateUsers"} {
		if !slices.Contains(offered, key) {
			t.Errorf("%s offers no commented %s= for a port below 1024", unitFile, key)
		}
	}
}
