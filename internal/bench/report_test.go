package bench

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// cells splits a line of a tabwriter table into its cells: they are at least two spaces apart, and
// no cell holds two spaces in a row.
func cells(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

// tableRow returns the status table's header cells and the cells of the row of transport tr.
func tableRow(t *testing.T, table, tr string) map[string]string {
	t.Helper()
	lines := strings.Split(table, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "transport") {
			continue
		}
		head := cells(l)
		for _, row := range lines[i+1:] {
			c := cells(row)
			if len(c) == len(head) && c[0] == tr {
				m := map[string]string{}
				for k, h := range head {
					m[h] = c[k]
				}
				return m
			}
		}
	}
	t.Fatalf("no row of %s in:\n%s", tr, table)
	return nil
}

// htmlRow returns the HTML status table's header cells and the cells of its first row.
func htmlRow(t *testing.T, html string) map[string]string {
	t.Helper()
	th := regexp.MustCompile(`<th>(.*?)</th>`)
	td := regexp.MustCompile(`<td>(.*?)</td>`)
	head, row, ok := strings.Cut(html[strings.Index(html, "<thead>"):], "</thead>")
	if !ok {
		t.Fatal("no table head in the HTML report")
	}
	row, _, _ = strings.Cut(row, "</tr>")
	hs, ds := th.FindAllStringSubmatch(head, -1), td.FindAllStringSubmatch(row, -1)
	if len(hs) != len(ds) {
		t.Fatalf("%d header cells, %d in the row", len(hs), len(ds))
	}
	m := map[string]string{}
	for k := range hs {
		m[hs[k][1]] = ds[k][1]
	}
	return m
}

// TestReportCPUPerChangeAndPerDelivered: "CPU µs/change" is the server's CPU per committed change,
// and the CPU per delivered change has its own column, in the table and the HTML report. With 6
// watchers an order, 1,000 changes are 6,000 deliveries: 0.6 s of CPU is 600 µs a change and
// 100 µs a delivery.
func TestReportCPUPerChangeAndPerDelivered(t *testing.T) {
	r := Result{Transport: "sse", Watchers: 600, PerOrder: 6, Opened: 600}
	s := stepOutcome{cpuSeconds: 0.6, window: 10, counts: Counts{Delivered: 6000, BytesRead: 6000 * 150}}
	s.load.committed, s.load.offered, s.load.achieved = 1000, 100, 100
	r.add(s)
	r.setLoad(s)
	rep := &Report{Watchers: 600, PerOrder: 6, Runs: []Result{r}}
	var table, html bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for name, row := range map[string]map[string]string{"table": tableRow(t, table.String(), "sse"), "HTML": htmlRow(t, html.String())} {
		for col, want := range map[string]string{"CPU µs/change": "600", "CPU µs/delivered": "100"} {
			if got := row[col]; got != want {
				t.Errorf("%s: %q is %q, want %q (row %v)", name, col, got, want, row)
			}
		}
	}
	if got := tableRow(t, table.String(), "sse")["B/delivered"]; got != "150" {
		t.Errorf("B/delivered is %q, want 150", got)
	}
	if got := htmlRow(t, html.String())["bytes/delivered"]; got != "150" {
		t.Errorf("HTML bytes/delivered is %q, want 150", got)
	}
}

// TestReportAgainstTheFloor: with --floor the table ends with ordercast's figures as multiples
// of the floor's, for status changes and for positions; without a floor run, no such line.
func TestReportAgainstTheFloor(t *testing.T) {
	rep := &Report{Runs: []Result{
		{Transport: TransportSSE, CPUPerChangeMicros: 210, StartLatencyP99Ms: 90, DueLatencyP99Ms: 300, AchievedRate: 4990},
		{Transport: TransportFloor, CPUPerChangeMicros: 175, StartLatencyP99Ms: 75, DueLatencyP99Ms: 100, AchievedRate: 5000},
	}}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	want := "sse against the floor: CPU a change 1.20× (210 against 175 µs), p99 from the start 1.20× (90 against 75 ms), p99 from the due time 3.00× (300 against 100 ms), achieved 99.8 % of the floor's rate (4990 against 5000/s)"
	if !strings.Contains(table.String(), want) {
		t.Errorf("table:\n%s\nwant the line %q", table.String(), want)
	}
	rep.Runs = rep.Runs[:1]
	if n := rep.againstFloor(); n != "" {
		t.Errorf("without a floor run: %q", n)
	}

	loc := &Report{Couriers: 10, Runs: []Result{
		{Transport: TransportSSE, Location: &LocationResult{CPUPerAcceptedMicros: 40, PostToScreenP99Ms: 30, Accepted: 19900}},
		{Transport: TransportFloor, Location: &LocationResult{CPUPerAcceptedMicros: 50, PostToScreenP99Ms: 20, Accepted: 20000}},
	}}
	table.Reset()
	if err := loc.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	want = "ordercast against the floor: CPU a position 0.80× (40 against 50 µs), p99 post→screen 1.50× (30 against 20 ms), accepted 99.5 % of the floor's rate (19900 against 20000/s)"
	if !strings.Contains(table.String(), want) {
		t.Errorf("table:\n%s\nwant the line %q", table.String(), want)
	}
}
