package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// machineCPU is the CPU time every core of the machine has spent so far, in seconds: busy
// (user, nice, system, irq, softirq) and stolen (run by the hypervisor for other guests). Read
// before and after a load, it says how much of the machine the load took, the server's share
// and everything else's (the bench's own clients included). Where cores run out, latency is
// time spent waiting for one, whatever the code does.
type machineCPU struct {
	busy, steal float64
}

// readMachineCPU reads /proc/stat; ok is false where there is none (not Linux).
func readMachineCPU() (machineCPU, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, false
	}
	m, err := parseProcStat(b)
	return m, err == nil
}

// parseProcStat reads the first line of /proc/stat: "cpu  user nice system idle iowait irq
// softirq steal …", in USER_HZ ticks summed over the cores. Guest time is counted in user
// already, so it is not added again.
func parseProcStat(b []byte) (machineCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat: first line %q is not the cpu line", line)
	}
	var t [8]float64
	var errs []error
	for i := range t {
		v, err := strconv.ParseUint(string(f[i+1]), 10, 64)
		errs = append(errs, err)
		t[i] = float64(v) / clockTicks
	}
	if err := errors.Join(errs...); err != nil {
		return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
	}
	const user, nice, system, irq, softirq, steal = 0, 1, 2, 5, 6, 7
	return machineCPU{busy: t[user] + t[nice] + t[system] + t[irq] + t[softirq], steal: t[steal]}, nil
}

// MachineLoad is what a load took of the machine: cores busy on average over its window (from
// the mark to the load's last write answered), and of those the server's, its PostgreSQL's
// (when the bench reads it) and the bench's own processes', and the cores the hypervisor stole.
type MachineLoad struct {
	Seconds       float64 `json:"seconds"` // the window
	Cores         int     `json:"cores"`
	BusyCores     float64 `json:"busy_cores"`
	ServerCores   float64 `json:"server_cores"`
	DatabaseCores float64 `json:"database_cores,omitempty"`
	// BenchCores is this process's and its bench-workers': the watchers, writers and posters.
	BenchCores  float64 `json:"bench_cores,omitempty"`
	StolenCores float64 `json:"stolen_cores"`
}

// processSeconds is the CPU time, over a load's window, of the processes the bench knows: the
// servers, their PostgreSQL and the bench's own.
type processSeconds struct {
	server, db, bench float64
}

// loadOver turns two readings of the machine window seconds apart, and the CPU seconds of the
// processes the bench knows over the same window, into a MachineLoad.
//
// The machine's busy time comes from /proc/stat, which the kernel counts a tick at a time: a
// core busy between two ticks and idle at each is counted idle. Under a light load of short
// requests most of the work falls between ticks, and the machine read less busy than the
// server alone. A process's time is its exact run time, so the machine counts as busy as the
// processes the bench knows at least.
func loadOver(before, after machineCPU, p processSeconds, window float64, cores int) MachineLoad {
	if window <= 0 {
		return MachineLoad{}
	}
	busy := max(after.busy-before.busy, p.server+p.db+p.bench)
	return MachineLoad{
		Seconds:       window,
		Cores:         cores,
		BusyCores:     busy / window,
		ServerCores:   p.server / window,
		DatabaseCores: p.db / window,
		BenchCores:    p.bench / window,
		StolenCores:   (after.steal - before.steal) / window,
	}
}

// saturated is the share of the cores busy or stolen past which a load's latencies are mostly
// waits for a core.
const saturated = 0.9

// note says how much of the machine the load took, and whether it ran out of cores.
func (m MachineLoad) note() string {
	if m.Cores == 0 {
		return ""
	}
	known := ""
	if m.DatabaseCores > 0 {
		known += fmt.Sprintf(", PostgreSQL's %.2f", m.DatabaseCores)
	}
	if m.BenchCores > 0 {
		known += fmt.Sprintf(", the bench's %.2f", m.BenchCores)
	}
	s := fmt.Sprintf("cores busy during the load: %.2f of %d (the server's processes %.2f%s, everything else %.2f)",
		m.BusyCores, m.Cores, m.ServerCores, known, max(m.BusyCores-m.ServerCores-m.DatabaseCores-m.BenchCores, 0))
	if m.StolenCores >= 0.05 {
		s += fmt.Sprintf(", and %.2f taken by the hypervisor", m.StolenCores)
	}
	if m.BusyCores+m.StolenCores >= saturated*float64(m.Cores) {
		s += "; the machine was saturated: the latencies include waiting for a core"
	}
	return s
}
