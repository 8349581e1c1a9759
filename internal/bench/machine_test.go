package bench

import (
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
	m := loadOver(before, after, 9.5, 10, 2)
	if m.BusyCores < 1.7199 || m.BusyCores > 1.7201 || m.ServerCores != 0.95 || m.StolenCores != 0 {
		t.Fatalf("loadOver = %+v, want 1.72 busy, 0.95 the server's, none stolen", m)
	}
	if got, want := m.note(), "cores busy during the load: 1.72 of 2 (the server's processes 0.95, everything else 0.77)"; got != want {
		t.Errorf("note = %q, want %q", got, want)
	}
	m = loadOver(before, machineCPU{busy: 118, steal: 2}, 9.5, 10, 2)
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
