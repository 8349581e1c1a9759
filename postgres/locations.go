package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/failurelog"
)

// Couriers' positions between nodes. They do not go through the durable write path: each node
// gathers the positions it takes in for DefaultLocationBatch, keeps only the newest per order,
// then upserts them into the UNLOGGED order_locations table and announces
// them with pg_notify on PositionsChannel (positions.go), a few KB per notice, all in one
// transaction of their own that commits asynchronously. A status commit never waits behind a
// position. PostgreSQL holds its notify queue's lock from the pre-commit of a notifying
// transaction to the end of its commit; a batch takes it once, and never across a WAL flush:
// positions are not durable (the table is UNLOGGED, a notice is gone once heard), so the commit
// need not wait for one.

// LocationChannel carried batches of positions as JSON before PositionsChannel; a node still
// hears it, for the positions of nodes of an older version during a rolling upgrade.
const LocationChannel = "ordercast_locations"

// Defaults for the location bus.
const (
	// DefaultLocationBatch is how long a node gathers positions before sending them: short next
	// to the one-a-second cap each watcher has, long enough to make one notice of many positions.
	// 20 ms is fifty transactions a second per node at most, and none while no courier posts.
	DefaultLocationBatch = 20 * time.Millisecond
	// DefaultLocationSendTimeout bounds one batch's round trip: a connection that hangs (a
	// network that drops packets, a lock held on the table) must not hold every later position
	// of the cluster back until TCP gives up; a position that old is replaced by then anyway.
	DefaultLocationSendTimeout = 2 * time.Second
	// MaxLocationPayload bounds one notice, well under PostgreSQL's 8000-byte payload limit.
	MaxLocationPayload = 7000
	// locationsKept is how long a position stays in order_locations: past it, no stream shows it.
	locationsKept = 10 * time.Minute
	// failureWarnEvery bounds the bus's warnings while the database is away: a batch fails every
	// Batch then, fifty times a second, and one line every ten seconds says as much.
	failureWarnEvery = 10 * time.Second
)

