package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// The couriers of the location workload. Each group (a process) posts for its share of them, on a
// schedule that spreads the share's posts evenly over --location-every: post k of a group with n
// couriers is due at k×every/n and comes from its courier k%n. A bounded pool of posters sends
// them over keep-alive connections; a slow server makes the pool fall behind the schedule, which
// the counts report, rather than open more connections.

// Post is one accepted position: which courier posted it, the at the bench chose for it (the key
// a watcher's sample brings back), when the schedule meant it to be sent, when its request
// started and to which node it went.
type Post struct {
	Courier int
	At      int64 // Unix nanoseconds, whole microseconds
	// Due is the position's own time on the schedule, also with PostBatch: the wait for its
	// tick's end, for a free poster and for its courier's previous post is all in due→screen.
	Due   int64 // Unix nanoseconds
	Start int64 // Unix nanoseconds
	Node  int
}

// MarshalJSON writes a post as a 5-element array: a worker's answer carries every post.
func (p Post) MarshalJSON() ([]byte, error) {
	return json.Marshal([5]int64{int64(p.Courier), p.At, p.Due, p.Start, int64(p.Node)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Post) UnmarshalJSON(b []byte) error {
	var a [5]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("post: %w", err)
	}
	*p = Post{Courier: int(a[0]), At: a[1], Due: a[2], Start: a[3], Node: int(a[4])}
	return nil
}

// PostCounts is what a group's couriers did in one load. Groups run in parallel, so the parent
// adds their counts and their rates.
type PostCounts struct {
	// Planned is the posts the schedule held; Unsent those not sent when its hard stop came.
	Planned int64 `json:"planned"`
	Unsent  int64 `json:"unsent"`
	// Accepted counts 2xx answers, Refused 429 (a courier over its budget), Failed any other
	// answer or a transport error (FirstError is the first). NoOrder counts accepted positions
	// that reached no order: the order was not in a stage that shows its courier.
	Accepted int64 `json:"accepted"`
	Refused  int64 `json:"refused"`
	// Requests counts the HTTP requests that carried the posts: one each, or fewer with
	// PostBatch.
	Requests   int64  `json:"requests"`
	Failed     int64  `json:"failed"`
	NoOrder    int64  `json:"no_order"`
	FirstError string `json:"first_error,omitempty"`
	// Offered is the schedule's posts per second; Timing what the posters kept of it (the
	// accepted posts per second are Timing.Rate(Accepted), over every group's posts at once).
	Offered float64 `json:"offered_per_second"`
	Timing  Timing  `json:"timing"`
	// Posts lists the accepted posts, for the parent to join with the watchers' samples.
	Posts []Post `json:"posts,omitempty"`
}

// Add adds o into c: counts and offered rates add up, since groups post at the same time, and
// their timings merge.
func (c *PostCounts) Add(o PostCounts) {
	c.Planned += o.Planned
	c.Unsent += o.Unsent
	c.Accepted += o.Accepted
	c.Refused += o.Refused
	c.Requests += o.Requests
	c.Failed += o.Failed
	c.NoOrder += o.NoOrder
	if c.FirstError == "" {
		c.FirstError = o.FirstError
	}
	c.Offered += o.Offered
	c.Timing.merge(o.Timing)
	c.Posts = append(c.Posts, o.Posts...)
}

// Sent is the posts that got an answer or failed.
func (c PostCounts) Sent() int64 { return c.Accepted + c.Refused + c.Failed }

// CourierID names courier i of a run.
func CourierID(i int) string { return "bench-courier-" + strconv.Itoa(i) }

// PostNode is the node courier i posts to, of nodes: the node after the one its order's first
// watcher is on (watcher g is on node g%nodes), so that in a cluster a position crosses the bus to
// reach most watchers, and posts are spread evenly over the nodes.
func PostNode(i, perOrder, nodes int) int { return (i*perOrder + 1) % nodes }

// DefaultPosters bounds the positions in flight over all processes, each on its keep-alive
// connection: at 20,000 posts a second it leaves each post 25 ms before the pool falls behind.
const DefaultPosters = 512

// postTimeout bounds one post.
const postTimeout = 30 * time.Second

// posters is one group's pool of posting connections.
type posters struct {
	spec GroupSpec
	// conns[g][n] is poster g's keep-alive connection to node n.
	conns wirePool
	// couriers holds a courier while its post is in flight: like a phone, a courier sends its
	// next position after the previous one's answer, so its positions arrive in the order of
	// their at, which is taken once the courier is free (the server drops an older fix).
	couriers []sync.Mutex
	// tokens[k] is courier CourierFirst+k's own token, when the spec has the servers' Secret.
	tokens []string
}

// newPosters returns the group's posters; posts in flight end when ctx does.
func newPosters(ctx context.Context, spec GroupSpec) (*posters, error) {
	conns, err := newWirePool(ctx, max(1, spec.Posters), spec.URLs, spec.Token, postTimeout)
	if err != nil {
		return nil, err
	}
	p := &posters{spec: spec, conns: conns, couriers: make([]sync.Mutex, max(0, spec.CourierCount))}
	if spec.Secret != "" && spec.PostBatch <= 1 {
		a, err := auth.New([]byte(spec.Secret))
		if err != nil {
			p.close()
			return nil, fmt.Errorf("bench: the servers' secret: %w", err)
		}
		p.tokens = make([]string, len(p.couriers))
		for k := range p.tokens {
			if p.tokens[k], err = a.SignActor(auth.Actor{Role: auth.RoleCourier, Sub: CourierID(spec.CourierFirst + k)}, 24*time.Hour); err != nil {
				p.close()
				return nil, fmt.Errorf("bench: sign courier %d's token: %w", spec.CourierFirst+k, err)
			}
		}
	}
	return p, nil
}

// close drops the posters' connections; no post may be in flight.
func (p *posters) close() { p.conns.close() }

// postJob is what one poster sends in one request: the schedule's posts ks (one, or with
// PostBatch a tick's posts to one node). The request is due at due (with PostBatch its tick's
// end), which its lateness is measured against; each post is due at its own time on the
// schedule, which its due→screen runs from.
type postJob struct {
	ks  []int
	due time.Time
}

// outcome is what became of one post: accepted (reaching orders), refused (429, or
// rate_limited in a batch's answer), or failed with why.
type outcome struct {
	post     Post
	answered time.Time // when the request's answer came
	accepted bool
	refused  bool
	reached  int
	why      string
}

// count adds one post's outcome to c.
func (c *PostCounts) count(o outcome) {
	switch {
	case o.accepted:
		c.Accepted++
		c.Posts = append(c.Posts, o.post)
		if o.reached == 0 {
			c.NoOrder++
		}
	case o.refused:
		c.Refused++
	default:
		c.Failed++
		if c.FirstError == "" {
			c.FirstError = CourierID(o.post.Courier) + ": " + o.why
		}
	}
}

// Batch ticks: with PostBatch, the schedule is cut into ticks and each tick's posts go out at
// its end, grouped by node, in requests of up to PostBatch. A tick is as long as PostBatch posts
// take on the schedule (so requests come out full), between 5 ms and 100 ms (an integration
// that forwards its couriers' positions flushes at least ten times a second), and never longer
// than Every (so a courier is at most once in a tick).
const (
	minBatchTick = 5 * time.Millisecond
	maxBatchTick = 100 * time.Millisecond
)

// batchTick is the tick of a group with n couriers.
func (s GroupSpec) batchTick() time.Duration {
	return min(max(time.Duration(s.PostBatch)*s.Every/time.Duration(s.CourierCount), minBatchTick), maxBatchTick, s.Every)
}

// run posts the group's couriers' positions on schedule for dur; the schedule never runs past
// twice its length plus five seconds.
func (p *posters) run(ctx context.Context, dur time.Duration) PostCounts {
	s := p.spec
	n := s.CourierCount
	var c PostCounts
	if n <= 0 || s.Every <= 0 {
		return c
	}
	c.Offered = float64(n) / s.Every.Seconds()
	c.Planned = int64(c.Offered * dur.Seconds())
	var (
		mu sync.Mutex
		pc pace
		wg sync.WaitGroup
	)
	start := time.Now()
	due := func(k int) time.Time { return start.Add(time.Duration(k) * s.Every / time.Duration(n)) }
	jobs := make(chan postJob, s.Posters)
	for _, conns := range p.conns {
		wg.Go(func() {
			for job := range jobs {
				var outs []outcome
				if s.PostBatch > 1 {
					outs = p.postBatch(conns, job.ks, due)
				} else {
					outs = []outcome{p.post(conns, job.ks[0], job.due)}
				}
				pc.started(job.due, time.Unix(0, outs[0].post.Start))
				mu.Lock()
				c.Requests++
				for _, o := range outs {
					c.count(o)
					if o.accepted {
						pc.answered(o.answered)
					}
				}
				mu.Unlock()
			}
		})
	}
	planned := int(c.Planned)
	hardStop := due(planned).Add(dur + 5*time.Second)
	sent := 0
	var lastDue time.Time // of the last request queued
	// next is the next job of the schedule from post sent on: one post at its due time, or the
	// posts due in the tick that holds it, at the tick's end, split by node and PostBatch.
	var tick time.Duration
	if s.PostBatch > 1 {
		tick = s.batchTick()
	}
	next := func() []postJob {
		if tick == 0 {
			return []postJob{{ks: []int{sent}, due: due(sent)}}
		}
		end := start.Add((due(sent).Sub(start)/tick + 1) * tick)
		byNode := make([][]int, len(s.URLs))
		var out []postJob
		for k := sent; k < planned && due(k).Before(end); k++ {
			node := PostNode(s.CourierFirst+k%n, s.PerOrder, len(s.URLs))
			if byNode[node] = append(byNode[node], k); len(byNode[node]) == s.PostBatch {
				out = append(out, postJob{ks: byNode[node], due: end})
				byNode[node] = nil
			}
		}
		for _, ks := range byNode {
			if len(ks) > 0 {
				out = append(out, postJob{ks: ks, due: end})
			}
		}
		return out
	}
send:
	for sent < planned && time.Now().Before(hardStop) {
		batch := next()
		if sleepUntil(ctx, batch[0].due) != nil {
			break
		}
		for _, job := range batch {
			// Blocks while every poster is busy: that is the pool falling behind the schedule.
			select {
			case jobs <- job:
				sent += len(job.ks)
				lastDue = job.due
			case <-ctx.Done():
				break send
			}
		}
	}
	close(jobs)
	wg.Wait()
	c.Unsent = int64(planned - sent)
	if sent > 0 {
		c.Timing = pc.timing(start, lastDue, s.Every/time.Duration(n))
	}
	return c
}

// position is post k's place and body fields: its courier, the node it goes to, and its
// latitude, a few metres further north at each of the courier's posts.
func (p *posters) position(k int) (courier, node int, lat float64) {
	s := p.spec
	i := s.CourierFirst + k%s.CourierCount
	return i, PostNode(i, s.PerOrder, len(s.URLs)), 52.5 + float64(i%1000)/10000 + float64(k/s.CourierCount)/100000
}

// post sends post k of the schedule, due at due, on its own POST /v1/couriers/{cid}/location,
// stamped with the moment its request starts.
func (p *posters) post(conns []*wireConn, k int, due time.Time) outcome {
	s := p.spec
	i, node, lat := p.position(k)
	busy := &p.couriers[k%s.CourierCount]
	busy.Lock() // bounded: the courier's previous post ends within postTimeout
	defer busy.Unlock()
	start := time.Now()
	at := start.Truncate(time.Microsecond) // what every store and bus keeps exactly
	o := outcome{post: Post{Courier: i, At: at.UnixNano(), Due: due.UnixNano(), Start: start.UnixNano(), Node: node}}
	body := fmt.Sprintf(`{"lat":%.6f,"lng":13.4,"speed_mps":7,"at":%q}`, lat, at.UTC().Format(time.RFC3339Nano))
	var ans api.PostLocationResponse
	token := conns[node].token
	if p.tokens != nil {
		token = p.tokens[k%s.CourierCount]
	}
	code, err := sendAs(conns[node], token, api.LocationPath(CourierID(i)), []byte(body), &ans)
	o.answered = time.Now()
	switch {
	case err != nil:
		o.why = err.Error()
	case code/100 == 2:
		o.accepted, o.reached = true, ans.Orders
	case code == http.StatusTooManyRequests:
		o.refused = true
	default:
		o.why = fmt.Sprintf("answered %d", code)
	}
	return o
}

// postBatch sends posts ks of the schedule (post k due at due(k)), all to one node, in one POST
// /v1/locations, stamped with the moment the request starts; each gets its own outcome from the
// answer's results.
func (p *posters) postBatch(conns []*wireConn, ks []int, due func(k int) time.Time) []outcome {
	s := p.spec
	// A courier's positions go in the order of their at, as in post: lock its previous request
	// out, taking the couriers in one order so that two requests cannot wait on each other.
	byCourier := slices.Clone(ks)
	slices.SortFunc(byCourier, func(a, b int) int { return a%s.CourierCount - b%s.CourierCount })
	for _, k := range byCourier {
		p.couriers[k%s.CourierCount].Lock()
		defer p.couriers[k%s.CourierCount].Unlock()
	}
	start := time.Now()
	at := start.Truncate(time.Microsecond)
	atText := at.UTC().Format(time.RFC3339Nano)
	outs := make([]outcome, len(ks))
	var body bytes.Buffer
	body.WriteString(`{"positions":[`)
	var node int
	for j, k := range ks {
		i, nd, lat := p.position(k)
		node = nd
		outs[j].post = Post{Courier: i, At: at.UnixNano(), Due: due(k).UnixNano(), Start: start.UnixNano(), Node: nd}
		if j > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"courier_id":%q,"lat":%.6f,"lng":13.4,"speed_mps":7,"at":%q}`, CourierID(i), lat, atText)
	}
	body.WriteString(`]}`)
	var ans api.PostLocationsResponse
	code, err := send(conns[node], api.PathLocations, body.Bytes(), &ans)
	answered := time.Now()
	var why string
	switch {
	case err != nil:
		why = err.Error()
	case code/100 != 2:
		why = fmt.Sprintf("the request answered %d", code)
	case len(ans.Results) != len(ks):
		why = fmt.Sprintf("%d results for %d positions", len(ans.Results), len(ks))
	}
	for j := range outs {
		o := &outs[j]
		o.answered = answered
		switch {
		case why != "":
			o.why = why
		case ans.Results[j].Error == nil && ans.Results[j].Orders != nil:
			o.accepted, o.reached = true, *ans.Results[j].Orders
		case ans.Results[j].Error != nil && ans.Results[j].Error.Code == ordercast.ERateLimited:
			o.refused = true
		case ans.Results[j].Error != nil:
			o.why = ans.Results[j].Error.Code + ": " + ans.Results[j].Error.Message
		default:
			o.why = "a result with neither orders nor error"
		}
	}
	return outs
}

// send posts a JSON body on c and decodes a 2xx answer into ans; it returns the answer's status
// code.
func send(c *wireConn, path string, body []byte, ans any) (int, error) {
	return sendAs(c, c.token, path, body, ans)
}

// sendAs is send with token in place of the connection's.
func sendAs(c *wireConn, token, path string, body []byte, ans any) (int, error) {
	code, answer, err := c.postAs(token, path, body)
	if err != nil || code/100 != 2 {
		return code, err
	}
	if err := json.Unmarshal(answer, ans); err != nil {
		return code, fmt.Errorf("decode answer: %w", err)
	}
	return code, nil
}
