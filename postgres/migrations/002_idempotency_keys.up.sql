-- The answers recorded for requests that carried an Idempotency-Key, written in the same
-- transaction as the change they answer. Expired rows are purged a few at a time by later writes.
CREATE TABLE idempotency_keys (
	scope       text        NOT NULL,
	key         text        NOT NULL,
	fingerprint text        NOT NULL,
	status      integer     NOT NULL,
	body        bytea       NOT NULL,
	expires_at  timestamptz NOT NULL,
	PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
