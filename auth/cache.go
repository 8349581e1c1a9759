package auth

import (
	"sync"
	"time"
)

// Bounds of the cache of verified actor tokens.
const (
	// ActorCacheTTL is the longest a verified actor token is trusted without verifying it again;
	// its own expiry always comes first when sooner.
	ActorCacheTTL = time.Minute
	// ActorCacheSize bounds the tokens remembered; past this many, one remembered token is
	// forgotten for each new one. A service presents a handful of tokens, each on many requests,
	// but every courier on the road posts its position with its own token every second or two:
	// at 4,096 a fleet of 19,000 missed nearly every time, and a miss is a signature check and
	// the claims' JSON (17-20 µs and 125 allocations for HS256, up to 190 µs for ES256) where a
	// hit is under 0.1 µs. An entry holds its token (a few hundred bytes): 65,536 of them take
	// 20-30 MB, and only a fleet that size fills it. (Keyed by a SHA-256 of the token it would
	// take a third of that, and each hit 0.4 µs and an allocation more.)
	ActorCacheSize = 1 << 16
)

// actorCache remembers actor tokens that verified, keyed by their bytes, so that a service
// sending thousands of changes a second with one token pays for the signature check and the
// claims' JSON once a minute, not on every request; so does a courier posting its position
// every second with its own. Only successes are kept: a bad token is verified, and refused,
// every time.
type actorCache struct {
	mu      sync.Mutex
	entries map[string]cachedActor
}

type cachedActor struct {
	actor Actor
	until time.Time // the earlier of the token's expiry and the end of its time in the cache
}

func (c *actorCache) get(token string, now time.Time) (Actor, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[token]
	if !ok {
		return Actor{}, false
	}
	if !now.Before(e.until) {
		delete(c.entries, token)
		return Actor{}, false
	}
	return e.actor, true
}

func (c *actorCache) put(token string, a Actor, exp, now time.Time) {
	until := now.Add(ActorCacheTTL)
	if exp.Before(until) {
		until = exp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]cachedActor)
	}
	if _, ok := c.entries[token]; !ok && len(c.entries) >= ActorCacheSize {
		for k := range c.entries { // map order is random: an arbitrary token goes
			delete(c.entries, k)
			break
		}
	}
	c.entries[token] = cachedActor{actor: a, until: until}
}
