package main_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/internal/testutil"
)

// TestAMisspeltVariableIsNamed: an ORDERCAST_* variable that names no flag of serve (a typo, or
// a flag a release removed) is ignored, as before, but no longer silently: the node names it at
// start. The variables of its flags, and the test suite's own, are not named.
func TestAMisspeltVariableIsNamed(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "ordercast.db"), "ORDERCAST_RETENTON=192h", "ORDERCAST_TEST_POSTGRES=postgres://x")
	testutil.WaitFor(t, "the warning", func() bool { return strings.Contains(n.stderr.String(), "name no flag of serve") })
	for _, line := range strings.Split(n.stderr.String(), "\n") {
		if !strings.Contains(line, "name no flag of serve") {
			continue
		}
		if !strings.Contains(line, "ORDERCAST_RETENTON") || strings.Contains(line, "ORDERCAST_DB") || strings.Contains(line, "ORDERCAST_TEST_POSTGRES") {
			t.Errorf("the warning names %q, want ORDERCAST_RETENTON alone", line)
		}
	}
}
