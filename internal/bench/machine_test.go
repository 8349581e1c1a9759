package bench

import (
	"math"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice, in ticks of 1/100 s.
	m, err := parseProcStat([]byte("cpu  1000 50 300 9000 40 5 45 200 70 0\ncpu0 500 25 150 4500 20 2 22 100 35 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// busy: user+nice+system+irq+softirq = 1400 ticks; idle, iowait, and guest (inside user) left out.
	if m.busy != 14 || m.steal != 2 {
		t.Errorf("parsed %+v, want busy 14 s and steal 2 s", m)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) took it", bad)
		}
	}
}

func TestMachineLoadNote(t *testing.T) {
	before, after := machineCPU{busy: 100, steal: 1}, machineCPU{busy: 117.2, steal: 1}
	m := loadOver(before, after, processSeconds{server: 9.5}, 10, 2)
	if m.BusyCores < 1.7199 || m.BusyCores > 1.7201 || m.ServerCores != 0.95 || m.StolenCores != 0 {
		t.Fatalf("loadOver = %+v, want 1.72 busy, 0.95 the server's, none stolen", m)
	}
	if got, want := m.note(), "cores busy during the load: 1.72 of 2 (the server's processes 0.95, everything else 0.77)"; got != want {
		t.Errorf("note = %q, want %q", got, want)
	}
	if got, want := loadOver(before, after, processSeconds{server: 9.5, db: 3}, 10, 2).note(), "cores busy during the load: 1.72 of 2 (the server's processes 0.95, PostgreSQL's 0.30, everything else 0.47)"; got != want {
		t.Errorf("note with the database = %q, want %q", got, want)
	}
	if got, want := loadOver(before, after, processSeconds{server: 9.5, bench: 6}, 10, 2).note(), "cores busy during the load: 1.72 of 2 (the server's processes 0.95, the bench's 0.60, everything else 0.17)"; got != want {
		t.Errorf("note with the bench = %q, want %q", got, want)
	}
	// A light load: the ticks of /proc/stat caught less than the processes' exact run time.
	if got, want := loadOver(before, machineCPU{busy: 101, steal: 1}, processSeconds{server: 2.2, bench: 0.8}, 10, 2).note(), "cores busy during the load: 0.30 of 2 (the server's processes 0.22, the bench's 0.08, everything else 0.00)"; got != want {
		t.Errorf("note of a light load = %q, want %q", got, want)
	}
	m = loadOver(before, machineCPU{busy: 118, steal: 2}, processSeconds{server: 9.5}, 10, 2)
	if n := m.note(); !strings.Contains(n, "0.10 taken by the hypervisor") || !strings.HasSuffix(n, "the machine was saturated: the latencies include waiting for a core") {
		t.Errorf("note of a saturated machine with steal: %q", n)
	}
	if n := (MachineLoad{}).note(); n != "" {
		t.Errorf("note without a reading = %q, want none", n)
	}
	if r := (Result{Load: m}); !strings.Contains(strings.Join(r.notes(), "\n"), "cores busy during the load") {
		t.Errorf("a run's notes %q leave out the machine's load", r.notes())
	}
}

// TestHistogramQuantile: quantiles of a scraped histogram's growth, interpolated within the
// bucket that holds them as Prometheus does; one past the last finite bound is that bound.
func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := histogram{0.0005: 10, 0.001: 10, 0.0025: 10, inf: 10}
	after := histogram{0.0005: 60, 0.001: 90, 0.0025: 108, inf: 110} // 100 more: 50, 30, 18, 2
	d := after.since(before)
	for _, c := range []struct{ q, want float64 }{
		{0.25, 0.00025},             // 25 of the 50 in [0, 0.5 ms]
		{0.5, 0.0005},               // the 50th is the first bucket's last
		{0.65, 0.00075},             // 15 of the 30 in (0.5, 1 ms]
		{0.9, 0.001 + 0.0015*10/18}, // 10 of the 18 in (1, 2.5 ms]
		{0.99, 0.0025},              // in +Inf: the highest finite bound
	} {
		if got := d.quantile(c.q); math.Abs(got-c.want) > 1e-5*c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if q := (histogram{inf: 0}).quantile(0.5); !math.IsNaN(q) {
		t.Errorf("quantile of nothing = %v, want NaN", q)
	}
}
