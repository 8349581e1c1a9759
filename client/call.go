package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/internal/clock"
)

// DefaultMaxAttempts is how many times a read or a write with an idempotency key is sent at most when
// Client.MaxAttempts is zero: the first try and two retries.
const DefaultMaxAttempts = 3

// firstRetryWait is the wait before a retried call's second attempt; it doubles for each further
// one up to maxRetryWait, plus up to half again of jitter, so that clients cut off together do
// not return together.
const (
	firstRetryWait = 200 * time.Millisecond
	maxRetryWait   = 5 * time.Second
)

// maxRetryAfter is the longest Retry-After a keyed write waits out before it is sent again;
// above it the call returns the answer, whose Error.RetryAfter says when to try.
const maxRetryAfter = 10 * time.Second

// CallOption adjusts one call. CreateOrder and SetStatus take them.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
	keyed          bool
	// repeatable marks a write that is idempotent by itself (an erasure): sent again while its
	// outcome is unknown, as a read is, with no key.
	repeatable bool
}

// repeatable is the option of a write the server makes idempotent itself.
func repeatable(o *callOptions) { o.repeatable = true }

// WithIdempotencyKey sends key (1–255 visible ASCII characters, such as a UUID; another is
// refused before anything is sent) as the call's Idempotency-Key: the server answers a repeat
// of the same request with the same key, within its --idempotency-ttl (24 h), with the first
// answer instead of applying it again, and marks it Replayed. The client then retries the
// call by itself when its outcome is unknown (see the package documentation). Use a new key for
// each new write, and the same key for every retry of it.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey, o.keyed = key, true }
}

// reply is what a call learns of a 2xx answer besides its body.
type reply struct {
	status   int
	replayed bool // the answer recorded for the call's idempotency key
}

// do sends one JSON call and decodes a 2xx answer into out. Any call is sent again, up to
// maxAttempts times and never after ctx ends, when it applied nothing: it was never sent, or it
// was refused 429. A read, safe to repeat, and a call with an idempotency key are sent again (the
// latter with the same key) while the outcome is unknown (send says when) too.
func (c *Client) do(ctx context.Context, method, path string, in, out any, opts []CallOption) (reply, error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.keyed {
		// Refused here rather than by the server, so that a write is never retried without a
		// key that makes the retry safe.
		if err := ordercast.ValidateIdempotencyKey(o.idempotencyKey); err != nil {
			return reply{}, err
		}
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return reply{}, fmt.Errorf("encode request: %w", err)
		}
		body = b
	}
	// Any call is sent again when nothing was applied: its request never left, or the server
	// refused it for its rate. Only one safe to repeat, a read or a write with a key that makes
	// it so, is sent again when it may have applied.
	attempts := c.maxAttempts()
	repeatSafe := o.keyed || o.repeatable || method == http.MethodGet
	wait := firstRetryWait
	// unknown is the first attempt's failure that may have applied the write: a later attempt
	// that sent nothing does not make the call's outcome known.
	var unknown error
	unknownTry := 0
	for try := 1; ; try++ {
		r, err := c.send(ctx, method, path, body, out, o)
		switch {
		case unknown == nil && OutcomeUnknown(err):
			unknown, unknownTry = err, try
		case unknown != nil && (errors.Is(err, errNotSent) || ordercast.ErrorCode(err) == ordercast.ERateLimited):
			// This attempt applied nothing, but an earlier one may have: the call's outcome
			// stays unknown (OutcomeUnknown reads errEarlierUnknown before this attempt's answer).
			err = fmt.Errorf("%w; attempt %d: %w (%w)", err, unknownTry, unknown, errEarlierUnknown)
		}
		// The server's word on when to come back; one that asks for longer than a call should
		// wait (a proxy's "come back in an hour") leaves the retry to the caller.
		var (
			retryAfter time.Duration
			e          *Error
		)
		if errors.As(err, &e) {
			retryAfter = e.RetryAfter
		}
		switch {
		case err == nil:
			return r, nil
		// A request that was never sent is as safe to send again as one whose outcome is
		// unknown, and as likely to get through: a node restarting refuses connections a moment.
		// So is one refused for its rate (429: nothing applied), once its Retry-After has passed.
		case OutcomeUnknown(err) && !repeatSafe,
			!OutcomeUnknown(err) && !errors.Is(err, errNotSent) && (e == nil || e.Code != ordercast.ERateLimited),
			ctx.Err() != nil, try >= attempts, retryAfter > maxRetryAfter:
			if try > 1 {
				err = fmt.Errorf("attempt %d of %d: %w", try, attempts, err)
			}
			return r, err
		}
		pause := max(wait+rand.N(wait/2+1), retryAfter)
		if serr := clock.Sleep(ctx, pause); serr != nil {
			return r, fmt.Errorf("%w before attempt %d of %d; attempt %d: %w", serr, try+1, attempts, try, err)
		}
		wait = min(2*wait, maxRetryWait)
	}
}

