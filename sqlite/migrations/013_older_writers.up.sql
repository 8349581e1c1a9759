-- Keep what an older release's writer does not know right, as PostgreSQL's migrations 006 and
-- 010 do with triggers. A release from before 2026-12-02 does not refuse a database whose schema
-- is newer than its own, and one from before 2026-12-04 does not take the file's lock: rolled
-- back onto a migrated file, or started beside a newer process on it, it writes orders without
-- the `active` column (006, default 0) and courier events without `courier_name` (010). Its new
-- orders then vanished from every board, courier list and snapshot, even after the next upgrade;
-- the orders it ended stayed on them for good, and --retention never purged them; and an order
-- it gave to another courier kept the name of the courier before.
--
-- This release's writer sets `active` itself on insert; on an update it leaves it to the
-- trigger, which writes it only when the status it was given ends the order (or, for an older
-- writer, reopens one): a status change that keeps an order active writes no page of the
-- active orders' indexes (migration 006). The WHEN clauses cost a comparison per row.
CREATE TRIGGER orders_active_insert AFTER INSERT ON orders
	WHEN NEW.active <> (NEW.status NOT IN ('delivered', 'cancelled'))
BEGIN
	UPDATE orders SET active = (NEW.status NOT IN ('delivered', 'cancelled')) WHERE id = NEW.id;
END;

CREATE TRIGGER orders_active_status AFTER UPDATE OF status ON orders
	WHEN NEW.active <> (NEW.status NOT IN ('delivered', 'cancelled'))
BEGIN
	UPDATE orders SET active = (NEW.status NOT IN ('delivered', 'cancelled')) WHERE id = NEW.id;
END;

-- An order's courier name is that of its latest courier event, whoever wrote it. This release's
-- writer sets the same name itself, and the trigger then writes nothing.
CREATE TRIGGER order_events_courier_name AFTER INSERT ON order_events
	WHEN NEW.kind = 'courier'
BEGIN
	UPDATE orders SET courier_name = NEW.courier_name
	WHERE id = NEW.order_id AND courier_name IS NOT NEW.courier_name
		AND NOT EXISTS (SELECT 1 FROM order_events e
			WHERE e.order_id = NEW.order_id AND e.kind = 'courier' AND e.seq > NEW.seq);
END;

-- Mend what an older writer already wrote: one pass over the orders. An active order's name
-- from its latest courier event (the active orders' index finds them).
UPDATE orders SET active = (status NOT IN ('delivered', 'cancelled'))
	WHERE active <> (status NOT IN ('delivered', 'cancelled'));
UPDATE orders SET courier_name = coalesce((SELECT e.courier_name FROM order_events e
		WHERE e.order_id = orders.id AND e.kind = 'courier' ORDER BY e.seq DESC LIMIT 1), '')
	WHERE active = 1 AND courier_id <> '';
