package bench

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one bench invocation: one Result per transport run.
type Report struct {
	Started   time.Time `json:"started"`
	Command   string    `json:"command,omitempty"`
	Machine   string    `json:"machine"`
	FileLimit uint64    `json:"file_limit"`
	Watchers  int       `json:"watchers"`
	PerOrder  int       `json:"per_order"`
	Nodes     int       `json:"nodes"`
	Rate      float64   `json:"rate"`
	Duration  string    `json:"duration"`
	Runs      []Result  `json:"runs"`
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

	Committed    int64   `json:"committed"`
	CommitErrors int64   `json:"commit_errors"`
	Capped       bool    `json:"capped"`
	AchievedRate float64 `json:"achieved_rate"`
	Expected     int64   `json:"expected"`
	Delivered    int64   `json:"delivered"`
	Duplicates   int64   `json:"duplicates"`
	OutOfOrder   int64   `json:"out_of_order"`
	Gaps         int64   `json:"gaps"`
	Coalesced    int64   `json:"coalesced"`
	Reconnects   int64   `json:"reconnects"`

	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP90Ms float64 `json:"latency_p90_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	LatencyMaxMs float64 `json:"latency_max_ms"`
	// LatencyCDF is the latency (ms) at each whole percentile 0..100, for charts.
	LatencyCDF []float64 `json:"latency_cdf_ms"`

	WindowSeconds         float64 `json:"window_seconds"`
	Requests              int64   `json:"requests"`
	RequestsPerSecond     float64 `json:"requests_per_second"`
	BytesRead             int64   `json:"bytes_read"`
	BytesPerDelivered     float64 `json:"bytes_per_delivered"`
	CPUSeconds            float64 `json:"cpu_seconds"`
	CPUPerDeliveredMicros float64 `json:"cpu_per_delivered_us"`
}

// MemSample is the server side's memory with some watchers open.
type MemSample struct {
	Watchers   int64 `json:"watchers"`
	RSSBytes   int64 `json:"rss_bytes"`
	DeltaBytes int64 `json:"delta_bytes"`
}

func (r *Result) setLatency(sorted []int64) {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	r.LatencyP50Ms = ms(Percentile(sorted, 50))
	r.LatencyP90Ms = ms(Percentile(sorted, 90))
	r.LatencyP99Ms = ms(Percentile(sorted, 99))
	if len(sorted) > 0 {
		r.LatencyMaxMs = ms(sorted[len(sorted)-1])
		r.LatencyCDF = make([]float64, 101)
		r.LatencyCDF[0] = ms(sorted[0])
		for p := 1; p <= 100; p++ {
			r.LatencyCDF[p] = ms(Percentile(sorted, float64(p)))
		}
	}
}

// Errors counts the delivery errors: duplicates, out-of-order events and gaps (all must be 0).
func (r Result) Errors() int64 { return r.Duplicates + r.OutOfOrder + r.Gaps }

// Failures lists what went wrong in the run, one phrase each; none means every watcher opened,
// every change committed and each was delivered once, in order, to every watcher of its order.
func (r Result) Failures() []string {
	var f []string
	if r.Failed > 0 || r.Opened < int64(r.Watchers) {
		f = append(f, fmt.Sprintf("%d of %d watchers failed to open", int64(r.Watchers)-r.Opened, r.Watchers))
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

// WriteTable writes the report as a plain-text table, one row per transport.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "ordercast bench: %d watchers (%d per order) on %d node(s), %.0f changes/s for %s; %s\n\n",
		rep.Watchers, rep.PerOrder, rep.Nodes, rep.Rate, rep.Duration, rep.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tholding\tclients\topened\tfailed\tconnect/s\tRSS MiB before→after\tKiB/stream\tdelivered\texpected\tdup/ooo/gap\tp50 ms\tp90 ms\tp99 ms\tmax ms\treq/s\tB/change\tCPU µs/change\t")
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%.0f→%.0f\t%.1f\t%d\t%d\t%d/%d/%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t\n",
			r.Transport, r.holdingLabel(), r.clientProcesses(), r.Opened, r.Failed, r.ConnectRate,
			float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.BytesPerStream/1024, r.Delivered, r.Expected,
			r.Duplicates, r.OutOfOrder, r.Gaps, r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms, r.LatencyMaxMs,
			r.RequestsPerSecond, r.BytesPerDelivered, r.CPUPerDeliveredMicros)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Runs {
		if r.Capped {
			fmt.Fprintf(w, "%s: changes capped at %d (%d orders × %d steps): add watchers or lower --rate/--duration\n", r.Transport, r.Committed+r.CommitErrors, r.Orders, len(statusCycle))
		}
		if r.CommitErrors > 0 {
			fmt.Fprintf(w, "%s: %d status changes failed\n", r.Transport, r.CommitErrors)
		}
		if r.Holding == "" {
			fmt.Fprintf(w, "%s: holding \"?\": the servers at --url hold streams as their --hold-streams says; the bench cannot tell\n", r.Transport)
		}
		if r.Coalesced > 0 {
			fmt.Fprintf(w, "%s: %d versions coalesced between polls (not seen, by the nature of polling)\n", r.Transport, r.Coalesced)
		}
	}
	return nil
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
<table>
<thead><tr><th>transport</th><th>holding</th><th>clients</th><th>opened</th><th>failed</th><th>KiB/stream</th><th>delivered</th><th>expected</th><th>dup/ooo/gap</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>req/s</th><th>bytes/change</th><th>CPU µs/change</th></tr></thead>
<tbody>
{{range .Rep.Runs}}<tr><td>{{.Transport}}</td><td>{{holding .}}</td><td>{{clients .}}</td><td>{{.Opened}}</td><td>{{.Failed}}</td><td>{{printf "%.1f" (kib .BytesPerStream)}}</td><td>{{.Delivered}}</td><td>{{.Expected}}</td><td>{{.Duplicates}}/{{.OutOfOrder}}/{{.Gaps}}</td><td>{{printf "%.1f" .LatencyP50Ms}}</td><td>{{printf "%.1f" .LatencyP90Ms}}</td><td>{{printf "%.1f" .LatencyP99Ms}}</td><td>{{printf "%.1f" .LatencyMaxMs}}</td><td>{{printf "%.0f" .RequestsPerSecond}}</td><td>{{printf "%.0f" .BytesPerDelivered}}</td><td>{{printf "%.0f" .CPUPerDeliveredMicros}}</td></tr>
{{end}}</tbody>
</table>
<h2>Commit-to-receive latency</h2>
<p>Share of delivered changes (y) received within a latency (x, log scale).</p>
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
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="330" viewBox="0 0 760 330" font-size="11">`)
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

func (c *chart) line(i int, name string, xs, ys []float64) {
	color := palette[i%len(palette)]
	var pts strings.Builder
	for k := range xs {
		fmt.Fprintf(&pts, "%.1f,%.1f ", c.px(xs[k]), c.py(ys[k]))
	}
	fmt.Fprintf(&c.b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color, strings.TrimSpace(pts.String()))
	ly := c.y0 + 10 + float64(i)*16
	fmt.Fprintf(&c.b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"/><text x="%g" y="%g">%s</text>`,
		c.x0+c.w+12, ly, c.x0+c.w+32, ly, color, c.x0+c.w+36, ly+4, template.HTMLEscapeString(name))
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
		for _, v := range r.LatencyCDF {
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
	for i, r := range rep.Runs {
		if len(r.LatencyCDF) == 0 {
			continue
		}
		xs := make([]float64, len(r.LatencyCDF))
		ys := make([]float64, len(r.LatencyCDF))
		for p, v := range r.LatencyCDF {
			xs[p], ys[p] = math.Max(v, lo), float64(p)
		}
		c.line(i, r.Transport, xs, ys)
	}
	return c.axes("commit-to-receive latency", "delivered changes")
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
			c.line(i, r.Transport, xs, ys)
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