// LocationBus sends the positions this node takes in to the other nodes (their Listeners; this
// node's own skips them, as its tracker holds them already) and keeps the newest of each order
// where a node that opens a stream later can read it. Create it with NewLocationBus, then Open.
type LocationBus struct {
	Store *Store
	Batch time.Duration
	// SendTimeout bounds each batch's round trip, and the purge of old positions.
	SendTimeout time.Duration
	Logger      *slog.Logger
	// LegacyNotices also announces each batch on LocationChannel, in the JSON that nodes of
	// versions before 2026-12 send and read, so that such nodes still show this node's positions
	// during a rolling upgrade from them. Newer nodes hear a position twice then and keep one.
	LegacyNotices bool

	mu      sync.Mutex
	pending map[string]ordercast.LocationUpdate // newest per order since the last batch

	// sends are the failed batches and the positions they dropped, warned about once every
	// failureWarnEvery; failures counts every failed batch, for tests.
	sends    failurelog.Failures
	failures atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewLocationBus returns a bus over s's pool with the defaults.
func NewLocationBus(s *Store) *LocationBus {
	return &LocationBus{Store: s, Batch: DefaultLocationBatch, SendTimeout: DefaultLocationSendTimeout,
		sends: failurelog.Failures{Every: failureWarnEvery}}
}

// Open starts the goroutine that sends a batch every Batch.
func (b *LocationBus) Open() error {
	if b.Store == nil || b.Batch <= 0 || b.SendTimeout <= 0 {
		return errors.New("postgres: the location bus needs a Store, a positive Batch and a positive SendTimeout")
	}
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	b.pending = make(map[string]ordercast.LocationUpdate)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Go(b.run)
	return nil
}

// Close sends what is pending and stops.
func (b *LocationBus) Close() error {
	if b.cancel == nil {
		return nil
	}
	b.cancel()
	b.wg.Wait()
	return nil
}

// Send queues positions for the next batch; a newer position of an order, or another courier's,
// replaces the one queued (ordercast.LocationUpdate.Replaces).
// It never waits on the database.
func (b *LocationBus) Send(us []ordercast.LocationUpdate) {
	b.mu.Lock()
	for _, u := range us {
		if old, ok := b.pending[u.OrderID]; !ok || u.Replaces(old) {
			b.pending[u.OrderID] = u
		}
	}
	b.mu.Unlock()
}

func (b *LocationBus) run() {
	tick := time.NewTicker(b.Batch)
	defer tick.Stop()
	purge := time.NewTicker(locationsKept / 2)
	defer purge.Stop()
	for {
		select {
		case <-b.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			b.flush(ctx) // the last batch, so a node that stops loses no position it accepted
			cancel()
			return
		case <-purge.C:
			ctx, cancel := context.WithTimeout(b.ctx, b.SendTimeout)
			err := b.purge(ctx)
			cancel()
			if err != nil && b.ctx.Err() == nil {
				b.Logger.Warn("purge old positions failed", "err", err)
			}
		case <-tick.C:
			b.flush(b.ctx)
		}
	}
}

// purge deletes the positions older than locationsKept, which no stream shows any more. It
// takes only rows no batch holds (SKIP LOCKED), so it never waits on a batch: a batch locks its
// rows in order_id order, a DELETE in the order it finds them, and one that waited on a row a
// batch held while holding the batch's next row deadlocked with it (40P01), failing one of the
// two. A row skipped is the batch's, which either makes it fresh or leaves it to the next purge.
func (b *LocationBus) purge(ctx context.Context) error {
	if _, err := b.Store.pool.Exec(ctx, `DELETE FROM order_locations WHERE order_id = ANY (ARRAY(
		SELECT order_id FROM order_locations WHERE at < $1 FOR UPDATE SKIP LOCKED))`, time.Now().Add(-locationsKept)); err != nil {
		return fmt.Errorf("postgres: purge old positions: %w", err)
	}
	return nil
}

// flush sends what is pending. A failed batch is dropped: a position is replaced within seconds,
// and holding it back would only show the courier late. Failures are logged at once, then at
// most once per failureWarnEvery with what failed meanwhile, and the first batch that goes
// through again says so.
func (b *LocationBus) flush(ctx context.Context) {
	b.mu.Lock()
	batch := b.pending
	if len(batch) == 0 {
		b.mu.Unlock()
		return
	}
	b.pending = make(map[string]ordercast.LocationUpdate, len(batch))
	b.mu.Unlock()
	sendCtx, cancel := context.WithTimeout(ctx, b.SendTimeout)
	err := b.send(sendCtx, batch)
	cancel()
	switch { // ctx's end is the bus's, not a failure; sendCtx's alone is one
	case err != nil && ctx.Err() == nil:
		b.failures.Add(1)
		if c, warn := b.sends.Failed(len(batch)); warn {
			b.Logger.Warn("sending positions to the cluster failed", "batches", c.Failures, "positions", c.Items, "err", err)
		}
	case err == nil:
		if c, was := b.sends.Worked(); was {
			b.Logger.Info("sending positions to the cluster works again", "batches_failed_since_warning", c.Failures, "positions_dropped_since_warning", c.Items)
		}
	}
}

func (b *LocationBus) send(ctx context.Context, batch map[string]ordercast.LocationUpdate) error {
	ids := make([]string, 0, len(batch))
	ats := make([]time.Time, 0, len(batch))
	data := make([]string, 0, len(batch))
	notices := newPositionPacker(b.Store.node, MaxLocationPayload)
	var legacy *noticePacker
	if b.LegacyNotices {
		legacy = jsonArrays(MaxLocationPayload)
	}
	// The rows go in order_id order, which unnest keeps, so the upsert below locks them in one
	// order on every node: two nodes' batches of the same orders wait for each other instead of
	// deadlocking (40P01, which dropped one batch whole). Go's map order differs on every call.
	for _, id := range slices.Sorted(maps.Keys(batch)) {
		u := batch[id]
		row, err := json.Marshal(storedLocation{u, u.OrderVersion})
		if err != nil {
			return fmt.Errorf("encode position: %w", err)
		}
		ids, ats, data = append(ids, u.OrderID), append(ats, u.At), append(data, string(row))
		if err := notices.add(u); err != nil {
			return fmt.Errorf("encode position: %w", err)
		}
		if legacy != nil {
			if err := addLegacy(legacy, u, b.Store.node); err != nil {
				return err
			}
		}
	}
	// One round trip, one transaction (see the top of this file). The newest per order survives
	// this node: a stream opening on another node later reads it. A row is replaced as
	// ordercast.LocationUpdate.Replaces says (TestLocationBusReplacesAsTheRuleSays holds the two
	// to one answer): of one courier, by a later position; of another courier, by the position
	// of the courier the order was given to later (a greater order_version), or by any when a
	// version is unknown (a node of an older version wrote it). The JSON is read only when the
	// courier may differ. A batch that fails leaves its connection in a failed transaction,
	// which the pool closes on release.
	pb := &pgx.Batch{}
	pb.Queue(`BEGIN`)
	pb.Queue(`SET LOCAL synchronous_commit TO off`)
	pb.Queue(`
		INSERT INTO order_locations (order_id, at, data)
		SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[])
		ON CONFLICT (order_id) DO UPDATE SET at = excluded.at, data = excluded.data
		WHERE CASE
			WHEN (order_locations.data::json->>'courier_id') IS NOT DISTINCT FROM (excluded.data::json->>'courier_id')
				THEN order_locations.at < excluded.at
			ELSE coalesce((excluded.data::json->>'order_version')::bigint, 0) = 0
				OR coalesce((order_locations.data::json->>'order_version')::bigint, 0) = 0
				OR (excluded.data::json->>'order_version')::bigint > (order_locations.data::json->>'order_version')::bigint
		END`, ids, ats, data)
	pb.Queue(`SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n`, PositionsChannel, notices.done())
	if legacy != nil {
		pb.Queue(`SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n`, LocationChannel, legacy.done())
	}
	pb.Queue(`COMMIT`)
	if err := b.Store.pool.SendBatch(ctx, pb).Close(); err != nil {
		return fmt.Errorf("send positions: %w", err)
	}
	return nil
}

// Latest reads the newest position of each of the orders that has one, as the last batch that
// carried it left it, in one query however many orders are asked for.
func (b *LocationBus) Latest(ctx context.Context, orderIDs []string) (us []ordercast.LocationUpdate, err error) {
	err = b.Store.read(ctx, func(ctx context.Context) (err error) {
		us, err = b.Store.latestPositions(ctx, orderIDs)
		return err
	})
	return us, err
}

func (s *Store) latestPositions(ctx context.Context, orderIDs []string) ([]ordercast.LocationUpdate, error) {
	rows, err := s.pool.Query(ctx, `SELECT data FROM order_locations WHERE order_id = ANY($1)`, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: read positions of %d orders: %w", len(orderIDs), err)
	}
	us, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ordercast.LocationUpdate, error) {
		var data string
		var sl storedLocation
		if err := row.Scan(&data); err != nil {
			return sl.LocationUpdate, err
		}
		if err := json.Unmarshal([]byte(data), &sl); err != nil {
			return sl.LocationUpdate, fmt.Errorf("decode position %s: %w", data, err)
		}
		sl.LocationUpdate.OrderVersion = sl.OrderVersion
		return sl.LocationUpdate, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read positions of %d orders: %w", len(orderIDs), err)
	}
	return us, nil
}

