-- How far each party's log was purged: pos is the highest position deleted with the ended orders
-- it belonged to (Store.PurgeEnded, run only with --retention). A stream resuming from a lower
-- position gets a fresh snapshot, as one too far behind does: the log can no longer tell it
-- what it missed. A party with no row lost nothing. A table of its own, not a column of
-- party_heads, so that the purge never takes the row locks every writer of the party takes.
CREATE TABLE party_purged (
	party TEXT    PRIMARY KEY,
	pos   INTEGER NOT NULL CHECK (pos >= 1)
) STRICT, WITHOUT ROWID;
