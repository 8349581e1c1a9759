-- Who an order belongs to (issue 14). Existing orders get '' for each: they belong to no party,
-- and keep working for admin, system and their tracking tokens.
ALTER TABLE orders ADD COLUMN restaurant_id TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN customer_id   TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN courier_id    TEXT NOT NULL DEFAULT '';

-- An event is a status change (kind '') or a courier assignment (kind 'courier', courier_id the
-- courier assigned, '' for unassigned).
ALTER TABLE order_events ADD COLUMN kind       TEXT NOT NULL DEFAULT '';
ALTER TABLE order_events ADD COLUMN courier_id TEXT NOT NULL DEFAULT '';

-- Each party's log: its events, numbered 1, 2, 3… per party in commit order (see
-- docs/party-streams.md). party is "restaurant:r-1", "courier:c-1" or "customer:u-1".
CREATE TABLE party_log (
	party    TEXT    NOT NULL,
	pos      INTEGER NOT NULL CHECK (pos >= 1),
	order_id TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	PRIMARY KEY (party, pos)
) STRICT, WITHOUT ROWID;

-- The last position of each party's log; the upsert of its row is the per-party lock.
CREATE TABLE party_heads (
	party TEXT    PRIMARY KEY,
	pos   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A party's active orders, for the snapshot that opens its stream.
CREATE INDEX orders_restaurant_active ON orders (restaurant_id, updated_at DESC, id)
	WHERE status NOT IN ('delivered', 'cancelled') AND restaurant_id <> '';
CREATE INDEX orders_customer_active ON orders (customer_id, updated_at DESC, id)
	WHERE status NOT IN ('delivered', 'cancelled') AND customer_id <> '';
CREATE INDEX orders_courier_active ON orders (courier_id, updated_at DESC, id)
	WHERE status NOT IN ('delivered', 'cancelled') AND courier_id <> '';
