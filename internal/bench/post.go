package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast/api"
)

// The couriers of the location workload. Each group (a process) posts for its share of them, on a
// schedule that spreads the share's posts evenly over --location-every: post k of a group with n
// couriers is due at k×every/n and comes from its courier k%n. A bounded pool of posters sends
// them over keep-alive connections; a slow server makes the pool fall behind the schedule, which
// the counts report, rather than open more connections.

// Post is one accepted position: which courier posted it, the at the bench chose for it (the key
// a watcher's sample brings back), when its request started and to which node it went.
type Post struct {
	Courier int
	At      int64 // Unix nanoseconds, whole microseconds
	Start   int64 // Unix nanoseconds
	Node    int
}

// MarshalJSON writes a post as a 4-element array: a worker's answer carries every post.
func (p Post) MarshalJSON() ([]byte, error) {
	return json.Marshal([4]int64{int64(p.Courier), p.At, p.Start, int64(p.Node)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Post) UnmarshalJSON(b []byte) error {
	var a [4]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("post: %w", err)
	}
	*p = Post{Courier: int(a[0]), At: a[1], Start: a[2], Node: int(a[3])}
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
	Accepted   int64  `json:"accepted"`
	Refused    int64  `json:"refused"`
	Failed     int64  `json:"failed"`
	NoOrder    int64  `json:"no_order"`
	FirstError string `json:"first_error,omitempty"`
	// Offered is the schedule's posts per second; Achieved the accepted posts per second of the
	// time the posters took to send them; BehindNs how late the last post started.
	Offered  float64 `json:"offered_per_second"`
	Achieved float64 `json:"accepted_per_second"`
	BehindNs int64   `json:"behind_ns"`
	// Posts lists the accepted posts, for the parent to join with the watchers' samples.
	Posts []Post `json:"posts,omitempty"`
}

// Add adds o into c: counts and rates add up, since groups post at the same time.
func (c *PostCounts) Add(o PostCounts) {
	c.Planned += o.Planned
	c.Unsent += o.Unsent
	c.Accepted += o.Accepted
	c.Refused += o.Refused
	c.Failed += o.Failed
	c.NoOrder += o.NoOrder
	if c.FirstError == "" {
		c.FirstError = o.FirstError
	}
	c.Offered += o.Offered
	c.Achieved += o.Achieved
	c.BehindNs = max(c.BehindNs, o.BehindNs)
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
	hc   *http.Client
	// couriers holds a courier while its post is in flight: like a phone, a courier sends its
	// next position after the previous one's answer, so its positions arrive in the order of
	// their at, which is taken once the courier is free (the server drops an older fix).
	couriers []sync.Mutex
}

func newPosters(spec GroupSpec) *posters {
	n := max(1, spec.Posters)
	return &posters{spec: spec, couriers: make([]sync.Mutex, max(0, spec.CourierCount)), hc: &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: n,
		MaxConnsPerHost:     n,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}}
}

func (p *posters) close() { p.hc.CloseIdleConnections() }

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
		mu        sync.Mutex
		lastStart atomic.Int64
		wg        sync.WaitGroup
	)
	jobs := make(chan int, s.Posters)
	for range max(1, s.Posters) {
		wg.Go(func() {
			for k := range jobs {
				post, code, reached, err := p.post(ctx, k)
				for {
					last := lastStart.Load()
					if post.Start <= last || lastStart.CompareAndSwap(last, post.Start) {
						break
					}
				}
				mu.Lock()
				switch {
				case err == nil && code/100 == 2:
					c.Accepted++
					c.Posts = append(c.Posts, post)
					if reached == 0 {
						c.NoOrder++
					}
				case code == http.StatusTooManyRequests:
					c.Refused++
				default:
					c.Failed++
					if c.FirstError == "" {
						c.FirstError = fmt.Sprintf("%s: answered %d", CourierID(post.Courier), code)
						if err != nil {
							c.FirstError = fmt.Sprintf("%s: %v", CourierID(post.Courier), err)
						}
					}
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	due := func(k int) time.Time { return start.Add(time.Duration(k) * s.Every / time.Duration(n)) }
	planned := int(c.Planned)
	hardStop := due(planned).Add(dur + 5*time.Second)
	sent := 0
send:
	for ; sent < planned && time.Now().Before(hardStop); sent++ {
		if wait := time.Until(due(sent)); wait > 0 {
			if sleep(ctx, wait) != nil {
				break
			}
		}
		// Blocks while every poster is busy: that is the pool falling behind the schedule.
		select {
		case jobs <- sent:
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	wg.Wait()
	c.Unsent = int64(planned - sent)
	if sent > 0 {
		last := time.Unix(0, lastStart.Load())
		c.BehindNs = max(0, int64(last.Sub(due(sent-1))))
		c.Achieved = float64(c.Accepted) / (last.Sub(start).Seconds() + s.Every.Seconds()/float64(n))
	}
	return c
}

// post sends post k of the schedule: its courier's n-th position, a few metres further north
// each time, stamped with the moment its request starts. It returns the post, the answer's status
// code and how many orders the position reached.
func (p *posters) post(ctx context.Context, k int) (Post, int, int, error) {
	s := p.spec
	i := s.CourierFirst + k%s.CourierCount
	node := PostNode(i, s.PerOrder, len(s.URLs))
	lat := 52.5 + float64(i%1000)/10000 + float64(k/s.CourierCount)/100000
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	busy := &p.couriers[k%s.CourierCount]
	busy.Lock() // bounded: the courier's previous post ends within postTimeout
	defer busy.Unlock()
	start := time.Now()
	at := start.Truncate(time.Microsecond) // what every store and bus keeps exactly
	post := Post{Courier: i, At: at.UnixNano(), Start: start.UnixNano(), Node: node}
	body := fmt.Sprintf(`{"lat":%.6f,"lng":13.4,"speed_mps":7,"at":%q}`, lat, at.UTC().Format(time.RFC3339Nano))
	req, err := http.NewRequestWithContext(ctx, "POST", s.URLs[node]+api.LocationPath(CourierID(i)), bytes.NewReader([]byte(body)))
	if err != nil {
		return post, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := p.hc.Do(req)
	if err != nil {
		return post, 0, 0, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
		resp.Body.Close()
	}()
	if resp.StatusCode/100 != 2 {
		return post, resp.StatusCode, 0, nil
	}
	var ans api.PostLocationResponse
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return post, resp.StatusCode, 0, fmt.Errorf("decode answer: %w", err)
	}
	return post, resp.StatusCode, ans.Orders, nil
}
