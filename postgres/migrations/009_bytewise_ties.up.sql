-- Orders that share a time (created in one batch, changed in one batch) are listed by id, byte
-- by byte, as SQLite compares them, whatever the database's collation: under a locale such as
-- ICU's en-US, "a-2" came before "B-1", and which orders a capped snapshot held depended on the
-- store. The index keeps its order, so the newest active orders are still read with no sort.
DROP INDEX orders_active;
CREATE INDEX orders_active ON orders (created_at DESC, id COLLATE "C") WHERE active;
