package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

// The location workload (`ordercast bench --couriers C`): C couriers, courier i carrying order i,
// post a position every --location-every to orders watched by the run's SSE watchers, which
// record every position they receive. The couriers are spread over the same processes as the
// watchers (post.go); the parent joins each position a watcher read with the post that sent it,
// by order and the position's at, which the bench chose, and measures post-to-screen from the
// position's due time on the schedule and from the start of the post request. With --rate as well, the status workload runs at the same time on
// the same orders (see statusCycleWithLocation).

// DefaultLocationEvery is how often each courier posts by default: a phone reports every few
// seconds.
const DefaultLocationEvery = 2 * time.Second

// statusCycleWithLocation is the path the status workload moves each order along when it runs
// beside the location workload. A status change must not stop the positions it is compared
// with, and out_for_delivery is the last stage before the end: so those runs start the servers
// with --location-from confirmed, confirm each order when it is made, and move it on through
// the three stages that follow, every one of which shows its courier.
var statusCycleWithLocation = []ordercast.Status{"preparing", "ready", "out_for_delivery"}

// locationFromWithStatus is the --location-from of servers in a run with both workloads.
const locationFromWithStatus = ordercast.StatusConfirmed

// LocationResult is what the location workload measured in one run.
type LocationResult struct {
	Couriers     int     `json:"couriers"`
	EverySeconds float64 `json:"every_seconds"`
	Posters      int     `json:"posters"`
	// ShownFrom is the stage from which the orders showed their courier (--location-from).
	ShownFrom ordercast.Status `json:"shown_from"`
	// Offered is the schedule's positions per second; Accepted the accepted (2xx) ones per second
	// from the first post's due time to the last accepted one's answer, and at least the
	// schedule's length (Timing.Rate, as the status workload's achieved rate); BehindSeconds how
	// late the last request started against its due time, MaxLateMs how late any did (with
	// --post-batch, against its tick's end). ScheduleSlipped is set when one started more than
	// 10 ms (lateBound) late: the posters fell behind their schedule, which post→screen from the
	// start leaves out. Planned, Unsent, AcceptedPosts, Refused (429) and Failed count posts;
	// NoOrder counts accepted ones that reached no order.
	Offered         float64 `json:"offered_per_second"`
	Accepted        float64 `json:"accepted_per_second"`
	BehindSeconds   float64 `json:"behind_schedule_seconds"`
	MaxLateMs       float64 `json:"max_late_ms"`
	ScheduleSlipped bool    `json:"schedule_slipped"`
	Planned         int64   `json:"planned"`
	Unsent          int64   `json:"unsent"`
	AcceptedPosts   int64   `json:"accepted"`
	Refused         int64   `json:"refused"`
	Failed          int64   `json:"failed"`
	NoOrder         int64   `json:"no_order"`
	// Requests is how many HTTP requests carried the posts (fewer than the posts with
	// --post-batch).
	Requests   int64  `json:"requests"`
	FirstError string `json:"first_error,omitempty"`
	// Owed is one delivery per accepted position and watcher of its order; Delivered the
	// positions watchers read. The cap (one position per order and stream per
	// --location-interval) may replace a held-back position with a newer one, so Delivered may
	// be below Owed without anything lost. Remote counts those read on a node other than the one
	// the position was posted to: they crossed the cluster bus.
	Owed      int64 `json:"owed"`
	Delivered int64 `json:"delivered"`
	Remote    int64 `json:"remote"`
	// Duplicates counts a position read twice by one watcher; OutOfOrder one older than a
	// position the watcher had (must be 0); Uncorrelated a position matching no accepted post of
	// the bench and Inconsistent one read before its post started (both must be 0).
	Duplicates   int64 `json:"duplicates"`
	OutOfOrder   int64 `json:"out_of_order"`
	Uncorrelated int64 `json:"uncorrelated"`
	Inconsistent int64 `json:"inconsistent"`
	// StaleAtEnd counts the couriers one of whose order's watchers, after the settle, had not
	// read the courier's last accepted position (must be 0: latest wins, and a position the cap
	// held back leaves within one --location-interval).
	StaleAtEnd int64 `json:"stale_at_end"`
	// DueToScreen* run from the position's due time on the schedule (with --post-batch its own,
	// not its tick's end) to a watcher reading it: PostToScreen* plus any wait for the tick, a
	// free poster or the courier's previous post (coordinated omission, as for statuses).
	DueToScreenP50Ms float64   `json:"due_to_screen_p50_ms"`
	DueToScreenP90Ms float64   `json:"due_to_screen_p90_ms"`
	DueToScreenP99Ms float64   `json:"due_to_screen_p99_ms"`
	DueToScreenMaxMs float64   `json:"due_to_screen_max_ms"`
	DueToScreenCDF   []float64 `json:"due_to_screen_cdf_ms"`
	// PostToScreen* run from the start of the post request to a watcher reading the position.
	PostToScreenP50Ms float64   `json:"post_to_screen_p50_ms"`
	PostToScreenP90Ms float64   `json:"post_to_screen_p90_ms"`
	PostToScreenP99Ms float64   `json:"post_to_screen_p99_ms"`
	PostToScreenMaxMs float64   `json:"post_to_screen_max_ms"`
	PostToScreenCDF   []float64 `json:"post_to_screen_cdf_ms"`
	// CPUPerAcceptedMicros is the servers' CPU over the load per accepted position (with the
	// status workload beside it, its changes' CPU is in it too); RSSAfterLoad the servers'
	// memory when the load ended.
	CPUPerAcceptedMicros float64 `json:"cpu_per_accepted_us"`
	RSSAfterLoad         int64   `json:"rss_after_load_bytes"`
}

