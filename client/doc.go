// Package client is the Go client of the ordercast HTTP API: calls that create and move orders,
// and watches that follow one order (Client.Watch, read with Watch.Next) or every order of a
// restaurant, courier or customer (Client.WatchRestaurant and friends, read with
// Watch.NextScoped), resuming by themselves. The tests and the bench use it too.
//
// # Errors
//
// An error the server answered is an *Error, which unwraps to an *ordercast.Error:
// ordercast.ErrorCode gives its stable code (not_found, version_conflict, …). What the client
// refuses before sending anything (an invalid idempotency key, a party of no kind) is no *Error,
// since no status came with it, but has a code all the same: invalid_argument. A call that got
// no answer returns an error that is not an *Error, and ordercast.ErrorCode calls it internal:
// recognise it with errors.Is(err, context.DeadlineExceeded) or errors.Is(err,
// context.Canceled) when its context ended, and errors.As(err, new(net.Error)) for the
// network. For a write, such an error means its outcome is unknown: it may have applied; so do
// a few answers (503 unavailable, a proxy's 502 or 504, 409 idempotency_key_in_use). A
// connection that could not be made at all (refused, its host not found, its TLS handshake or a
// proxy's tunnel failed) sent nothing, and its write is known not to have applied. Ask OutcomeUnknown(err) rather than decide it from
// the error's type.
//
// # Retrying a write
//
// CreateOrder and SetStatus take WithIdempotencyKey(key). With a key, and only with one, the
// client sends the call again by itself, with the same key and body, when its outcome is
// unknown: after a network error (no answer, or an answer cut off before its end; and a
// connection that could not be made, which sent nothing and is as safe to retry), after 409
// idempotency_key_in_use (the key's first request still being answered) and after 503
// unavailable (the server's database away: most often nothing was applied, but a commit whose
// answer the database never gave may have been); and after 429 rate_limited, which applied
// nothing (the client's address, or a courier, over its budget), waiting at least its Retry-After (one over 10 s
// is returned instead, for the caller to wait out; Error.RetryAfter has it); a Timeout of
// Client.HTTPClient, which ends an attempt and not the call, bounds each attempt. It makes at most
// Client.MaxAttempts attempts (DefaultMaxAttempts, 3), waiting about 0.2 s, then 0.4 s, each
// wait twice the last up to 5 s (plus up to half again of jitter), and none once ctx has ended. Any other answer,
// success or error, is returned at once. The server answers a retry of a write it applied with
// the answer it gave the first time, marked Replayed in the result (CreatedOrder.Replayed,
// SetStatusResult.Replayed): nothing is applied twice. When the call still fails without an
// answer (its context ended first, say), call it again later with the same key and request to
// learn the outcome: within the server's --idempotency-ttl (24 h) that is safe too. Without a
// key a write is sent again only when it applied nothing: a connection that could not be made,
// or 429 rate_limited (with the same waits and bound); one that may have applied is returned.
// SetStatuses, SetCourier, PostLocation and PostLocations take no key: a repeat of a change
// that applied is answered Changed false, ExpectedVersion keeps a repeat from undoing a change
// someone else made meanwhile, and a fix sent again changes nothing (Missed newer_fix_taken).
// OutcomeUnknown(err) says whether a failed write may have applied.
//
// The reads (Order, Events, Trail) are safe to repeat, and are retried as a keyed write is: after
// a network error, a connection that could not be made, 503 unavailable or 429 rate_limited, up
// to MaxAttempts.
//
// # Watches
//
// Watch.Next returns ordercast.Event values of the two kinds an order's stream numbers: status
// changes (ordercast.KindStatus) and courier assignments (ordercast.KindCourier). A courier's
// position (ordercast.LocationUpdate) has no seq and is never returned by Next or NextScoped: it
// goes to WatchOptions.OnLocation. WatchOptions.OnEvent sees the events as the server sent them,
// replays included, for order and party watches alike.
//
// A watch resumes after the last event it returned, on a new connection, whenever one ends
// without the order ending, and hands each event out once. Give each watch its own context,
// the one passed to Watch, which bounds it, and end it with Close (or that context); call
// Next with a context that lives as long as the watch, such as the same one. Next cannot break
// a blocked read but by dropping the connection, so a Next whose context ends (a per-call
// timeout) drops it, and the next call reconnects and has the server replay from
// Last-Event-ID: a per-call timeout on a quiet order costs a reconnect each time it expires. To
// do other work while waiting, call Next on a goroutine of its own.
//
// A connection on which Next waits for WatchOptions.IdleTimeout (45 s by default: three of the
// server's 15 s heartbeats) without a byte arriving is taken for dead, dropped, and resumed
// like any other, so a peer that vanished without closing the connection does not hold the
// watch for ever. Time spent between calls does not count.
//
// A watch starts from the order's current status, or from its first event with
// WatchOptions.WholeHistory. One resumed after a seq the server's history does not reach (a
// database restored from an older backup) ends with ErrHistoryBehind, for the caller to start
// a new one: the events that follow would come under seqs it has handed out already.
//
// When the server ends a stream saying why, the watch acts on it: a courier's watch of an order
// given to another courier ends with ErrOrderReassigned (beside a 403 forbidden *Error); a watch
// whose token expired goes on at once on a new connection with a token from Client.TokenSource,
// or, with a fixed Client.Token, ends with a 401 token_expired *Error.
//
// A party watch (NextScoped) opens with a snapshot of the party's active orders (at most
// 2,000) and receives another, mid-stream, when it falls more than 10,000 events behind the
// party's log; each snapshot replaces the caller's state (see ScopeUpdate).
package client
