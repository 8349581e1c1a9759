-- Indexes of the active orders that a status change does not move. Those of 001 and 004 were
-- keyed by updated_at and filtered on status, and every change writes both: it deleted its order
-- from every one of them and inserted it again, 2.5 of the 5 WAL pages a change wrote, and 5.6
-- of 13 for an order with a restaurant and a customer. `active` changes once, when the order
-- ends, and the keys never change; the reads sort a party's active orders, or all of them, by
-- updated_at instead (see docs/performance.md).
--
-- The column is 1 for an order that has not ended. Its default, 0, costs this migration nothing
-- for the ended orders, which are most of a long-lived database; every insert sets it.
ALTER TABLE orders ADD COLUMN active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1));
UPDATE orders SET active = 1 WHERE status NOT IN ('delivered', 'cancelled');

DROP INDEX orders_active;
DROP INDEX orders_restaurant_active;
DROP INDEX orders_customer_active;
DROP INDEX orders_courier_active;

CREATE INDEX orders_active ON orders (id) WHERE active = 1;
CREATE INDEX orders_restaurant_active ON orders (restaurant_id) WHERE active = 1 AND restaurant_id <> '';
CREATE INDEX orders_customer_active ON orders (customer_id) WHERE active = 1 AND customer_id <> '';
CREATE INDEX orders_courier_active ON orders (courier_id) WHERE active = 1 AND courier_id <> '';