// AcceptedShortfall reports whether fewer than 98 % of the offered positions were accepted per
// second: the latencies are then those of the accepted rate.
func (l *LocationResult) AcceptedShortfall() bool { return l.Accepted < heldShare*l.Offered }

// DueToScreen is p50/p90/p99/max (ms) from the position's due time, as the table prints them.
func (l *LocationResult) DueToScreen() string {
	return fmtMs(l.DueToScreenP50Ms) + "/" + fmtMs(l.DueToScreenP90Ms) + "/" + fmtMs(l.DueToScreenP99Ms) + "/" + fmtMs(l.DueToScreenMaxMs)
}

// PostToScreen is p50/p90/p99/max (ms) from the start of the post, as the table prints them.
func (l *LocationResult) PostToScreen() string {
	return fmtMs(l.PostToScreenP50Ms) + "/" + fmtMs(l.PostToScreenP90Ms) + "/" + fmtMs(l.PostToScreenP99Ms) + "/" + fmtMs(l.PostToScreenMaxMs)
}

// failures lists what makes a location run untrustworthy, one phrase each.
func (l *LocationResult) failures() []string {
	var f []string
	if l.AcceptedPosts == 0 {
		f = append(f, "no position was accepted")
	}
	if l.Owed > 0 && l.Delivered == 0 {
		f = append(f, "no position reached a watcher")
	}
	if l.NoOrder > 0 {
		f = append(f, fmt.Sprintf("%d accepted positions reached no order (its stage does not show the courier: with --rate, servers at --url need --location-from %s)", l.NoOrder, locationFromWithStatus))
	}
	if l.StaleAtEnd > 0 {
		f = append(f, fmt.Sprintf("%d couriers stale at the end: a watcher of their order had not read their last accepted position when the positions settled", l.StaleAtEnd))
	}
	if l.OutOfOrder+l.Uncorrelated+l.Inconsistent > 0 {
		f = append(f, fmt.Sprintf("%d positions older than one the watcher had, %d matching no accepted post, %d read before their post started", l.OutOfOrder, l.Uncorrelated, l.Inconsistent))
	}
	return f
}

