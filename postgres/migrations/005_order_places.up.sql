-- Where an order is picked up and dropped off, when known: a courier's distance and ETA are
-- measured to the drop-off. Each is {"lat":…,"lng":…} as ordercast encodes it, or NULL.
ALTER TABLE orders ADD COLUMN pickup text, ADD COLUMN dropoff text;

-- The newest position of each order that has one, upserted once per batch by the node that took
-- the posts and read by a node when a stream opens. UNLOGGED: a position is state that goes stale
-- in a minute, so it skips the WAL (cheap to write, no replication traffic); it outlives any node,
-- and a crash of PostgreSQL itself empties it, which costs only positions about to be replaced.
CREATE UNLOGGED TABLE order_locations (
	order_id text PRIMARY KEY,
	at       timestamptz NOT NULL,
	data     text NOT NULL
);