// storedLocation is a row's data in order_locations: the update, and the order's version it was
// judged against, which the update's own JSON (what watchers get) leaves out. Nodes of older
// versions read the update and ignore the version, and write rows without it (unknown).
type storedLocation struct {
	ordercast.LocationUpdate
	OrderVersion int64 `json:"order_version,omitempty"`
}

// busLocation is one position in a notice: the update, and the party streams that show it
// (which watchers never see, so the update's own JSON leaves them out). N is the node that sent
// it, so that its own listener skips it as it skips its compact notices, and V the order's
// version it was judged against (ordercast.LocationUpdate.OrderVersion); older nodes send
// neither and ignore both.
type busLocation struct {
	U ordercast.LocationUpdate `json:"u"`
	P []string                 `json:"p,omitempty"`
	N string                   `json:"n,omitempty"`
	V int64                    `json:"v,omitempty"`
}

// addLegacy adds u, sent by node, to a notice on LocationChannel, as a node of an older version
// sends it.
func addLegacy(p *noticePacker, u ordercast.LocationUpdate, node string) error {
	enc, err := json.Marshal(busLocation{U: u, P: u.Parties, N: node, V: u.OrderVersion})
	if err != nil {
		return fmt.Errorf("encode position: %w", err)
	}
	return p.addPosition(enc, u.OrderID)
}

// decodeLocations reads one notice on LocationChannel, as a node of an older version sends it,
// without the positions node self sent itself. Those must not come back: the tracker may have
// forgotten the order since (it was delivered, or given to another courier), and an echo would
// bring the old courier's position back to it.
func decodeLocations(payload, self string) ([]ordercast.LocationUpdate, error) {
	var bls []busLocation
	if err := json.Unmarshal([]byte(payload), &bls); err != nil {
		return nil, fmt.Errorf("decode positions: %w", err)
	}
	us := make([]ordercast.LocationUpdate, 0, len(bls))
	for _, bl := range bls {
		if bl.N != "" && bl.N == self {
			continue
		}
		u := bl.U
		u.Parties, u.OrderVersion = bl.P, bl.V
		us = append(us, u)
	}
	return us, nil
}