// Notes are the lines under the location table that qualify it, warnings first.
func (l *LocationResult) Notes() []string {
	var n []string
	if l.AcceptedShortfall() {
		n = append(n, fmt.Sprintf("WARNING: offered %.0f positions/s, accepted %.0f/s (%.0f %%); the posters ended %.2f s behind schedule: the latencies are those of the accepted rate",
			l.Offered, l.Accepted, 100*l.Accepted/l.Offered, l.BehindSeconds))
	}
	if l.ScheduleSlipped {
		n = append(n, lateWarning("post", "the posters", l.MaxLateMs, "post→screen", "due→screen"))
	}
	if l.Refused+l.Failed > 0 {
		n = append(n, fmt.Sprintf("%d positions refused (429), %d failed; the first failure: %s", l.Refused, l.Failed, l.FirstError))
	}
	if l.Unsent > 0 {
		n = append(n, fmt.Sprintf("%d positions not sent: the posters were still behind when their schedule's hard stop came; due→screen leaves them out, the most delayed of all", l.Unsent))
	}
	if l.Delivered < l.Owed {
		n = append(n, fmt.Sprintf("post→screen and due→screen are over the %d positions watchers read of the %d owed (%.0f %%): one the cap held back and a newer one replaced is in neither, and those had waited longest, so their tails read short; that every watcher ended with its courier's newest position is the stale-at-end check",
			l.Delivered, l.Owed, 100*float64(l.Delivered)/float64(l.Owed)))
	}
	return n
}

// PosLatencies is what the delivered positions took, joined with their posts.
type PosLatencies struct {
	// FromDue runs from the position's due time on the schedule to the watcher reading it (µs).
	FromDue []int64
	// FromStart runs from the start of the post request to the watcher reading the position (µs).
	FromStart []int64
	// Remote counts positions read on a node other than the one they were posted to.
	Remote int64
	// Uncorrelated counts positions matching no accepted post; Inconsistent those read before
	// their post started. Both must be 0; neither is in FromStart.
	Uncorrelated int64
	Inconsistent int64
}

// CorrelatePositions matches each position a watcher read with the accepted post that sent it:
// courier i carries order i, and the bench stamps each post with its own at.
func CorrelatePositions(posts []Post, samples []PosSample) PosLatencies {
	type key struct {
		courier int
		at      int64
	}
	byKey := make(map[key]Post, len(posts))
	for _, p := range posts {
		byKey[key{p.Courier, p.At}] = p
	}
	l := PosLatencies{FromDue: make([]int64, 0, len(samples)), FromStart: make([]int64, 0, len(samples))}
	for _, s := range samples {
		p, ok := byKey[key{s.Order, s.At}]
		switch {
		case !ok:
			l.Uncorrelated++
		case s.Received < p.Start:
			l.Inconsistent++
		default:
			l.FromDue = append(l.FromDue, fromDue(s.Received, p.Due, p.Start))
			l.FromStart = append(l.FromStart, (s.Received-p.Start)/1e3)
			if s.Node != p.Node {
				l.Remote++
			}
		}
	}
	return l
}

// staleAtEnd counts the couriers with an accepted post one of whose order's watchers has not read
// the newest of them: newest holds, per order and group, the oldest of its watchers' newest
// positions (courier i carries order i).
func staleAtEnd(posts []Post, newest []OrderPos) int64 {
	last := map[int]int64{}
	for _, p := range posts {
		last[p.Courier] = max(last[p.Courier], p.At)
	}
	stale := map[int]bool{}
	for _, o := range newest {
		if at, ok := last[o.Order]; ok && o.At < at {
			stale[o.Order] = true
		}
	}
	return int64(len(stale))
}

// owedPositions is one delivery per accepted post and watcher of its order (watcher g watches
// order g/perOrder).
func owedPositions(posts []Post, watchers, perOrder int) int64 {
	var n int64
	for _, p := range posts {
		n += int64(max(0, min(perOrder, watchers-p.Courier*perOrder)))
	}
	return n
}

