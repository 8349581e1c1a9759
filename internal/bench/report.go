package bench

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one bench invocation: one Result per transport run.
type Report struct {
	Started time.Time `json:"started"`
	Command string    `json:"command,omitempty"`
	Machine string    `json:"machine"`
	// Store is what the servers the bench started stored in (Config.Store).
	Store     string `json:"store,omitempty"`
	FileLimit uint64 `json:"file_limit"`
	Watchers  int    `json:"watchers"`
	PerOrder  int    `json:"per_order"`
	Nodes     int    `json:"nodes"`
	// Rate is the offered rate (with FindMax, the one the search started from).
	Rate     float64 `json:"rate"`
	Duration string  `json:"duration"` // with FindMax, of each step
	// FindMax says the runs searched for the highest rate whose p99 from the writes' due times
	// stayed within P99BoundMs.
	FindMax    bool    `json:"find_max,omitempty"`
	P99BoundMs float64 `json:"p99_bound_ms,omitempty"`
	// Restaurants and PerRestaurant are set for the party-stream workload (--restaurants): one
	// restaurant stream per restaurant, each carrying PerRestaurant orders.
	Restaurants   int `json:"restaurants,omitempty"`
	PerRestaurant int `json:"per_restaurant,omitempty"`
	// Couriers and LocationEvery are set for the location workload (--couriers); WithStatus
	// says the status workload ran at Rate beside it (Rate is 0 otherwise).
	// PostBatch above 1 says the positions went through POST /v1/locations, up to PostBatch a
	// request; otherwise each on its own POST /v1/couriers/{cid}/location.
	// CourierTokens says each courier posted with its own token (the bench started the
	// servers, and knows their secret), as couriers' apps do; otherwise with the bench's one.
	Couriers      int    `json:"couriers,omitempty"`
	LocationEvery string `json:"location_every,omitempty"`
	PostBatch     int    `json:"post_batch,omitempty"`
	CourierTokens bool   `json:"courier_tokens,omitempty"`
	// WriteBatch above 1 says the status changes went through POST /v1/status-changes, up to
	// WriteBatch a request; otherwise each on its own POST /v1/orders/{id}/status.
	WriteBatch int      `json:"write_batch,omitempty"`
	WithStatus bool     `json:"with_status,omitempty"`
	Runs       []Result `json:"runs"`
}

