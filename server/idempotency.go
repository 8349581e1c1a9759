package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// IdempotencyKeyHeader carries a client's key for a write it may need to retry; a retry with the
// same key and request gets the first answer (IdempotentReplayedHeader says so).
const (
	IdempotencyKeyHeader     = api.HeaderIdempotencyKey
	IdempotentReplayedHeader = api.HeaderIdempotentReplayed
	// DefaultIdempotencyTTL is how long an answer is kept for a retry.
	DefaultIdempotencyTTL = 24 * time.Hour
)

// idempotent prepares a write that carries an Idempotency-Key. Without one it returns nil. When
// the key already has an answer it writes that answer (or refuses the key's reuse for another
// request) and returns done. req is the decoded body; with the route's order id it identifies
// the request. complete, if not nil, completes a recorded answer before it is sent again (see
// replayIdempotent). The caller sets Render.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, actor auth.Actor, req any, complete completion) (idem *ordercast.Idempotency, done bool) {
	key, sent := idempotencyKey(r)
	if !sent {
		return nil, false
	}
	if n := len(r.Header[IdempotencyKeyHeader]); n > 1 {
		s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "one Idempotency-Key a request, not %d", n))
		return nil, true
	}
	if err := ordercast.ValidateIdempotencyKey(key); err != nil {
		s.writeError(w, r, err)
		return nil, true
	}
	body, err := json.Marshal(req)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("fingerprint request: %w", err))
		return nil, true
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\n%s\n%s", r.Pattern, r.PathValue("id"), body))
	idem = &ordercast.Idempotency{
		// The key belongs to the caller: another identity's same key is another request.
		Scope:       r.Pattern + " " + actor.String(),
		Key:         key,
		Fingerprint: hex.EncodeToString(sum[:]),
		Expires:     time.Now().Add(s.IdempotencyTTL),
	}
	return idem, s.replayIdempotent(w, r, idem, complete)
}

// refuseIdempotencyKey answers a write whose route takes no Idempotency-Key, if r carries one
// (even empty), with 422 saying why the write is safe to repeat without one, and reports whether
// it answered. Ignored, the key would leave its caller believing a retry guarded by it.
func (s *Server) refuseIdempotencyKey(w http.ResponseWriter, r *http.Request, safe string) bool {
	err := idempotencyKeyRefused(r, safe)
	if err != nil {
		s.writeError(w, r, err)
	}
	return err != nil
}

// idempotencyKeyRefused is refuseIdempotencyKey's refusal, nil when r carries no key.
func idempotencyKeyRefused(r *http.Request, safe string) error {
	if _, sent := idempotencyKey(r); !sent {
		return nil
	}
	return ordercast.Errorf(ordercast.EInvalid, "%s is not taken by %s: %s", IdempotencyKeyHeader, r.Pattern, safe)
}

// completion completes a recorded answer before it is sent again: with what the store must not
// keep, such as a credential, which it signs anew.
type completion func(ordercast.Answer) (ordercast.Answer, error)

// idempotencyKey returns the Idempotency-Key r carries, and whether it carries the header at
// all. One sent empty counts, so that it is refused (ordercast.ValidateIdempotencyKey) rather
// than ignored, which would leave the caller believing its retry safe; one sent twice is one
// list of both values (RFC 9110 §5.3), which no key is.
func idempotencyKey(r *http.Request) (key string, sent bool) {
	vs := r.Header[IdempotencyKeyHeader]
	if len(vs) == 0 {
		return "", false
	}
	return strings.Join(vs, ", "), true
}

// replayIdempotent answers with the answer recorded for idem's key, completed by complete if
// it is not nil, if there is one, and reports whether it answered.
func (s *Server) replayIdempotent(w http.ResponseWriter, r *http.Request, idem *ordercast.Idempotency, complete completion) bool {
	a, err := s.Store.IdempotentAnswer(r.Context(), idem.Scope, idem.Key, time.Now())
	if err == nil && a.Fingerprint == idem.Fingerprint && complete != nil {
		var done ordercast.Answer
		if done, err = complete(a); err == nil {
			a.Status, a.Body = done.Status, done.Body
		}
	}
	switch {
	case ordercast.ErrorCode(err) == ordercast.ENotFound:
		return false
	case err != nil:
		s.writeError(w, r, err)
	case a.Fingerprint != idem.Fingerprint:
		s.writeError(w, r, ordercast.Errorf(ordercast.EIdempotencyKeyReused,
			"this Idempotency-Key was used with another request; use a new key for a new request"))
	default:
		w.Header().Set(IdempotentReplayedHeader, "true")
		if a.Status == http.StatusCreated {
			// The first answer's Location too: it names the order the body describes.
			var created struct{ ID string }
			if json.Unmarshal(a.Body, &created) == nil && ordercast.ValidateID(created.ID) == nil {
				w.Header().Set("Location", api.OrderPath(created.ID))
			}
		}
		writeRawJSON(w, a.Status, a.Body)
	}
	return true
}

// renderOnce wraps render so that the answer the store records is also the one sent: answer
// returns it after the store's call (or renders it now when the store did not call it).
func renderOnce(render func(ordercast.Result) (ordercast.Answer, error)) (wrapped func(ordercast.Result) (ordercast.Answer, error), answer func(ordercast.Result) (ordercast.Answer, error)) {
	var (
		got  ordercast.Answer
		done bool
	)
	wrapped = func(res ordercast.Result) (ordercast.Answer, error) {
		a, err := render(res)
		got, done = a, err == nil
		return a, err
	}
	answer = func(res ordercast.Result) (ordercast.Answer, error) {
		if done {
			return got, nil
		}
		return render(res)
	}
	return wrapped, answer
}
