-- The answers recorded for requests that carried an Idempotency-Key, written in the same
-- transaction as the change they answer. Expired rows are purged a few at a time by later writes.
CREATE TABLE idempotency_keys (
	scope       TEXT    NOT NULL,
	key         TEXT    NOT NULL,
	fingerprint TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	body        BLOB    NOT NULL,
	expires_at  INTEGER NOT NULL,
	PRIMARY KEY (scope, key)
) STRICT;

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