// Result is what one transport's run measured.
type Result struct {
	Transport string `json:"transport"`
	// Holding is how the servers held idle streams: "poller" or "goroutine" (their
	// --hold-streams), or "" when the bench targets servers at a URL and cannot know.
	Holding  string `json:"holding,omitempty"`
	Nodes    int    `json:"nodes"`
	Workers  int    `json:"workers"`
	Watchers int    `json:"watchers"`
	PerOrder int    `json:"per_order"`
	Orders   int    `json:"orders"`

	Opened         int64   `json:"opened"`
	Failed         int64   `json:"failed"`
	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectRate    float64 `json:"connect_per_second"`

	RSSBefore      int64       `json:"rss_before_bytes"`
	RSSAfter       int64       `json:"rss_after_bytes"`
	BytesPerStream float64     `json:"bytes_per_stream"`
	Memory         []MemSample `json:"memory"`

	// Writers is the bound on status changes in flight.
	Writers int `json:"writers"`
	// StepsPerOrder is how many status changes each order can take (its cycle's length).
	StepsPerOrder int `json:"steps_per_order"`
	// Committed counts the status changes that committed; CommitErrors those that failed or were
	// skipped after an earlier change of their order failed; Unsent those the writer had not sent
	// when its schedule's hard stop (twice its length plus 5 s) came.
	Committed    int64  `json:"committed"`
	CommitErrors int64  `json:"commit_errors"`
	Unsent       int64  `json:"unsent"`
	CommitError  string `json:"commit_error,omitempty"` // the first failure
	Capped       bool   `json:"capped"`
	// OfferedRate is the schedule's changes/s; AchievedRate the changes committed per second
	// from the first one's due time to the last one's answer, and at least the schedule's length
	// (the offered rate when the server kept up); BehindSeconds how late the last request started
	// against its due time, MaxLateMs how late any did. RateNotReached is set when the achieved
	// rate is more than 2 % below the offered one: the server did not sustain the offered rate.
	// ScheduleSlipped is set when a request started more than 10 ms (lateBound) after its due
	// time: the writer fell behind its schedule, and the latencies from the start leave that
	// wait out (those from the due time count it).
	OfferedRate     float64 `json:"offered_rate"`
	AchievedRate    float64 `json:"achieved_rate"`
	BehindSeconds   float64 `json:"behind_schedule_seconds"`
	MaxLateMs       float64 `json:"max_late_ms"`
	RateNotReached  bool    `json:"rate_not_reached"`
	ScheduleSlipped bool    `json:"schedule_slipped"`
	Expected        int64   `json:"expected"`
	Delivered       int64   `json:"delivered"`
	Duplicates      int64   `json:"duplicates"`
	OutOfOrder      int64   `json:"out_of_order"`
	Gaps            int64   `json:"gaps"`
	Coalesced       int64   `json:"coalesced"`
	Reconnects      int64   `json:"reconnects"`

	// DueLatency* run from the moment the write was due on the schedule to the watcher reading
	// the event: the start's figures plus any wait for a free writer, which a server that stalls
	// imposes on every write due meanwhile (coordinated omission, as wrk2 corrects it).
	DueLatencyP50Ms float64   `json:"due_to_receive_p50_ms"`
	DueLatencyP90Ms float64   `json:"due_to_receive_p90_ms"`
	DueLatencyP99Ms float64   `json:"due_to_receive_p99_ms"`
	DueLatencyMaxMs float64   `json:"due_to_receive_max_ms"`
	DueLatencyCDF   []float64 `json:"due_to_receive_cdf_ms"`
	// StartLatency* run from the start of the write request to the watcher reading the event:
	// what a customer waits for after the restaurant presses the button.
	StartLatencyP50Ms float64 `json:"start_to_receive_p50_ms"`
	StartLatencyP90Ms float64 `json:"start_to_receive_p90_ms"`
	StartLatencyP99Ms float64 `json:"start_to_receive_p99_ms"`
	StartLatencyMaxMs float64 `json:"start_to_receive_max_ms"`
	// StartLatencyCDF is that latency (ms) at each whole percentile 0..100, for charts.
	StartLatencyCDF []float64 `json:"start_to_receive_cdf_ms"`
	// Latency* run from the event's commit time (its "at") to the same read: the delivery part.
	LatencyP50Ms float64   `json:"commit_to_receive_p50_ms"`
	LatencyP90Ms float64   `json:"commit_to_receive_p90_ms"`
	LatencyP99Ms float64   `json:"commit_to_receive_p99_ms"`
	LatencyMaxMs float64   `json:"commit_to_receive_max_ms"`
	LatencyCDF   []float64 `json:"commit_to_receive_cdf_ms"`
	// Uncorrelated counts delivered changes matched with no write of the bench, Inconsistent
	// those whose commit time precedes their write's start; both must be 0.
	Uncorrelated int64 `json:"uncorrelated"`
	Inconsistent int64 `json:"inconsistent"`

	WindowSeconds     float64 `json:"window_seconds"`
	Requests          int64   `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	BytesRead         int64   `json:"bytes_read"`
	BytesPerDelivered float64 `json:"bytes_per_delivered"`
	CPUSeconds        float64 `json:"cpu_seconds"`
	// CPUPerChangeMicros is the server's CPU per committed change; CPUPerDeliveredMicros the same
	// CPU per delivered change (a change to an order of K watchers is delivered K times).
	CPUPerChangeMicros    float64 `json:"cpu_per_change_us"`
	CPUPerDeliveredMicros float64 `json:"cpu_per_delivered_us"`
	// AllocBytesPerChange and AllocsPerChange are what the servers' Go runtimes allocated over
	// the load, per committed change (0 when the servers do not say: the floor).
	AllocBytesPerChange float64 `json:"alloc_bytes_per_change,omitempty"`
	AllocsPerChange     float64 `json:"allocs_per_change,omitempty"`
	// DBCPU is the CPU of the servers' PostgreSQL, which runs in processes of its own; set when
	// the bench started the servers on a PostgreSQL (--db postgres://…), or targets servers at
	// --url, whose database it cannot see.
	DBCPU *DBCPU `json:"db_cpu,omitempty"`
	// Load is what the load took of the machine (zero off Linux).
	Load MachineLoad `json:"machine_load"`
	// ServerFlush* are the server's own part of commit→receive: from the commit to the event
	// flushed to the watcher's socket, from its ordercast_delivery_latency_seconds histogram
	// (interpolated within its buckets; 0 when it could not be read).
	ServerFlushP50Ms float64 `json:"server_commit_to_flush_p50_ms"`
	ServerFlushP99Ms float64 `json:"server_commit_to_flush_p99_ms"`

	// Location holds the location workload's figures, with --couriers.
	Location *LocationResult `json:"location,omitempty"`

	// FindMax holds the search's steps, with --find-max. The rate and latency fields above are
	// then those of the highest rate that held (or of the last step when none did); the
	// counters add up every step.
	FindMax *FindMax `json:"find_max,omitempty"`
}

// DBCPU is what the servers' PostgreSQL cost, beside the servers' own CPU.
type DBCPU struct {
	// Seconds, PerChangeMicros and PerDeliveredMicros are the CPU of PostgreSQL's processes (its
	// postmaster and every child: the servers' backends, the WAL writer, the checkpointer…, and
	// the backends of any other client of that PostgreSQL) over the same window as the servers',
	// when it runs on this machine and the bench reads them.
	Seconds            float64 `json:"seconds"`
	PerChangeMicros    float64 `json:"per_change_us"`
	PerDeliveredMicros float64 `json:"per_delivered_us"`
	// Unmeasured says why they could not be read; the servers' CPU then leaves the database out.
	Unmeasured string `json:"unmeasured,omitempty"`
}

// FindMax is the outcome of a --find-max search.
type FindMax struct {
	P99BoundMs  float64 `json:"p99_bound_ms"`
	StepSeconds float64 `json:"step_seconds"`
	Steps       []Step  `json:"steps"`
	// MaxRate is the highest offered rate that held, 0 when none did; Best its index in Steps.
	MaxRate float64 `json:"max_rate"`
	Best    int     `json:"best_step"`
	// Stopped says why the search ended.
	Stopped string `json:"stopped"`
}

// Step is one rate the search tried.
type Step struct {
	Offered       float64 `json:"offered_rate"`
	Achieved      float64 `json:"achieved_rate"`
	BehindSeconds float64 `json:"behind_schedule_seconds"`
	MaxLateMs     float64 `json:"max_late_ms"`
	Committed     int64   `json:"committed"`
	CommitErrors  int64   `json:"commit_errors"`
	Unsent        int64   `json:"unsent"`
	Expected      int64   `json:"expected"`
	// Delivered counts the deliveries of the step's own changes (told by their order and seq);
	// LateFromEarlier those of an earlier step's changes that arrived during this one.
	Delivered       int64 `json:"delivered"`
	LateFromEarlier int64 `json:"late_from_earlier_steps,omitempty"`
	Samples         int64 `json:"samples"`
	// Due* run from the write's due time, P50Ms and P99Ms from its start, Commit* from the commit.
	DueP50Ms           float64 `json:"due_to_receive_p50_ms"`
	DueP99Ms           float64 `json:"due_to_receive_p99_ms"`
	P50Ms              float64 `json:"start_to_receive_p50_ms"`
	P99Ms              float64 `json:"start_to_receive_p99_ms"`
	CommitP50Ms        float64 `json:"commit_to_receive_p50_ms"`
	CommitP99Ms        float64 `json:"commit_to_receive_p99_ms"`
	CPUPerChangeMicros float64 `json:"cpu_per_change_us"`
	// DBCPUPerChangeMicros is the servers' PostgreSQL's, when the bench reads it (DBCPU).
	DBCPUPerChangeMicros float64 `json:"db_cpu_per_change_us,omitempty"`
	CoresBusy            float64 `json:"cores_busy"` // the machine's, the server's and the bench's
	// Held says the rate was reached, every change delivered and p99 from the due time within
	// the bound; Why says what failed otherwise.
	Held bool   `json:"held"`
	Why  string `json:"why,omitempty"`
}

// add counts a step's changes, deliveries and costs into the run's totals.
func (r *Result) add(s stepOutcome) {
	r.Committed += s.load.committed
	r.CommitErrors += s.load.errors
	r.Unsent += int64(s.load.unsent)
	r.Capped = r.Capped || s.load.capped
	r.Expected += s.expected
	c := s.counts
	r.Delivered += c.Delivered
	r.Duplicates += c.Duplicates
	r.OutOfOrder += c.OutOfOrder
	r.Gaps += c.Gaps
	r.Coalesced += c.Coalesced
	r.Reconnects += c.Reconnects
	r.Requests += c.Requests
	r.BytesRead += c.BytesRead
	r.Uncorrelated += s.latency.Uncorrelated
	r.Inconsistent += s.latency.Inconsistent
	r.WindowSeconds += s.window
	r.CPUSeconds += s.cpuSeconds
	r.RequestsPerSecond = float64(r.Requests) / r.WindowSeconds
	if r.Delivered > 0 {
		r.BytesPerDelivered = float64(r.BytesRead) / float64(r.Delivered)
	}
}

// setLoad takes the rate, latency and CPU figures of the step that stands for the run.
func (r *Result) setLoad(s stepOutcome) {
	r.OfferedRate, r.AchievedRate, r.BehindSeconds = s.load.offered, s.load.achieved, s.load.behind.Seconds()
	r.MaxLateMs = float64(s.load.maxLate) / float64(time.Millisecond)
	r.RateNotReached = s.load.achieved < heldShare*s.load.offered
	r.ScheduleSlipped = slipped(s.load.maxLate)
	r.DueLatencyP50Ms, r.DueLatencyP90Ms, r.DueLatencyP99Ms, r.DueLatencyMaxMs, r.DueLatencyCDF = summarize(s.latency.FromDue)
	r.StartLatencyP50Ms, r.StartLatencyP90Ms, r.StartLatencyP99Ms, r.StartLatencyMaxMs, r.StartLatencyCDF = summarize(s.latency.FromStart)
	r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.LatencyCDF = summarize(s.latency.CommitToReceive)
	r.CPUPerDeliveredMicros, r.CPUPerChangeMicros = 0, 0
	r.Load = s.machine
	r.ServerFlushP50Ms, r.ServerFlushP99Ms = 0, 0
	if q50, q99 := s.serverFlush.quantile(0.5), s.serverFlush.quantile(0.99); !math.IsNaN(q50) && !math.IsNaN(q99) {
		r.ServerFlushP50Ms, r.ServerFlushP99Ms = q50*1000, q99*1000
	}
	if s.counts.Delivered > 0 {
		r.CPUPerDeliveredMicros = s.cpuSeconds / float64(s.counts.Delivered) * 1e6
	}
	if s.load.committed > 0 {
		r.CPUPerChangeMicros = s.cpuSeconds / float64(s.load.committed) * 1e6
	}
	r.AllocBytesPerChange, r.AllocsPerChange = 0, 0
	if s.allocMeasured && s.load.committed > 0 {
		r.AllocBytesPerChange = s.allocated.bytes / float64(s.load.committed)
		r.AllocsPerChange = s.allocated.objects / float64(s.load.committed)
	}
	if r.DBCPU != nil && s.dbMeasured {
		r.DBCPU.Seconds, r.DBCPU.PerChangeMicros, r.DBCPU.PerDeliveredMicros = s.dbCPUSeconds, 0, 0
		if s.load.committed > 0 {
			r.DBCPU.PerChangeMicros = s.dbCPUSeconds / float64(s.load.committed) * 1e6
		}
		if s.counts.Delivered > 0 {
			r.DBCPU.PerDeliveredMicros = s.dbCPUSeconds / float64(s.counts.Delivered) * 1e6
		}
	}
}

// MemSample is the server side's memory with some watchers open.
type MemSample struct {
	Watchers   int64 `json:"watchers"`
	RSSBytes   int64 `json:"rss_bytes"`
	DeltaBytes int64 `json:"delta_bytes"`
}

// summarize returns p50, p90, p99, max and the whole-percentile CDF (ms) of sorted latencies (µs).
func summarize(sorted []int64) (p50, p90, p99, maxMs float64, cdf []float64) {
	p50, p90, p99 = ms(Percentile(sorted, 50)), ms(Percentile(sorted, 90)), ms(Percentile(sorted, 99))
	if len(sorted) > 0 {
		maxMs = ms(sorted[len(sorted)-1])
		cdf = make([]float64, 101)
		cdf[0] = ms(sorted[0])
		for p := 1; p <= 100; p++ {
			cdf[p] = ms(Percentile(sorted, float64(p)))
		}
	}
	return p50, p90, p99, maxMs, cdf
}

// Errors counts the delivery errors: duplicates, out-of-order events and gaps (all must be 0).
func (r Result) Errors() int64 { return r.Duplicates + r.OutOfOrder + r.Gaps }

// Failures lists what went wrong in the run, one phrase each; none means every watcher opened,
// every change committed and each was delivered once, in order, to every watcher of its order,
// and in a location run that positions were accepted and delivered, each matched with its post.
func (r Result) Failures() []string {
	var f []string
	if r.Failed > 0 || r.Opened < int64(r.Watchers) {
		f = append(f, fmt.Sprintf("%d of %d watchers failed to open", int64(r.Watchers)-r.Opened, r.Watchers))
	}
	if r.Location != nil {
		f = append(f, r.Location.failures()...)
		if r.Writers == 0 {
			return f // no status workload ran
		}
	}
	if r.CommitErrors > 0 {
		f = append(f, fmt.Sprintf("%d status changes failed", r.CommitErrors))
	}
	if r.Committed == 0 {
		f = append(f, "no status change was committed")
	}
	if r.Delivered < r.Expected {
		f = append(f, fmt.Sprintf("delivered %d of %d expected", r.Delivered, r.Expected))
	}
	if r.Errors() > 0 {
		f = append(f, fmt.Sprintf("%d duplicate, %d out-of-order and %d missing events", r.Duplicates, r.OutOfOrder, r.Gaps))
	}
	if r.Uncorrelated+r.Inconsistent > 0 {
		f = append(f, fmt.Sprintf("%d delivered changes matched no write and %d were committed before their write started", r.Uncorrelated, r.Inconsistent))
	}
	return f
}

// Failures lists what went wrong in every run, each prefixed with its transport.
func (rep *Report) Failures() []string {
	var f []string
	for _, r := range rep.Runs {
		for _, p := range r.Failures() {
			f = append(f, r.Transport+": "+p)
		}
	}
	return f
}

// holdingLabel is the holding column's text.
func (r Result) holdingLabel() string {
	if r.Holding == "" {
		return "?"
	}
	return r.Holding
}

// clientProcesses is how many processes held the watchers.
func (r Result) clientProcesses() int { return max(1, r.Workers) }

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report as a plain-text table, one row per transport, then its notes and
// warnings, and with --find-max each search's steps. A location run has its own table, after
// the status table when the status workload ran beside it.
func (rep *Report) WriteTable(w io.Writer) error {
	if rep.Couriers > 0 {
		return rep.writeLocation(w)
	}
	if rep.Restaurants > 0 {
		fmt.Fprintf(w, "ordercast bench --restaurants: %d restaurant streams × %d orders (%d orders) on %d node(s), %.0f changes/s offered for %s; %s\n\n",
			rep.Restaurants, rep.PerRestaurant, rep.Restaurants*rep.PerRestaurant, rep.Nodes, rep.Rate, rep.Duration, rep.setting())
	} else if rep.FindMax {
		fmt.Fprintf(w, "ordercast bench --find-max: %d watchers (%d per order) on %d node(s), from %.0f changes/s in steps of %s, p99 bound %s ms; %s\n\n",
			rep.Watchers, rep.PerOrder, rep.Nodes, rep.Rate, rep.Duration, fmtMs(rep.P99BoundMs), rep.setting())
	} else {
		fmt.Fprintf(w, "ordercast bench: %d watchers (%d per order) on %d node(s), %.0f changes/s offered for %s%s; %s\n\n",
			rep.Watchers, rep.PerOrder, rep.Nodes, rep.Rate, rep.Duration, rep.writeBatchNote(), rep.setting())
	}
	return rep.writeStatus(w)
}

// setting says where the run ran: the servers' store, when the bench started them, and the
// machine.
func (rep *Report) setting() string {
	if rep.Store == "" {
		return rep.Machine
	}
	return rep.Store + "; " + rep.Machine
}

// writeBatchNote says how the status changes were sent when they went many a request.
func (rep *Report) writeBatchNote() string {
	if rep.WriteBatch > 1 {
		return fmt.Sprintf(", through POST /v1/status-changes, up to %d a request", rep.WriteBatch)
	}
	return ""
}

// writeStatus writes the status workload's table, its notes and any find-max steps.
func (rep *Report) writeStatus(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tholding\tclients\topened\tfailed\tconnect/s\tRSS MiB before→after\tKiB/stream\toffered/s\tachieved/s\tbehind s\tlate ms max\tdelivered\texpected\tdup/ooo/gap\tdue→recv ms p50/p90/p99/max\tstart→recv ms p50/p90/p99/max\tcommit→recv ms p50/p90/p99/max\treq/s\tB/delivered\tCPU µs/change\tCPU µs/delivered\t")
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%.0f→%.0f\t%.1f\t%.0f\t%.0f\t%.2f\t%s\t%d\t%d\t%d/%d/%d\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t\n",
			r.Transport, r.holdingLabel(), r.clientProcesses(), r.Opened, r.Failed, r.ConnectRate,
			float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.BytesPerStream/1024,
			r.OfferedRate, r.AchievedRate, r.BehindSeconds, fmtMs(r.MaxLateMs), r.Delivered, r.Expected,
			r.Duplicates, r.OutOfOrder, r.Gaps, r.DueLatencies(), r.StartLatencies(), r.CommitLatencies(),
			r.RequestsPerSecond, r.BytesPerDelivered, r.CPUPerChangeMicros, r.CPUPerDeliveredMicros)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Runs {
		for _, n := range r.notes() {
			fmt.Fprintf(w, "%s: %s\n", r.Transport, n)
		}
	}
	if n := rep.againstFloor(); n != "" {
		fmt.Fprintln(w, n)
	}
	for _, r := range rep.Runs {
		if r.FindMax != nil {
			if err := r.writeSteps(w); err != nil {
				return err
			}
		}
	}
	return nil
}

// againstFloor compares ordercast's SSE run with the floor's (--floor) on the figures the
// write-path targets are about: server CPU a change, p99 from the writes' start, the rate
// achieved. Empty without both runs, or in a search, whose steps differ between the two.
func (rep *Report) againstFloor() string {
	var ours, floor *Result
	for i := range rep.Runs {
		switch r := &rep.Runs[i]; {
		case r.Transport == TransportSSE:
			ours = r
		case r.Transport == TransportFloor:
			floor = r
		}
	}
	if ours == nil || floor == nil || ours.FindMax != nil || floor.CPUPerChangeMicros <= 0 || floor.StartLatencyP99Ms <= 0 || floor.DueLatencyP99Ms <= 0 || floor.AchievedRate <= 0 {
		return ""
	}
	// p99 from the start leaves out a write's wait for a free writer, which is where a server that
	// falls behind its schedule shows it: p99 from the due time goes beside it.
	return fmt.Sprintf("sse against the floor: CPU a change %.2f× (%.0f against %.0f µs), p99 from the start %.2f× (%s against %s ms), p99 from the due time %.2f× (%s against %s ms), achieved %.1f %% of the floor's rate (%.0f against %.0f/s)",
		ours.CPUPerChangeMicros/floor.CPUPerChangeMicros, ours.CPUPerChangeMicros, floor.CPUPerChangeMicros,
		ours.StartLatencyP99Ms/floor.StartLatencyP99Ms, fmtMs(ours.StartLatencyP99Ms), fmtMs(floor.StartLatencyP99Ms),
		ours.DueLatencyP99Ms/floor.DueLatencyP99Ms, fmtMs(ours.DueLatencyP99Ms), fmtMs(floor.DueLatencyP99Ms),
		100*ours.AchievedRate/floor.AchievedRate, ours.AchievedRate, floor.AchievedRate)
}

// notes are the lines under the table that qualify a run's row, warnings first.
func (r Result) notes() []string {
	var n []string
	// A search judges each step by these itself, and says so in its steps.
	if r.RateNotReached && r.FindMax == nil {
		n = append(n, fmt.Sprintf("WARNING: offered %.0f changes/s, achieved %.0f/s (%.0f %%): the server did not sustain the offered rate; the writer ended %.2f s behind schedule",
			r.OfferedRate, r.AchievedRate, 100*r.AchievedRate/r.OfferedRate, r.BehindSeconds))
	}
	if r.ScheduleSlipped && r.FindMax == nil {
		n = append(n, lateWarning("write", "the writer", r.MaxLateMs, "start→recv", "due→recv"))
	}
	if r.Capped && r.FindMax == nil { // a search says when it ran out of orders
		n = append(n, fmt.Sprintf("changes capped at %d (%d orders × %d steps): add watchers or lower --rate/--duration", r.Committed+r.CommitErrors+r.Unsent, r.Orders, r.StepsPerOrder))
	}
	if r.CommitErrors > 0 {
		n = append(n, fmt.Sprintf("%d status changes failed; the first: %s", r.CommitErrors, r.CommitError))
	}
	if r.Unsent > 0 {
		n = append(n, fmt.Sprintf("%d status changes not sent: the writer was still behind when its schedule's hard stop came; due→recv leaves them out, the most delayed of all, so its tail reads short", r.Unsent))
	}
	if r.Uncorrelated+r.Inconsistent > 0 {
		n = append(n, fmt.Sprintf("%d delivered changes matched no write, %d were committed before their write started", r.Uncorrelated, r.Inconsistent))
	}
	if r.Transport == TransportFloor {
		n = append(n, "the same workload against a plain in-memory push server (`ordercast bench-floor`: net/http, no store, no auth, one write a watcher in the request that makes the change or posts the position, no conflation): what any Go HTTP server pays for it on these cores in this hour; its commit→recv counts from its in-memory change")
	}
	if r.Holding == "" {
		n = append(n, `holding "?": the servers at --url hold streams as their --hold-streams says; the bench cannot tell`)
	}
	if r.Coalesced > 0 {
		n = append(n, fmt.Sprintf("%d versions coalesced between polls (not seen, by the nature of polling)", r.Coalesced))
	}
	if r.ServerFlushP99Ms > 0 {
		n = append(n, fmt.Sprintf("the server's own part of commit→recv, from the commit to the event flushed to the socket (its ordercast_delivery_latency_seconds, interpolated within the buckets): p50 %s ms, p99 %s ms; the rest is the kernel's and the watchers' processes'",
			fmtMs(r.ServerFlushP50Ms), fmtMs(r.ServerFlushP99Ms)))
	}
	if r.AllocBytesPerChange > 0 {
		n = append(n, fmt.Sprintf("the server allocated %.1f KB in %.0f objects a change over the load (its go_memstats_alloc_bytes_total and go_memstats_mallocs_total; the positions' and heartbeats' included), the heap its garbage collector then pays for",
			r.AllocBytesPerChange/1024, r.AllocsPerChange))
	}
	if db := r.DBCPU; db != nil && db.Unmeasured != "" {
		n = append(n, "server CPU excludes the database: "+db.Unmeasured)
	} else if db != nil {
		n = append(n, fmt.Sprintf("database CPU µs/change: %.0f (%.0f per delivered change), PostgreSQL's processes (all of that server's, any other client's work included) over the same window as the server's %.0f",
			db.PerChangeMicros, db.PerDeliveredMicros, r.CPUPerChangeMicros))
	}
	if m := r.Load.note(); m != "" {
		n = append(n, m)
	}
	return n
}

// DueLatencies is p50/p90/p99/max (ms) from the write's due time, as the table prints them.
func (r Result) DueLatencies() string {
	return fmtMs(r.DueLatencyP50Ms) + "/" + fmtMs(r.DueLatencyP90Ms) + "/" + fmtMs(r.DueLatencyP99Ms) + "/" + fmtMs(r.DueLatencyMaxMs)
}

// StartLatencies is p50/p90/p99/max (ms) from the start of the write, as the table prints them.
func (r Result) StartLatencies() string {
	return fmtMs(r.StartLatencyP50Ms) + "/" + fmtMs(r.StartLatencyP90Ms) + "/" + fmtMs(r.StartLatencyP99Ms) + "/" + fmtMs(r.StartLatencyMaxMs)
}

// CommitLatencies is p50/p90/p99/max (ms) from the commit, as the table prints them.
func (r Result) CommitLatencies() string {
	return fmtMs(r.LatencyP50Ms) + "/" + fmtMs(r.LatencyP90Ms) + "/" + fmtMs(r.LatencyP99Ms) + "/" + fmtMs(r.LatencyMaxMs)
}

// writeSteps writes a find-max search: one line per step, then its outcome.
func (r Result) writeSteps(w io.Writer) error {
	fm := r.FindMax
	fmt.Fprintf(w, "\n%s find-max (p99 from the writes' due times within %s ms, steps of %gs):\n", r.Transport, fmtMs(fm.P99BoundMs), fm.StepSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\toffered/s\tachieved/s\tbehind s\tlate ms max\tcommitted\tdelivered/expected\tdue→recv ms p50/p99\tstart→recv ms p50/p99\tcommit→recv ms p50/p99\tCPU µs/change\tcores busy\theld\t")
	for i, s := range fm.Steps {
		held := "yes"
		if !s.Held {
			held = "no: " + s.Why
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t%s\t%d\t%d/%d\t%s/%s\t%s/%s\t%s/%s\t%.0f\t%.2f\t%s\t\n", i+1, s.Offered, s.Achieved, s.BehindSeconds, fmtMs(s.MaxLateMs),
			s.Committed, s.Delivered, s.Expected, fmtMs(s.DueP50Ms), fmtMs(s.DueP99Ms), fmtMs(s.P50Ms), fmtMs(s.P99Ms), fmtMs(s.CommitP50Ms), fmtMs(s.CommitP99Ms), s.CPUPerChangeMicros, s.CoresBusy, held)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, r.Transport+": "+fm.Outcome())
	return nil
}

// Outcome says in one line what the search found and why it stopped.
func (fm *FindMax) Outcome() string {
	if fm.Best < 0 {
		return "no rate held; stopped: " + fm.Stopped
	}
	s := fm.Steps[fm.Best]
	return fmt.Sprintf("highest sustained rate %.0f changes/s (achieved %.0f/s): p50 %s ms, p99 %s ms from the writes' due times (p99 %s ms from their start), server CPU %.0f µs per change; stopped: %s",
		fm.MaxRate, s.Achieved, fmtMs(s.DueP50Ms), fmtMs(s.DueP99Ms), fmtMs(s.P99Ms), s.CPUPerChangeMicros, fm.Stopped)
}

// fmtMs prints milliseconds with two significant digits below 10 and whole numbers above.
func fmtMs(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteHTML writes a self-contained report: the table, and inline SVG charts of the latency
// distribution per transport and of the server's memory against open watchers.
func (rep *Report) WriteHTML(w io.Writer) error {
	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		return err
	}
	data := struct {
		Rep     *Report
		Table   string
		Latency template.HTML
		Memory  template.HTML
	}{rep, table.String(), template.HTML(rep.latencySVG()), template.HTML(rep.memorySVG())}
	return htmlReport.Execute(w, data)
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"kib":     func(b float64) float64 { return b / 1024 },
	"holding": Result.holdingLabel,
	"clients": Result.clientProcesses,
	"notes":   Result.notes,
	"ms":      fmtMs,
	"inc":     func(i int) int { return i + 1 },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>ordercast bench</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
svg { background: #fff; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>ordercast bench</h1>
<p>{{.Rep.Watchers}} watchers ({{.Rep.PerOrder}} per order) on {{.Rep.Nodes}} node(s), {{.Rep.Rate}} changes/s for {{.Rep.Duration}}; {{.Rep.Machine}}; started {{.Rep.Started.Format "2006-01-02 15:04:05 UTC"}}.</p>
{{if .Rep.Couriers}}<h2>Couriers' positions</h2>
<p>{{.Rep.Couriers}} couriers, each posting every {{.Rep.LocationEvery}}, {{.Rep.PostingMode}}.</p>
<table>
<thead><tr><th>transport</th><th>offered/s</th><th>accepted/s</th><th>behind s</th><th>late ms max</th><th>refused</th><th>failed posts</th><th>owed</th><th>delivered</th><th>remote</th><th>dup/ooo</th><th>due→screen ms p50/p90/p99/max</th><th>post→screen ms p50/p90/p99/max</th><th>CPU µs/position</th></tr></thead>
<tbody>
{{range .Rep.Runs}}{{$t := .Transport}}{{with .Location}}<tr><td>{{$t}}</td><td>{{printf "%.0f" .Offered}}</td><td>{{printf "%.0f" .Accepted}}</td><td>{{printf "%.2f" .BehindSeconds}}</td><td>{{ms .MaxLateMs}}</td><td>{{.Refused}}</td><td>{{.Failed}}</td><td>{{.Owed}}</td><td>{{.Delivered}}</td><td>{{.Remote}}</td><td>{{.Duplicates}}/{{.OutOfOrder}}</td><td>{{.DueToScreen}}</td><td>{{.PostToScreen}}</td><td>{{printf "%.0f" .CPUPerAcceptedMicros}}</td></tr>
{{end}}{{end}}</tbody>
</table>
{{range .Rep.Runs}}{{with .Location}}{{range .Notes}}<p><strong>{{.}}</strong></p>
{{end}}{{end}}{{end}}{{if .Rep.WithStatus}}<h2>Status changes beside the positions</h2>
{{end}}{{end}}{{if or (not .Rep.Couriers) .Rep.WithStatus}}<table>
<thead><tr><th>transport</th><th>holding</th><th>clients</th><th>opened</th><th>failed</th><th>KiB/stream</th><th>offered/s</th><th>achieved/s</th><th>behind s</th><th>late ms max</th><th>delivered</th><th>expected</th><th>dup/ooo/gap</th><th>due→recv ms p50/p90/p99/max</th><th>start→recv ms p50/p90/p99/max</th><th>commit→recv ms p50/p90/p99/max</th><th>req/s</th><th>bytes/delivered</th><th>CPU µs/change</th><th>CPU µs/delivered</th></tr></thead>
<tbody>
{{range .Rep.Runs}}<tr><td>{{.Transport}}</td><td>{{holding .}}</td><td>{{clients .}}</td><td>{{.Opened}}</td><td>{{.Failed}}</td><td>{{printf "%.1f" (kib .BytesPerStream)}}</td><td>{{printf "%.0f" .OfferedRate}}</td><td>{{printf "%.0f" .AchievedRate}}</td><td>{{printf "%.2f" .BehindSeconds}}</td><td>{{ms .MaxLateMs}}</td><td>{{.Delivered}}</td><td>{{.Expected}}</td><td>{{.Duplicates}}/{{.OutOfOrder}}/{{.Gaps}}</td><td>{{.DueLatencies}}</td><td>{{.StartLatencies}}</td><td>{{.CommitLatencies}}</td><td>{{printf "%.0f" .RequestsPerSecond}}</td><td>{{printf "%.0f" .BytesPerDelivered}}</td><td>{{printf "%.0f" .CPUPerChangeMicros}}</td><td>{{printf "%.0f" .CPUPerDeliveredMicros}}</td></tr>
{{end}}</tbody>
</table>
{{end}}{{range .Rep.Runs}}{{range notes .}}<p><strong>{{.}}</strong></p>
{{end}}{{with .FindMax}}<h2>Find-max steps</h2>
<table>
<thead><tr><th>step</th><th>offered/s</th><th>achieved/s</th><th>behind s</th><th>late ms max</th><th>committed</th><th>delivered/expected</th><th>due→recv ms p50/p99</th><th>start→recv ms p50/p99</th><th>commit→recv ms p50/p99</th><th>CPU µs/change</th><th>cores busy</th><th>held</th></tr></thead>
<tbody>
{{range $i, $s := .Steps}}<tr><td>{{inc $i}}</td><td>{{printf "%.0f" $s.Offered}}</td><td>{{printf "%.0f" $s.Achieved}}</td><td>{{printf "%.2f" $s.BehindSeconds}}</td><td>{{ms $s.MaxLateMs}}</td><td>{{$s.Committed}}</td><td>{{$s.Delivered}}/{{$s.Expected}}</td><td>{{ms $s.DueP50Ms}}/{{ms $s.DueP99Ms}}</td><td>{{ms $s.P50Ms}}/{{ms $s.P99Ms}}</td><td>{{ms $s.CommitP50Ms}}/{{ms $s.CommitP99Ms}}</td><td>{{printf "%.0f" $s.CPUPerChangeMicros}}</td><td>{{printf "%.2f" $s.CoresBusy}}</td><td>{{if $s.Held}}yes{{else}}no: {{$s.Why}}{{end}}</td></tr>
{{end}}</tbody>
</table>
<p>{{.Outcome}}</p>
{{end}}{{end}}<h2>Latency</h2>
<p>Share of delivered changes (y) received within a latency (x, log scale): dotted from the write's due time on the schedule, solid from the start of the write request, dashed from the commit.</p>
{{.Latency}}
<h2>Server memory against open watchers</h2>
<p>Resident memory above the baseline (y) as watchers open (x).</p>
{{.Memory}}
<h2>Text</h2>
<pre>{{.Table}}</pre>
</body>
</html>
`))

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// chart draws axes, ticks and polylines in an SVG of fixed size.
type chart struct {
	b                      strings.Builder
	x0, y0, w, h           float64 // plot area
	xmin, xmax, ymin, ymax float64
	logX                   bool
}