func (c *Client) maxAttempts() int {
	if c.MaxAttempts > 0 {
		return c.MaxAttempts
	}
	return DefaultMaxAttempts
}

// errAnswerLost marks an answer that broke off on the way, and errNoAnswer a request that got
// none (the connection failed, or the call's context ended): the call may have applied.
// errNotSent marks a request that never left: no connection could be made (dialled, its TLS
// handshake done, a proxy's tunnel opened), and none carried it before; nothing was applied.
// errEarlierUnknown marks a failure of an attempt that applied nothing after an earlier attempt
// of the call whose outcome is unknown.
var (
	errAnswerLost     = errors.New("the answer broke off")
	errNoAnswer       = errors.New("no answer")
	errNotSent        = errors.New("not sent")
	errEarlierUnknown = errors.New("an earlier attempt's outcome is unknown")
)

// OutcomeUnknown reports whether a write that returned err may have applied all the same: no
// answer came once the request was on its way (the connection failed or its context ended),
// the answer broke off on the way, the server was still answering the same Idempotency-Key's
// first request (idempotency_key_in_use), the store or a proxy in front of it was away
// (unavailable: a 503, a 502 or a 504; most often nothing was applied, but a commit whose answer
// the database never gave may have been), or the server, or a proxy, failed in a way it did not
// name (internal, a 500: a failure after the commit cannot be told from one before). Any other
// answer, an *Error included, means the write changed nothing; so does a connection that could not be made (refused, its host not found,
// its TLS handshake or a proxy's tunnel failed), which sent nothing, unless an earlier attempt of
// the call did. A write with WithIdempotencyKey is retried by itself while this holds, and after
// a connection that could not be made; without a key, read the order before you send it again.
func OutcomeUnknown(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errEarlierUnknown) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code == ordercast.EIdempotencyKeyInUse || e.Code == ordercast.EUnavailable || e.Code == ordercast.EInternal
	}
	return errors.Is(err, errAnswerLost) || errors.Is(err, errNoAnswer)
}

// send makes one attempt of a call; OutcomeUnknown says whether a failure may be retried with
// the call's idempotency key.
func (c *Client) send(ctx context.Context, method, path string, body []byte, out any, o callOptions) (r reply, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// Whether net/http went for a connection, and whether it began to write the request on any:
	// a keyed write is replayable to it, so after one connection broke with the request on it,
	// it dials again, and that dial's failure is then the error it returns. A request never
	// written was never seen, whatever stopped it: a dial, a TLS handshake, a proxy's CONNECT.
	// A transport that says neither (a caller's own, which may not trace) leaves a failed dial
	// as the only proof.
	var asked, wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { asked.Store(true) },
		WroteHeaders: func() { wrote.Store(true) },
	})
	req, err := c.newRequest(ctx, method, path, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.keyed {
		req.Header.Set(api.HeaderIdempotencyKey, o.idempotencyKey)
	}
	if err := ctx.Err(); err != nil {
		// Ended before the request went: net/http would give up before asking for a
		// connection, which the trace could not tell from a request lost on the way.
		return reply{}, fmt.Errorf("%w: %w", errNotSent, context.Cause(ctx))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var op *net.OpError
		if !wrote.Load() && (asked.Load() || errors.As(err, &op) && op.Op == "dial") {
			return reply{}, fmt.Errorf("%w: %w", errNotSent, err)
		}
		return reply{}, fmt.Errorf("%w: %w", errNoAnswer, err) // sent, maybe: a request never built is not this
	}
	defer closeBody(resp.Body)
	r = reply{status: resp.StatusCode, replayed: resp.Header.Get(api.HeaderIdempotentReplayed) == "true"}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return r, readError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out); err != nil {
		// A body that is not the JSON it should be is the server's to fix; one that broke off
		// is an answer lost on the way.
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if !errors.As(err, &syntax) && !errors.As(err, &typ) {
			return r, fmt.Errorf("decode response (HTTP %d): %w: %w", resp.StatusCode, errAnswerLost, err)
		}
		return r, fmt.Errorf("decode response (HTTP %d): %w", resp.StatusCode, err)
	}
	return r, nil
}