// setLocation fills the run's location figures from the step that carried the load.
func (r *Result) setLocation(l *LocationResult, s stepOutcome) {
	pc := s.posts
	r.Load = s.machine
	l.Offered, l.Accepted, l.BehindSeconds = pc.Offered, pc.Timing.Rate(pc.Accepted), time.Duration(pc.Timing.Behind).Seconds()
	l.MaxLateMs = float64(pc.Timing.MaxLate) / float64(time.Millisecond)
	l.ScheduleSlipped = slipped(time.Duration(pc.Timing.MaxLate))
	l.Planned, l.Unsent, l.AcceptedPosts, l.Refused, l.Failed, l.NoOrder, l.FirstError = pc.Planned, pc.Unsent, pc.Accepted, pc.Refused, pc.Failed, pc.NoOrder, pc.FirstError
	l.Requests = pc.Requests
	l.Owed, l.Delivered = s.owedPositions, s.counts.Positions
	l.Duplicates, l.OutOfOrder = s.counts.PosDuplicates, s.counts.PosOutOfOrder
	l.Remote, l.Uncorrelated, l.Inconsistent = s.positions.Remote, s.positions.Uncorrelated, s.positions.Inconsistent
	l.StaleAtEnd = s.staleAtEnd
	l.DueToScreenP50Ms, l.DueToScreenP90Ms, l.DueToScreenP99Ms, l.DueToScreenMaxMs, l.DueToScreenCDF = summarize(s.positions.FromDue)
	l.PostToScreenP50Ms, l.PostToScreenP90Ms, l.PostToScreenP99Ms, l.PostToScreenMaxMs, l.PostToScreenCDF = summarize(s.positions.FromStart)
	if pc.Accepted > 0 {
		l.CPUPerAcceptedMicros = s.cpuSeconds / float64(pc.Accepted) * 1e6
	}
	r.Location = l
}

// startPosts has every group post its couriers' positions for dur; the channel gets their sum.
func (r *run) startPosts(dur time.Duration) <-chan postsDone {
	done := make(chan postsDone, 1)
	go func() {
		r.gmu.Lock()
		groups := slices.Clone(r.groups)
		r.gmu.Unlock()
		results := make([]PostCounts, len(groups))
		errs := make([]error, len(groups))
		var wg sync.WaitGroup
		for i, g := range groups {
			wg.Go(func() { results[i], errs[i] = g.Post(dur) })
		}
		wg.Wait()
		var sum PostCounts
		for _, pc := range results {
			sum.Add(pc)
		}
		done <- postsDone{sum, errors.Join(errs...)}
	}()
	return done
}

type postsDone struct {
	counts PostCounts
	err    error
}

// prepareCourierOrder makes order i of a location run: created with a drop-off (so positions
// carry an ETA), given courier i when i < couriers, and moved to stage. It returns the order's
// version.
func prepareCourierOrder(ctx context.Context, c *client.Client, id string, courier int, stage ordercast.Status) (int64, error) {
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: id, Dropoff: api.PlaceAt(52.53, 13.41)}); err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	if courier >= 0 {
		cid := CourierID(courier)
		body, _ := json.Marshal(api.SetCourierRequest{CourierID: api.AssignTo(cid)}) // a string: cannot fail
		if err := sendJSON(ctx, c, "PUT", api.CourierPath(id), body); err != nil {
			return 0, fmt.Errorf("assign courier: %w", err)
		}
	}
	res, err := c.SetStatus(ctx, id, client.SetStatusRequest{Status: stage})
	if err != nil {
		return 0, fmt.Errorf("move order to %s: %w", stage, err)
	}
	return res.Order.Version, nil
}