func newChart(xmin, xmax, ymin, ymax float64, logX bool) *chart {
	c := &chart{x0: 70, y0: 20, w: 560, h: 260, xmin: xmin, xmax: xmax, ymin: ymin, ymax: ymax, logX: logX}
	if c.xmax <= c.xmin {
		c.xmax = c.xmin + 1
	}
	if c.ymax <= c.ymin {
		c.ymax = c.ymin + 1
	}
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" width="860" height="330" viewBox="0 0 860 330" font-size="11">`)
	fmt.Fprintf(&c.b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`, c.x0, c.y0, c.w, c.h)
	return c
}

func (c *chart) px(x float64) float64 {
	if c.logX {
		return c.x0 + (math.Log10(x)-math.Log10(c.xmin))/(math.Log10(c.xmax)-math.Log10(c.xmin))*c.w
	}
	return c.x0 + (x-c.xmin)/(c.xmax-c.xmin)*c.w
}

func (c *chart) py(y float64) float64 { return c.y0 + c.h - (y-c.ymin)/(c.ymax-c.ymin)*c.h }

func (c *chart) xTick(x float64, label string) {
	fmt.Fprintf(&c.b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#eee"/><text x="%.1f" y="%g" text-anchor="middle">%s</text>`,
		c.px(x), c.y0, c.px(x), c.y0+c.h, c.px(x), c.y0+c.h+14, template.HTMLEscapeString(label))
}

