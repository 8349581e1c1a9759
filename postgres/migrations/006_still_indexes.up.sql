-- Indexes of the active orders that a status change does not touch, so that a change is a HOT
-- update: PostgreSQL writes no index entry for an update that changes no indexed column and
-- finds room for the new row version on the row's page. Those of 001 and 004 were keyed by
-- updated_at and filtered on status, and every change writes both, so every change wrote a new
-- entry in each of them and in the primary key. `active` changes once, when the order ends, and
-- the keys never change; the reads sort a party's active orders, or all of them, by updated_at
-- instead (see docs/performance.md).
--
-- The column is true for an order that has not ended. Its default, false, costs this migration
-- nothing for the ended orders, which are most of a long-lived database. A trigger keeps it, not
-- the nodes: in a rolling upgrade the nodes of the release before this one go on writing orders
-- without knowing the column, and an order one of them created or ended would otherwise be
-- missing from the active orders, or stay among them for ever. It sets the column on every
-- insert and every update of status, and a status change that does not end the order leaves its
-- value as it was, so the update stays HOT.
ALTER TABLE orders ADD COLUMN active boolean NOT NULL DEFAULT false;
UPDATE orders SET active = true WHERE status NOT IN ('delivered', 'cancelled');

CREATE FUNCTION orders_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.active := NEW.status NOT IN ('delivered', 'cancelled');
	RETURN NEW;
END
$$;
CREATE TRIGGER orders_active BEFORE INSERT OR UPDATE OF status ON orders
	FOR EACH ROW EXECUTE FUNCTION orders_active();

DROP INDEX orders_active;
DROP INDEX orders_restaurant_active;
DROP INDEX orders_customer_active;
DROP INDEX orders_courier_active;

CREATE INDEX orders_active ON orders (id) WHERE active;
CREATE INDEX orders_restaurant_active ON orders (restaurant_id) WHERE active AND restaurant_id <> '';
CREATE INDEX orders_customer_active ON orders (customer_id) WHERE active AND customer_id <> '';
CREATE INDEX orders_courier_active ON orders (courier_id) WHERE active AND courier_id <> '';

-- Room on each page for the new versions of its rows, which a HOT update needs (the pages
-- written from now on; a page filled before keeps no room until its old versions are pruned).
ALTER TABLE orders SET (fillfactor = 80);
