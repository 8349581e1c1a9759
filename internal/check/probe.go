package check

import (
	"context"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/clock"
)

// probeWait is how long a node has, after the faults and the quiet period, to say it is ready
// and take a write.
const probeWait = 10 * time.Second

// probeNodes asks every node, directly rather than through the proxy, whether it is well once
// the faults are over: /readyz answers 200 within wait (probeWait), and a create sent to it alone is
// acknowledged (and then judged like every write). Through the proxy and the writers' retries a
// node that stayed sick after a fault (a pool never reconnected, a listener gone) is hidden by
// the others taking its share; here it is a node_unwell anomaly. The probes' orders belong to a
// restaurant no watcher follows.
func (p *phase) probeNodes(ctx context.Context, wait time.Duration) (unwell []string) {
	rest := &partyState{party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: p.led.runID + "-probe"}}
	for _, n := range p.nodes {
		u := n.endpoint()
		if err := waitReady(ctx, u, wait); err != nil {
			unwell = append(unwell, fmt.Sprintf("node %d: %v", n.idx, err))
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := p.create(wctx, func() string { return u }, rest)
		cancel()
		if err != nil {
			unwell = append(unwell, fmt.Sprintf("node %d: a create sent to it alone: %v", n.idx, err))
		}
	}
	return unwell
}

// crashBeforeReading kills every node with SIGKILL and, when the run may restart PostgreSQL,
// crashes it too (an immediate shutdown, recovered from its WAL), then starts them again: the
// histories the judge reads come from what survived a crash, so a write acknowledged before it
// was durable (in a node's memory, or a commit PostgreSQL had not made safe) is a lost_ack,
// and a delivered event that did not survive a mismatch, even for the writes of the quiet
// period, which no fault reached.
func (p *phase) crashBeforeReading(ctx context.Context) error {
	for _, n := range p.nodes {
		n.proc().kill()
	}
	what := fmt.Sprintf("%d node(s) killed", len(p.nodes))
	if p.pg != nil && p.pg.restartable {
		if err := p.pg.restart(ctx, true); err != nil {
			return fmt.Errorf("crash PostgreSQL before reading: %w", err)
		}
		what += ", PostgreSQL crashed (immediate shutdown) and recovered"
	}
	for _, n := range p.nodes {
		var err error
		for try := range 5 {
			if err = p.startNode(ctx, n); err == nil {
				break
			}
			// The port may take a moment to free.
			if clock.Sleep(ctx, time.Duration(200*(try+1))*time.Millisecond) != nil {
				return ctx.Err()
			}
		}
		if err != nil {
			return fmt.Errorf("restart node %d after the crash: %w", n.idx, err)
		}
	}
	p.logf("crash before reading: %s, nodes back; the histories are read from what survived", what)
	return nil
}
