package storehealth

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/internal/testutil"
)

// TestAnOutageLogsEachReasonOnce: an outage found first by a write that timed out ("not
// answering") and then by a probe that finds the tables locked ended with "was=locked" after a
// start that said otherwise, and nothing between said why. Each reason an outage is found to
// have is logged the first time, and only then: two causes taking turns log two lines, not one
// a probe.
func TestAnOutageLogsEachReasonOnce(t *testing.T) {
	logs := &testutil.Buffer{}
	tr := &Tracker{Logger: slog.New(slog.NewTextHandler(logs, nil))}
	cause := errors.New("timeout")
	for _, reason := range []string{"not answering", "locked", "not answering", "locked", "locked"} {
		tr.Fail(reason, cause)
	}
	tr.OK(ProvesAnswer)
	if n, m, o := logs.Count("database unavailable;"), logs.Count("for another reason"), logs.Count("available again"); n != 1 || m != 1 || o != 1 {
		t.Errorf("an outage of two reasons taking turns logged %d starts, %d changes, %d ends; want one of each:\n%s", n, m, o, logs)
	}
	if !strings.Contains(logs.String(), `reason=locked was="not answering"`) || !strings.Contains(logs.String(), "was=locked") {
		t.Errorf("the change and the end do not name the reasons:\n%s", logs)
	}
	// The next outage starts afresh.
	tr.Fail("locked", cause)
	if n := logs.Count("database unavailable;"); n != 2 {
		t.Errorf("a second outage logged %d starts in all, want 2:\n%s", n, logs)
	}
}

// TestOnlyAWriteEndsAFullDisk: a full disk's outage is not ended by a ping or a commit that wrote
// nothing (the database answers those with no room to write), only by a write; any other outage
// ends with the first answer; a read ends none.
func TestOnlyAWriteEndsAFullDisk(t *testing.T) {
	tr := &Tracker{Full: "out of disk space"}
	cause := errors.New("no space left on device")
	tr.Fail("out of disk space", cause)
	for _, p := range []Proof{ProvesNothing, ProvesAnswer} {
		if tr.OK(p); tr.Reason() != "out of disk space" {
			t.Fatalf("a full disk's outage ended by proof %d, want only a write to end it", p)
		}
	}
	if tr.OK(ProvesWrite); tr.Reason() != "" {
		t.Errorf("a write left the outage standing: %q", tr.Reason())
	}
	tr.Fail("read-only", cause)
	if tr.OK(ProvesNothing); tr.Reason() != "read-only" {
		t.Errorf("a read ended an outage")
	}
	if tr.OK(ProvesAnswer); tr.Reason() != "" {
		t.Errorf("an answer left a read-only outage standing: %q", tr.Reason())
	}
}
