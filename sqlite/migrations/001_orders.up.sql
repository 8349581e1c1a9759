-- Orders hold the current state; order_events is the append-only history the SSE streams replay.
-- Times are unix microseconds (UTC) so both stores keep the same precision.
CREATE TABLE orders (
	id         TEXT    PRIMARY KEY,
	status     TEXT    NOT NULL,
	version    INTEGER NOT NULL CHECK (version >= 1),
	details    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

-- (order_id, seq) is the primary key, so a second writer for the same seq fails instead of
-- leaving a duplicate; WITHOUT ROWID keeps each order's events together on disk for EventsAfter.
CREATE TABLE order_events (
	order_id TEXT    NOT NULL REFERENCES orders (id),
	seq      INTEGER NOT NULL CHECK (seq >= 1),
	status   TEXT    NOT NULL,
	at       INTEGER NOT NULL,
	note     TEXT    NOT NULL DEFAULT '',
	actor    TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (order_id, seq)
) STRICT, WITHOUT ROWID;

-- Partial index for ActiveOrders: terminal orders pile up forever and must not slow it down.
-- The query repeats this WHERE clause verbatim so the planner can use the index.
CREATE INDEX orders_active ON orders (updated_at DESC, id)
	WHERE status NOT IN ('delivered', 'cancelled');