func (c *chart) yTick(y float64, label string) {
	fmt.Fprintf(&c.b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#eee"/><text x="%g" y="%.1f" text-anchor="end">%s</text>`,
		c.x0, c.py(y), c.x0+c.w, c.py(y), c.x0-4, c.py(y)+4, template.HTMLEscapeString(label))
}

// Line styles of a chart's polylines.
const (
	solid  = ""
	dashed = "5 3"
	dotted = "1 3"
)

// line draws a polyline in the palette's colour-th colour and style, with its name on legend row
// row.
func (c *chart) line(colour, row int, name, style string, xs, ys []float64) {
	color := palette[colour%len(palette)]
	dash := ""
	if style != solid {
		dash = ` stroke-dasharray="` + style + `"`
	}
	var pts strings.Builder
	for k := range xs {
		fmt.Fprintf(&pts, "%.1f,%.1f ", c.px(xs[k]), c.py(ys[k]))
	}
	fmt.Fprintf(&c.b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`, color, dash, strings.TrimSpace(pts.String()))
	ly := c.y0 + 10 + float64(row)*16
	fmt.Fprintf(&c.b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"%s/><text x="%g" y="%g">%s</text>`,
		c.x0+c.w+12, ly, c.x0+c.w+32, ly, color, dash, c.x0+c.w+36, ly+4, template.HTMLEscapeString(name))
}

