-- The name an assignment gives its courier to show the order's parties ("Omar is on the way"):
-- on the order, its current courier's, and on each courier event, the one it was given then.
-- Empty where none was given, as on every assignment made before names existed.
ALTER TABLE orders ADD COLUMN courier_name TEXT NOT NULL DEFAULT '';
ALTER TABLE order_events ADD COLUMN courier_name TEXT NOT NULL DEFAULT '';

-- In a rolling upgrade the nodes of the release before go on writing without knowing the
-- columns: an order one of them gave to another courier would keep the name of the courier
-- before, and its customer read "Omar is on the way" of someone else. A trigger keeps the
-- order's name with its newest courier event, whoever wrote it: each courier event inserted
-- sets it, to the event's name ('' from an older node), unless a newer courier event of the
-- order is already there (a batch may hold several; an AFTER trigger sees the whole statement's
-- rows). The nodes of this release write the same name in the same transaction, so the trigger
-- finds it so and writes nothing.
CREATE FUNCTION order_events_courier_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE orders SET courier_name = NEW.courier_name
	WHERE id = NEW.order_id AND courier_name IS DISTINCT FROM NEW.courier_name
		AND NOT EXISTS (SELECT 1 FROM order_events e
			WHERE e.order_id = NEW.order_id AND e.kind = 'courier' AND e.seq > NEW.seq);
	RETURN NULL;
END
$$;
CREATE TRIGGER order_events_courier_name AFTER INSERT ON order_events
	FOR EACH ROW WHEN (NEW.kind = 'courier') EXECUTE FUNCTION order_events_courier_name();
