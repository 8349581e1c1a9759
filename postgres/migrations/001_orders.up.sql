-- Orders hold the current state; order_events is the append-only history the SSE streams replay.
-- Times come from the database clock, so every node of a cluster stamps events with one clock.
CREATE TABLE orders (
	id         text        PRIMARY KEY,
	status     text        NOT NULL,
	version    bigint      NOT NULL CHECK (version >= 1),
	details    jsonb       NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);

-- (order_id, seq) is the primary key, so a second writer for the same seq fails instead of
-- leaving a duplicate.
CREATE TABLE order_events (
	order_id text        NOT NULL REFERENCES orders (id),
	seq      bigint      NOT NULL CHECK (seq >= 1),
	status   text        NOT NULL,
	at       timestamptz NOT NULL,
	note     text        NOT NULL DEFAULT '',
	actor    text        NOT NULL DEFAULT '',
	PRIMARY KEY (order_id, seq)
);

-- Partial index for ActiveOrders: terminal orders pile up forever and must not slow it down.
-- The query repeats this WHERE clause verbatim so the planner can use the index.
CREATE INDEX orders_active ON orders (updated_at DESC, id)
	WHERE status NOT IN ('delivered', 'cancelled');
