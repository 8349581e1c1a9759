package bench

import (
	"strings"
	"testing"

	"github.com/ordercast/ordercast/internal/pgtest"
)

// TestPostgresCPUIsRead: the bench finds the postmaster of a PostgreSQL on this machine from a
// connection's backend, and the CPU it reads of it grows by what a query burns in a backend.
func TestPostgresCPUIsRead(t *testing.T) {
	db := pgtest.NewDatabase(t)
	sep := "?"
	if strings.Contains(db, "?") {
		sep = "&"
	}
	pid, err := findPostmaster(t.Context(), db+sep+"pool_max_conns=4") // as a --db may carry

	if err != nil {
		t.Fatalf("findPostmaster: %v", err)
	}
	if st, err := readProcStat(pid); err != nil || st.comm != "postgres" {
		t.Fatalf("postmaster %d: %+v, %v", pid, st, err)
	}
	before, err := treeCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, db)
	var n int64
	// A few tenths of a second of one core in the backend.
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM generate_series(1, 4000000)").Scan(&n); err != nil || n != 4e6 {
		t.Fatalf("count: %d, %v", n, err)
	}
	after, err := treeCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 0.1 {
		t.Errorf("PostgreSQL's CPU grew by %.2f s over a query of a few tenths of a second", after-before)
	}
}

// TestPostgresCPUElsewhere: a PostgreSQL on another machine cannot be read, and the reason says
// so without trying to connect.
func TestPostgresCPUElsewhere(t *testing.T) {
	_, err := findPostmaster(t.Context(), "postgres://postgres@db.example.com:5432/x")
	if err == nil || !strings.Contains(err.Error(), "db.example.com is not on this machine") {
		t.Fatalf("findPostmaster = %v, want not on this machine", err)
	}
}

// TestReportSaysWhatTheServerCPULeavesOut: on PostgreSQL the report prints the database's CPU
// per change beside the server's, or says the server's leaves it out.
func TestReportSaysWhatTheServerCPULeavesOut(t *testing.T) {
	s := stepOutcome{cpuSeconds: 0.6, dbCPUSeconds: 0.3, dbMeasured: true, window: 10, counts: Counts{Delivered: 2000}}
	s.load.committed, s.load.offered, s.load.achieved = 1000, 100, 100
	measured := Result{Transport: "sse", DBCPU: &DBCPU{}}
	measured.setLoad(s)
	unread := Result{Transport: "sse", DBCPU: &DBCPU{Unmeasured: "PostgreSQL's processes could not be read here: PostgreSQL at db is not on this machine"}}
	s.dbMeasured, s.dbCPUSeconds = false, 0
	unread.setLoad(s)
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{measured, "database CPU µs/change: 300 (150 per delivered change), PostgreSQL's processes (all of that server's, any other client's work included) over the same window as the server's 600"},
		{unread, "server CPU excludes the database: PostgreSQL's processes could not be read here: PostgreSQL at db is not on this machine"},
	} {
		if n := tc.r.notes(); !strings.Contains(strings.Join(n, "\n"), tc.want) {
			t.Errorf("notes %q lack %q", n, tc.want)
		}
	}
	if *measured.DBCPU != (DBCPU{Seconds: 0.3, PerChangeMicros: 300, PerDeliveredMicros: 150}) {
		t.Errorf("DBCPU %+v", *measured.DBCPU)
	}
}