func (c *chart) axes(xlabel, ylabel string) string {
	fmt.Fprintf(&c.b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`, c.x0+c.w/2, c.y0+c.h+32, template.HTMLEscapeString(xlabel))
	fmt.Fprintf(&c.b, `<text x="14" y="%g" text-anchor="middle" transform="rotate(-90 14 %g)">%s</text>`, c.y0+c.h/2, c.y0+c.h/2, template.HTMLEscapeString(ylabel))
	c.b.WriteString(`</svg>`)
	return c.b.String()
}

func (rep *Report) latencySVG() string {
	lo, hi := math.Inf(1), 0.0
	for _, r := range rep.Runs {
		vs := slices.Concat(r.LatencyCDF, r.StartLatencyCDF, r.DueLatencyCDF)
		if r.Location != nil {
			vs = append(vs, r.Location.PostToScreenCDF...)
			vs = append(vs, r.Location.DueToScreenCDF...)
		}
		for _, v := range vs {
			lo, hi = math.Min(lo, math.Max(v, 0.01)), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0.1, 1000
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(math.Max(hi, lo*10))))
	c := newChart(lo, hi, 0, 100, true)
	for x := lo; x <= hi*1.0001; x *= 10 {
		c.xTick(x, fmt.Sprintf("%g ms", x))
	}
	for y := 0.0; y <= 100; y += 25 {
		c.yTick(y, fmt.Sprintf("%.0f%%", y))
	}
	row := 0
	cdf := func(colour int, name, style string, vs []float64) {
		if len(vs) == 0 {
			return
		}
		xs := make([]float64, len(vs))
		ys := make([]float64, len(vs))
		for p, v := range vs {
			xs[p], ys[p] = math.Max(v, lo), float64(p)
		}
		c.line(colour, row, name, style, xs, ys)
		row++
	}
	for i, r := range rep.Runs {
		cdf(i, r.Transport+" from due", dotted, r.DueLatencyCDF)
		cdf(i, r.Transport+" from write", solid, r.StartLatencyCDF)
		cdf(i, r.Transport+" from commit", dashed, r.LatencyCDF)
		if r.Location != nil {
			cdf(i+len(rep.Runs), r.Transport+" position from due", dotted, r.Location.DueToScreenCDF)
			cdf(i+len(rep.Runs), r.Transport+" position from post", solid, r.Location.PostToScreenCDF)
		}
	}
	return c.axes("latency to the watcher reading the event", "delivered changes")
}

func (rep *Report) memorySVG() string {
	var xmax, ymax float64
	for _, r := range rep.Runs {
		for _, m := range r.Memory {
			xmax, ymax = math.Max(xmax, float64(m.Watchers)), math.Max(ymax, float64(m.DeltaBytes)/(1<<20))
		}
	}
	xmax, ymax = niceCeil(xmax), niceCeil(ymax)
	c := newChart(0, xmax, 0, ymax, false)
	for k := 0.0; k <= 4; k++ {
		c.xTick(xmax*k/4, fmt.Sprintf("%.0f", xmax*k/4))
		c.yTick(ymax*k/4, fmt.Sprintf("%.0f MiB", ymax*k/4))
	}
	for i, r := range rep.Runs {
		var xs, ys []float64
		for _, m := range r.Memory {
			xs = append(xs, float64(m.Watchers))
			ys = append(ys, math.Max(0, float64(m.DeltaBytes)/(1<<20)))
		}
		if len(xs) > 0 {
			c.line(i, i, r.Transport, solid, xs, ys)
		}
	}
	return c.axes("open watchers", "server RSS above baseline")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func numCPU() int { return runtime.NumCPU() }
