-- The name an assignment gives its courier to show the order's parties ("Omar is on the way"):
-- on the order, its current courier's, and on each courier event, the one it was given then.
-- Empty where none was given, as on every assignment made before names existed.
ALTER TABLE orders ADD COLUMN courier_name TEXT NOT NULL DEFAULT '';
ALTER TABLE order_events ADD COLUMN courier_name TEXT NOT NULL DEFAULT '';
