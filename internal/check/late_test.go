package check

import (
	"testing"
	"time"
)

// TestJudge_LateCases: an event that comes more than lateBound after it was due, on an order's
// stream or a party's, is late, unless a fault on its node was on then or a watcher fault hit
// its watcher; the waits held are counted and summarized.
func TestJudge_LateCases(t *testing.T) {
	if j := Judge(records()); j.Delivery.Judged != 18+13 || j.Delivery.Excused != 0 || j.Delivery.MaxMS != 30 || j.Delivery.P50MS != 20 {
		t.Fatalf("delivery of the clean records = %+v, want 31 arrivals held, waits of 20 and 30 ms", j.Delivery)
	}
	late := func(r *Records) *Arrival {
		a := &r.Sessions[0].Received[2].Arrival
		a.Wait = 10 * time.Second
		return a
	}
	checkDamages(t, []damage{
		{"an event held past the bound", func(r *Records) { r.Sessions[0].Received[2].Wait = lateBound + time.Millisecond }, ALate},
		{"a party event held past the bound", func(r *Records) { r.Parties[1].Events[3].Wait = 4 * time.Second }, ALate},
		{"late after the fault's span", func(r *Records) {
			a := late(r)
			r.Disturbed = []Span{{From: a.Due.Add(-time.Minute), To: a.Due.Add(-time.Second)}}
		}, ALate},
		{"late from a node while another was stopped", func(r *Records) {
			a := late(r)
			a.Node = 1
			r.Disturbed = []Span{{From: a.Due, To: a.Due.Add(time.Minute), Node: 2}}
		}, ALate},
	})
	for _, tt := range []struct {
		name   string
		excuse func(r *Records, a *Arrival)
	}{
		{"a fault on when it was due", func(r *Records, a *Arrival) {
			r.Disturbed = []Span{{From: a.Due.Add(-time.Second), To: a.Due.Add(time.Second)}}
		}},
		{"a fault on before it came", func(r *Records, a *Arrival) {
			r.Disturbed = []Span{{From: a.Due.Add(9 * time.Second), To: a.Due.Add(time.Minute)}}
		}},
		{"a fault on its node", func(r *Records, a *Arrival) {
			a.Node = 2
			r.Disturbed = []Span{{From: a.Due, To: a.Due.Add(time.Minute), Node: 2}}
		}},
		{"a fault on a node, the event through nginx", func(r *Records, a *Arrival) {
			r.Disturbed = []Span{{From: a.Due, To: a.Due.Add(time.Minute), Node: 3}}
		}},
		{"a watcher fault on its watcher", func(r *Records, a *Arrival) { a.Excused = true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := records()
			tt.excuse(&r, late(&r))
			if j := Judge(r); j.Total() != 0 || j.Delivery.Excused == 0 || j.Delivery.Judged+j.Delivery.Excused != 31 {
				t.Fatalf("a wait a fault explains: %v %v, delivery %+v", j.Anomalies, j.Examples, j.Delivery)
			}
		})
	}
}

// TestArrival: an event is due at its commit, or at its connection's answer when committed
// before; a watcher fault that hit the watcher since excuses its wait, one over before does not.
func TestArrival(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var f watchFaults
	c := &streamConn{node: 2, opened: t0.Add(-time.Second)}
	if a := c.arrivalAt(t0, t0.Add(50*time.Millisecond), &f); !a.Due.Equal(t0) || a.Wait != 50*time.Millisecond || a.Node != 2 || a.Excused {
		t.Errorf("live event: %+v", a)
	}
	c.opened = t0.Add(2 * time.Second)
	if a := c.arrivalAt(t0, t0.Add(2100*time.Millisecond), &f); !a.Due.Equal(c.opened) || a.Wait != 100*time.Millisecond {
		t.Errorf("backlog event: %+v", a)
	}
	if a := c.arrivalAt(time.Time{}, t0, &f); !a.Due.IsZero() {
		t.Errorf("no commit time: %+v, want not judged", a)
	}
	c.opened = t0
	f.hit(t0.Add(-3*time.Second), t0.Add(-time.Second).UnixNano())
	if a := c.arrivalAt(t0, t0.Add(4*time.Second), &f); a.Excused {
		t.Errorf("a pause over before the event was due excused it: %+v", a)
	}
	f.hit(t0.Add(time.Second), t0.Add(3*time.Second).UnixNano())
	if a := c.arrivalAt(t0, t0.Add(4*time.Second), &f); !a.Excused {
		t.Errorf("a pause after the event was due did not excuse it: %+v", a)
	}
}

// TestDisturbed: a node or PostgreSQL fault's span runs from its start to its shadow after it is
// over (recovered, or lifted when later; maxRecovery after the lift when not measured), on its
// node or all of them; watcher faults and skipped ones have none. The spans of one node are its
// own and all nodes', merged.
func TestDisturbed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	pg, other := shadow(FPGRestart).Seconds(), shadow(FNodeKill).Seconds()
	log := []*fault{
		{Kind: FNodeKill, Node: 1, Start: at(0), Lifted: at(2), Recovered: 5 * time.Second}, // to 5 + other
		{Kind: FPGRestart, Start: at(5.5), Lifted: at(9), Recovered: time.Second},           // to 9 + pg
		{Kind: FWatchPause, Start: at(100), Lifted: at(110), Recovered: 10 * time.Second},
		{Kind: FListen, Start: at(200), Skipped: true, Recovered: -1},
		{Kind: FNodeKill, Node: 2, Start: at(300), Lifted: at(301), Recovered: -1},        // to 301 + maxRecovery + other
		{Kind: FListen, Start: at(50), Lifted: at(51), Recovered: 500 * time.Millisecond}, // to 51 + other
	}
	sh := newShadows(disturbed(log))
	for _, tt := range []struct {
		node int
		want []Span
	}{
		{0, []Span{{From: at(0), To: at(9 + pg), Node: 1}, {From: at(50), To: at(51 + other)}, {From: at(300), To: at(301 + maxRecovery.Seconds() + other), Node: 2}}},
		{1, []Span{{From: at(0), To: at(9 + pg), Node: 1}, {From: at(50), To: at(51 + other)}}},
		{2, []Span{{From: at(5.5), To: at(9 + pg)}, {From: at(50), To: at(51 + other)}, {From: at(300), To: at(301 + maxRecovery.Seconds() + other), Node: 2}}},
		{3, []Span{{From: at(5.5), To: at(9 + pg)}, {From: at(50), To: at(51 + other)}}},
	} {
		got := sh.of(tt.node)
		if len(got) != len(tt.want) {
			t.Fatalf("node %d: spans = %v, want %v", tt.node, got, tt.want)
		}
		for i := range tt.want {
			if !got[i].From.Equal(tt.want[i].From) || !got[i].To.Equal(tt.want[i].To) {
				t.Errorf("node %d: span %d = %v, want %v", tt.node, i, got[i], tt.want[i])
			}
		}
	}
	for _, tt := range []struct {
		from, to float64
		want     bool
	}{{-5, -1, false}, {-5, 0, true}, {20, 49, false}, {20, 60, true}, {52, 52.5, true}, {53, 299, false}, {1000, 2000, false}} {
		if o := overlaps(sh.of(0), at(tt.from), at(tt.to)); o != tt.want {
			t.Errorf("overlaps [%v, %v] = %v, want %v", tt.from, tt.to, o, tt.want)
		}
	}
}