// sendJSON sends a JSON body with c's token; nil on 200.
func sendJSON(ctx context.Context, c *client.Client, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// positionsAgainstFloor compares ordercast's positions with the floor's (--floor): server CPU a
// position, p99 post→screen, the rate accepted. Empty without both.
func (rep *Report) positionsAgainstFloor() string {
	var ours, floor *LocationResult
	for _, r := range rep.Runs {
		if r.Transport == TransportFloor {
			floor = r.Location
		} else {
			ours = r.Location
		}
	}
	if ours == nil || floor == nil || floor.CPUPerAcceptedMicros <= 0 || floor.PostToScreenP99Ms <= 0 || floor.Accepted <= 0 {
		return ""
	}
	return fmt.Sprintf("ordercast against the floor: CPU a position %.2f× (%.0f against %.0f µs), p99 post→screen %.2f× (%s against %s ms), accepted %.1f %% of the floor's rate (%.0f against %.0f/s)",
		ours.CPUPerAcceptedMicros/floor.CPUPerAcceptedMicros, ours.CPUPerAcceptedMicros, floor.CPUPerAcceptedMicros,
		ours.PostToScreenP99Ms/floor.PostToScreenP99Ms, fmtMs(ours.PostToScreenP99Ms), fmtMs(floor.PostToScreenP99Ms),
		100*ours.Accepted/floor.Accepted, ours.Accepted, floor.Accepted)
}

// serverLabel names the server a location run measured: ordercast, or the floor (--floor).
func (r Result) serverLabel() string {
	if r.Transport == TransportFloor {
		return TransportFloor
	}
	return "ordercast"
}

// PostingMode says how a location run's positions were sent.
func (rep *Report) PostingMode() string {
	if rep.PostBatch > 1 {
		return fmt.Sprintf("positions through POST /v1/locations, up to %d a request", rep.PostBatch)
	}
	if rep.CourierTokens {
		return "each position on its own POST /v1/couriers/{cid}/location with the courier's own token"
	}
	return "each position on its own POST /v1/couriers/{cid}/location"
}

// writeLocation writes a location run's report: its header, the location table and notes, then
// the status table when the status workload ran beside it.
func (rep *Report) writeLocation(w io.Writer) error {
	fmt.Fprintf(w, "ordercast bench --couriers: %d couriers posting every %s to %d SSE watchers (%d per order) on %d node(s) for %s, %s",
		rep.Couriers, rep.LocationEvery, rep.Watchers, rep.PerOrder, rep.Nodes, rep.Duration, rep.PostingMode())
	if rep.WithStatus {
		fmt.Fprintf(w, ", with %.0f status changes/s on the same orders (preparing, ready, out_for_delivery; positions shown from %s on)", rep.Rate, locationFromWithStatus)
	}
	fmt.Fprintf(w, "; %s\n\n", rep.setting())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tholding\tclients\topened\tfailed\toffered/s\taccepted/s\tbehind s\tlate ms max\trequests\trefused\tfailed posts\towed\tdelivered\tremote\tdup/ooo\tdue→screen ms p50/p90/p99/max\tpost→screen ms p50/p90/p99/max\tCPU µs/position\tRSS MiB after load\t")
	for _, r := range rep.Runs {
		l := r.Location
		if l == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%.0f\t%.2f\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%s\t%s\t%.0f\t%.0f\t\n",
			r.serverLabel(), r.holdingLabel(), r.clientProcesses(), r.Opened, r.Failed, l.Offered, l.Accepted, l.BehindSeconds, fmtMs(l.MaxLateMs),
			l.Requests, l.Refused, l.Failed, l.Owed, l.Delivered, l.Remote, l.Duplicates, l.OutOfOrder, l.DueToScreen(), l.PostToScreen(),
			l.CPUPerAcceptedMicros, float64(l.RSSAfterLoad)/(1<<20))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Runs {
		if r.Location == nil {
			continue
		}
		notes := r.Location.Notes()
		if !rep.WithStatus {
			notes = append(notes, r.notes()...)
		}
		for _, n := range notes {
			if len(rep.Runs) > 1 {
				n = r.serverLabel() + ": " + n
			}
			fmt.Fprintln(w, n)
		}
	}
	if n := rep.positionsAgainstFloor(); n != "" {
		fmt.Fprintln(w, n)
	}
	if !rep.WithStatus {
		return nil
	}
	fmt.Fprintln(w, "\nstatus changes beside the positions (their CPU per change includes the positions' work):")
	return rep.writeStatus(w)
}
